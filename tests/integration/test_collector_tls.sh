#!/usr/bin/env bash
# test_collector_tls.sh - the real collector over HTTPS with real clients (curl, gnutls-cli,
# python's ssl), certificates made here by openssl: TLS 1.2/1.3 with AEAD suites only
# (TLS 1.1 and CBC refused); bearer tokens minted by `agents add` (ok, missing 401, wrong
# 401, another agent's id 403, revoked 401 after SIGHUP); client certificates (ok,
# untrusted 401, identity mismatch 403, certificate and token naming different agents
# 403); SIGHUP reloads the certificate (the next handshake gets the new one, an open
# keep-alive connection keeps working, the process lives) and the tokens; the time window
# and phase rules (2262, year 2100, 8 days old, a 1-hour handshake, total < handshake, a
# drop report from the future: 400 with the reason; an old drop report is accepted); `agents list` never shows a token; --check shows no
# secret; a key readable by others is warned about. Loopback only.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
tp_install_traps

: "${TP_COLLECTOR:?set TP_COLLECTOR}"
for tool in curl openssl gnutls-cli python3 sqlite3; do
  command -v "$tool" >/dev/null || tp_die "$tool missing: run deploy/scripts/install-deps.sh"
done
CLIENTS=$(cd "$(dirname "$0")" && pwd)/collector_clients.py
W=$(mktemp -d "${TMPDIR:-/tmp}/tp-collector-tls.XXXXXX")
tp_on_exit "rm -rf '$W'"
cd "$W"

# --- certificates: a CA, the collector (two generations), two agents, a stranger --------
ec() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "$@" 2>/dev/null; }
sign() { # NAME CN EXT
  ec -keyout "$1.key" -out "$1.csr" -subj "/CN=$2"
  printf '%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
ec -x509 -keyout ca.key -out ca.pem -days 2 -subj "/CN=tlsprobe test agents CA"
sign server collector-one 'subjectAltName=IP:127.0.0.1
extendedKeyUsage=serverAuth'
sign server2 collector-two 'subjectAltName=IP:127.0.0.1
extendedKeyUsage=serverAuth'
sign edge1 edge-1 'extendedKeyUsage=clientAuth'
sign edge2 edge-2 'extendedKeyUsage=clientAuth'
ec -x509 -keyout rogue.key -out rogue.pem -days 2 -subj "/CN=edge-1" # self-signed "edge-1"
cp server.pem live.pem
cp server.key live.key
chmod 600 live.key

cat >collector.yaml <<EOF
listen: 127.0.0.1:0
database: $W/tlsprobe.db
log_level: debug
tls:
  cert_file: $W/live.pem
  key_file: $W/live.key
  client_ca_file: $W/ca.pem
auth:
  tokens_file: $W/tokens.yaml
EOF

# --- agents add / list ------------------------------------------------------------------
"$TP_COLLECTOR" agents add edge-1 --config collector.yaml >tok1 2>add.err
tp_expect_match "agents add prints a 64-hex token once" '^[0-9a-f]{64}$' "$(cat tok1)"
"$TP_COLLECTOR" agents add edge-2 --config collector.yaml >tok2 2>/dev/null
TOK1=$(cat tok1) TOK2=$(cat tok2)
tp_expect_eq "tokens file is mode 600" 600 "$(stat -c %a tokens.yaml)"
tp_expect_eq "the tokens file holds no token" 0 "$(grep -c -e "$TOK1" -e "$TOK2" tokens.yaml || true)"
tp_expect_eq "the tokens file holds the SHA-256" 1 \
  "$(grep -c "$(printf '%s' "$TOK1" | sha256sum | cut -d' ' -f1)" tokens.yaml)"
list=$("$TP_COLLECTOR" agents list --config collector.yaml)
tp_expect_match "agents list names both" 'edge-1 .*edge-2 ' "$(echo $list)"
tp_expect_eq "agents list shows no token" 0 "$(echo "$list" | grep -c -e "$TOK1" -e "$TOK2" || true)"
rc=0
"$TP_COLLECTOR" agents add 'bad name' --config collector.yaml >/dev/null 2>&1 || rc=$?
tp_expect_eq "agents add with an invalid agent id exits 2" 2 "$rc"

out=$("$TP_COLLECTOR" serve --config collector.yaml --check 2>&1)
tp_expect_match "--check loads certificate and tokens" 'configuration OK .*tls=on certificate="CN=collector-one" .*tokens=2' "$out"
tp_expect_eq "--check shows no token" 0 "$(echo "$out" | grep -c -e "$TOK1" || true)"

# --- start ----------------------------------------------------------------------------------
"$TP_COLLECTOR" serve --config collector.yaml </dev/null >collector.log 2>&1 &
PID=$!
tp_on_exit "tp_stop $PID collector >/dev/null 2>&1"
tp_wait_for 10 "collector listening" grep -q 'msg="listening"' collector.log || tp_die "no start: $(cat collector.log)"
PORT=$(tp_log_field collector.log listening port)
URL=https://127.0.0.1:$PORT/v1/results
tp_expect_match "listening line says how agents get in" 'tls=on .*tokens=2 unauthenticated=refused' \
  "$(grep 'msg="listening"' collector.log)"

post() { # BODYFILE [curl args...] -> status; body in resp
  local f=$1
  shift
  curl -s -o resp -w '%{http_code}' --max-time 10 --cacert ca.pem -H 'Content-Type: application/x-protobuf' \
    --data-binary "@$f" "$@" "$URL" || echo curl-failed
}
batch() { python3 "$CLIENTS" batch "$@"; }
SEQ=1
next_batch() { # OUT AGENT [opts]: a valid batch with a fresh sequence number
  local out=$1 agent=$2
  shift 2
  SEQ=$((SEQ + 1))
  batch "$out" --agent "$agent" --seq "$SEQ" "$@"
}

# --- TLS versions and suites ----------------------------------------------------------------
handshake() { # PRIORITY -> "completed" or "refused"
  if echo | timeout 10 gnutls-cli --x509cafile ca.pem --priority "$1" -p "$PORT" 127.0.0.1 2>&1 |
    grep -q 'Handshake was completed'; then echo completed; else echo refused; fi
}
tp_expect_eq "TLS 1.3 handshake" completed "$(handshake 'NORMAL:-VERS-ALL:+VERS-TLS1.3')"
tp_expect_eq "TLS 1.2 AEAD handshake" completed "$(handshake 'NORMAL:-VERS-ALL:+VERS-TLS1.2')"
tp_expect_eq "TLS 1.1 refused" refused "$(handshake 'NORMAL:-VERS-ALL:+VERS-TLS1.1')"
tp_expect_eq "TLS 1.0 refused" refused "$(handshake 'NORMAL:-VERS-ALL:+VERS-TLS1.0')"
tp_expect_eq "TLS 1.2 CBC suite refused" refused \
  "$(handshake 'NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-CBC:+AES-256-CBC:-MAC-ALL:+SHA1:+SHA256')"

# --- bearer tokens ----------------------------------------------------------------------------
next_batch b1 edge-1
tp_expect_eq "token: stored" 200 "$(post b1 -H "Authorization: Bearer $TOK1")"
tp_expect_eq "token: missing is 401" 401 "$(post b1)"
tp_expect_match "token: 401 says what to send" 'authentication required: send Authorization: Bearer <token> or present a client certificate' "$(cat resp)"
# A wrong token: the real one with its last hex digit changed (always to a different digit:
# replacing it with a fixed one would leave the token right whenever it already ended so).
case "$TOK1" in *0) WRONG_TOK="${TOK1%?}1" ;; *) WRONG_TOK="${TOK1%?}0" ;; esac
tp_expect_eq "token: wrong token differs from the real one" different \
  "$([ "$WRONG_TOK" != "$TOK1" ] && echo different || echo same)"
tp_expect_eq "token: wrong is 401" 401 "$(post b1 -H "Authorization: Bearer $WRONG_TOK")"
tp_expect_eq "token: wrong reason" "unknown or revoked token" "$(cat resp)"
tp_expect_eq "token: malformed header is 401" 401 "$(post b1 -H "Authorization: Basic Zm9vOmJhcg==")"
next_batch b2 edge-1
tp_expect_eq "token: another agent's id is 403" 403 "$(post b2 -H "Authorization: Bearer $TOK2")"
tp_expect_eq "token: 403 reason" 'agent_id "edge-1" is not the authenticated agent "edge-2"' "$(cat resp)"
tp_expect_eq "token: plain HTTP to the HTTPS port fails" 000 \
  "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT/healthz" || true)"
tp_expect_eq "nothing of the refused batches stored" 1 "$(tp_sql tlsprobe.db 'select count(*) from results')"
tp_expect_eq "no token in the log" 0 "$(grep -c -e "$TOK1" -e "$TOK2" collector.log || true)"

# --- client certificates ------------------------------------------------------------------------
next_batch b3 edge-1
tp_expect_eq "mTLS: edge-1 certificate stored" 200 "$(post b3 --cert edge1.pem --key edge1.key)"
next_batch b4 edge-1
tp_expect_eq "mTLS: untrusted certificate is 401" 401 "$(post b4 --cert rogue.pem --key rogue.key)"
tp_expect_match "mTLS: 401 says why" 'client certificate not trusted: .*issuer is unknown' "$(cat resp)"
tp_expect_eq "mTLS: edge-2 certificate with edge-1's batch is 403" 403 "$(post b4 --cert edge2.pem --key edge2.key)"
tp_expect_eq "mTLS: certificate and token of different agents is 403" 403 \
  "$(post b4 --cert edge2.pem --key edge2.key -H "Authorization: Bearer $TOK1")"
tp_expect_match "mTLS: that 403 names both" 'client certificate \("edge-2"\) and token \("edge-1"\) name different agents' "$(cat resp)"
tp_expect_eq "mTLS over TLS 1.2 too" 200 "$(post b4 --tls-max 1.2 --cert edge1.pem --key edge1.key)"

# --- validation: times and phases -----------------------------------------------------------------
reject_case() { # NAME REASON_REGEX BATCH_OPTS...
  local name=$1 want=$2
  shift 2
  next_batch bad edge-1 "$@"
  tp_expect_eq "$name is 400" 400 "$(post bad -H "Authorization: Bearer $TOK1")"
  tp_expect_match "$name reason" "$want" "$(cat resp)"
}
reject_case "started in 2262" 'results\[0\]\.started_unix_ns: 2262-04-11T23:47:16Z is more than 300 s ahead of the collector.s clock .*max_clock_skew' \
  --started 9223372036854775807
reject_case "started in 2100" 'started_unix_ns: 2100-01-01T00:00:00Z is more than 300 s ahead' \
  --started 4102444800000000000
reject_case "started 8 days ago" 'is more than 604800 s before the collector.s clock .*max_result_age' \
  --started $(($(date +%s) * 1000000000 - 8 * 86400 * 1000000000))
reject_case "a 1-hour handshake" 'results\[0\]\.handshake_ns: 3600000000000 ns exceeds the limit of 10 minutes' \
  --handshake 3600000000000 --total 3600000000000
reject_case "total < handshake" 'results\[0\]\.total_ns: 1000000 ns is less than dns_ns \+ connect_ns \+ handshake_ns = 2000000 ns' \
  --handshake 2000000 --total 1000000
reject_case "a drop report from 2100" 'drops\[0\]\.first_unix_ns: 2100-01-01T00:00:00Z is more than 300 s ahead' \
  --drop-first 4102444800000000000
# Old loss is exactly what must reach the report: a drop report of any age is accepted.
next_batch old_drop edge-1 --drop-first $(($(date +%s) * 1000000000 - 30 * 86400 * 1000000000))
tp_expect_eq "a drop report from last month is accepted" 200 "$(post old_drop -H "Authorization: Bearer $TOK1")"

# --- SIGHUP: new certificate, open connection kept, tokens re-read -----------------------------
serial() { # the serial of the certificate a new handshake gets
  echo | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -CAfile ca.pem 2>/dev/null |
    openssl x509 -noout -subject 2>/dev/null | sed 's/.*CN *= *//'
}
tp_expect_eq "before SIGHUP: the first certificate" collector-one "$(serial)"
cp server2.pem live.pem.new && mv live.pem.new live.pem
cp server2.key live.key.new && chmod 600 live.key.new && mv live.key.new live.key
"$TP_COLLECTOR" agents revoke edge-2 --config collector.yaml 2>/dev/null
next_batch ka edge-1
out=$(python3 "$CLIENTS" keepalive "$PORT" ca.pem "$TOK1" ka "$PID" collector.log)
echo "keep-alive across SIGHUP: $out" >&2
tp_expect_eq "an open keep-alive connection survives SIGHUP" "first=200 second=200 same_connection_cert=yes" "$out"
tp_alive "$PID" && tp_pass "collector alive after SIGHUP" || tp_fail "collector died on SIGHUP"
tp_expect_eq "after SIGHUP: a new handshake gets the new certificate" collector-two "$(serial)"
tp_expect_match "reload is logged" 'msg="reloaded" certificate="CN=collector-two" tokens=1' "$(cat collector.log)"
next_batch b5 edge-2
tp_expect_eq "revoked token is 401 after SIGHUP" 401 "$(post b5 -H "Authorization: Bearer $TOK2")"
next_batch b6 edge-1
tp_expect_eq "the kept token still works" 200 "$(post b6 -H "Authorization: Bearer $TOK1")"
# A broken certificate file on reload: the old credentials stay, the process lives.
echo garbage >live.pem
kill -HUP "$PID"
tp_wait_for 10 "failed reload logged" grep -q 'reload failed: keeping the TLS credentials in force' collector.log ||
  tp_fail "a failed reload was not logged"
tp_alive "$PID" && tp_pass "collector alive after a failed reload" || tp_fail "collector died on a failed reload"
tp_expect_eq "after a failed reload: still the second certificate" collector-two "$(serial)"
for _ in 1 2 3; do kill -HUP "$PID"; done
sleep 0.5
tp_alive "$PID" && tp_pass "collector alive after repeated SIGHUPs" || tp_fail "collector died on repeated SIGHUPs"

# --- permission warnings --------------------------------------------------------------------------
cp server2.pem live.pem
chmod 644 live.key
out=$("$TP_COLLECTOR" serve --config collector.yaml --check 2>&1)
tp_expect_match "a key readable by others is warned about" 'msg="TLS key file is not private" file=".*live.key" problem="mode 0644' "$out"
chmod 640 tokens.yaml
out=$("$TP_COLLECTOR" serve --config collector.yaml --check 2>&1)
tp_expect_match "a group-readable tokens file is warned about" 'msg="tokens file is not private" .*problem="mode 0640: accessible by group"' "$out"

# --- shutdown ---------------------------------------------------------------------------------------
rc=0
tp_stop "$PID" collector || rc=$?
tp_expect_eq "SIGTERM: exit 0" 0 "$rc"
tp_expect_eq "stored: the results of the six accepted batches" 6 "$(tp_sql tlsprobe.db 'select count(*) from results')"
tp_finish
