#!/usr/bin/env bash
# test_collector_http.sh - the real tlsprobe-collector binary over real HTTP (curl):
# health check, every reject path (415, 413 by Content-Length and chunked, malformed
# protobuf, empty batch, validation errors incl. an unknown mode, 404, 405) with
# nothing stored, then one valid batch (hand-encoded protobuf: protoc is not a test
# dependency) carrying schema version 2 facts (groups, mode, OCSP staple, HTTP), its
# duplicate, the report over what was stored (rates, facts, the stale-staple
# warning), port-in-use, config errors with file:line:col, report CLI errors, and a
# clean SIGTERM shutdown (exit 0; under ASan this is where leaks and errors surface).
# Needs TP_COLLECTOR (set by ctest), curl and sqlite3.
set -euo pipefail

: "${TP_COLLECTOR:?set TP_COLLECTOR to the tlsprobe-collector binary}"
[ -x "$TP_COLLECTOR" ] || { echo "TP_COLLECTOR=$TP_COLLECTOR is not executable" >&2; exit 1; }
for tool in curl sqlite3; do
  command -v "$tool" >/dev/null || { echo "$tool missing: run deploy/scripts/install-deps.sh" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tp-collector-http.XXXXXX")
COLLECTOR_PID=""
FAILURES=0

cleanup() {
  local status=$?
  if [ -n "$COLLECTOR_PID" ] && kill -0 "$COLLECTOR_PID" 2>/dev/null; then
    kill "$COLLECTOR_PID" 2>/dev/null || true
    wait "$COLLECTOR_PID" 2>/dev/null || true
  fi
  if [ $status -ne 0 ] && [ -f "$WORK/collector.log" ]; then
    echo "--- collector log ---" >&2
    sed 's/^/  | /' "$WORK/collector.log" >&2
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { echo "ok   - $1"; }
fail() { echo "FAIL - $1" >&2; FAILURES=$((FAILURES + 1)); }
expect_eq() { # name expected actual
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected [$2], got [$3]"; fi
}
expect_match() { # name regex text
  if [[ $3 =~ $2 ]]; then pass "$1"; else fail "$1: [$3] does not match /$2/"; fi
}

# --- protobuf by hand (wire format: tag = field << 3 | wire type) -------------------------
varint() { # prints \xHH escapes for an unsigned value (bash ints are 64-bit signed: < 2^63)
  local v=$1 out=""
  while ((v >= 128)); do
    out+=$(printf '\\x%02x' $(((v & 127) | 128)))
    v=$((v >> 7))
  done
  printf '%s\\x%02x' "$out" "$v"
}
ldelim() { # tag-escape string-escape: a length-delimited field (payload < 128 bytes)
  local bytes
  bytes=$(printf '%b' "$2" | wc -c)
  printf '%s\\x%02x%s' "$1" "$bytes" "$2"
}
NOW_NS=$(($(date +%s) * 1000000000))
# ProbeResult: target=3 port=5 profile=7 region=2 result_seq=9 started_unix_ns=10 handshake_ns=13 ok=16 error_class=17
# resumed=34 groups_offered=37 mode=39 ocsp=45 (OcspFacts: cert_status=1 age_seconds=4)
# http=100 (HttpFacts: status=1 hsts=3)
probe_result() { # port mode
  printf '%s' "$(ldelim '\x1a' web)" "$(ldelim '\x12' local)" "\\x28$(varint "$1")" '\x48\x01' \
    "$(ldelim '\x3a' modern)" "\\x50$(varint "$NOW_NS")" "\\x68$(varint 2500000)" \
    '\x80\x01\x01' '\x88\x01\x01' '\x90\x02\x01' \
    "$(ldelim '\xaa\x02' X25519)" "$(ldelim '\xaa\x02' SECP256R1)" "$(ldelim '\xba\x02' "$2")" \
    "$(ldelim '\xea\x02' "$(ldelim '\x0a' good)\\x20$(varint 90000)")" \
    "$(ldelim '\xa2\x06' '\x08\xc8\x01\x18\x01')"
}
# ResultBatch: agent_id=1 instance_id=2 batch_seq=3 results=5
batch() { # port [mode] -> escapes
  printf '%s' "$(ldelim '\x0a' agent-sh)" '\x10\x01' '\x18\x01' \
    "$(ldelim '\x2a' "$(probe_result "$1" "${2:-resumption}")")"
}
printf '%b' "$(batch 443)" >"$WORK/valid.bin"
# Not `printf | head -c 20`: printf flushes at every 0x0a byte, and a write after
# head has exited kills it with SIGPIPE, which pipefail turns into a silent exit.
head -c 20 "$WORK/valid.bin" >"$WORK/truncated.bin"
printf '%b' "$(batch 0)" >"$WORK/port0.bin"
printf '%b' "$(batch 443 bogus)" >"$WORK/bad-mode.bin"
printf '%b' "$(ldelim '\x0a' agent-sh)" >"$WORK/empty-batch.bin"
: >"$WORK/zero.bin"
head -c 4096 /dev/zero >"$WORK/big.bin"

# --- start the collector on a kernel-chosen port ------------------------------------------
DB=$WORK/collector.db
cat >"$WORK/collector.yaml" <<YAML
listen: 127.0.0.1:0
database: $DB
max_body_bytes: 1024
log_level: debug
insecure_plaintext: true
auth: {allow_unauthenticated: true}
YAML
"$TP_COLLECTOR" serve --config "$WORK/collector.yaml" 2>"$WORK/collector.log" &
COLLECTOR_PID=$!
PORT=""
for _ in $(seq 1 100); do
  PORT=$(sed -n 's/.*msg="listening".* port=\([0-9][0-9]*\).*/\1/p' "$WORK/collector.log")
  [ -n "$PORT" ] && break
  kill -0 "$COLLECTOR_PID" 2>/dev/null || break
  sleep 0.1
done
[ -n "$PORT" ] || { echo "collector did not log a listening port" >&2; exit 1; }
pass "collector listening on 127.0.0.1:$PORT"
BASE=http://127.0.0.1:$PORT

# request METHOD PATH CONTENT_TYPE BODYFILE [extra curl args] -> prints status; body in $WORK/resp
request() {
  local method=$1 path=$2 ctype=$3 file=$4
  shift 4
  curl -s -o "$WORK/resp" -w '%{http_code}' --max-time 10 -X "$method" \
    ${ctype:+-H "Content-Type: $ctype"} ${file:+--data-binary "@$file"} "$@" "$BASE$path" || echo "curl-failed"
}
PB=application/x-protobuf

# --- health and rejects -------------------------------------------------------------------
expect_eq "GET /healthz is 200" 200 "$(request GET /healthz "" "")"
expect_eq "GET /healthz body" ok "$(cat "$WORK/resp")"

expect_eq "truncated protobuf is 400" 400 "$(request POST /v1/results $PB "$WORK/truncated.bin")"
expect_eq "truncated protobuf reason" "malformed protobuf" "$(cat "$WORK/resp")"

expect_eq "wrong content type is 415" 415 "$(request POST /v1/results text/plain "$WORK/valid.bin")"
expect_eq "missing content type is 415" 415 "$(request POST /v1/results "" "")"

expect_eq "oversized body (Content-Length) is 413" 413 "$(request POST /v1/results $PB "$WORK/big.bin")"
expect_eq "oversized chunked body is 413" 413 \
  "$(request POST /v1/results $PB "$WORK/big.bin" -H 'Transfer-Encoding: chunked')"

expect_eq "empty batch is 400" 400 "$(request POST /v1/results $PB "$WORK/empty-batch.bin")"
expect_eq "empty batch reason" "empty batch" "$(cat "$WORK/resp")"
expect_eq "zero-length body is 400" 400 "$(request POST /v1/results $PB "$WORK/zero.bin")"

expect_eq "port 0 is 400" 400 "$(request POST /v1/results $PB "$WORK/port0.bin")"
expect_eq "port 0 reason" "results[0].port: 0 is out of range 1..65535" "$(cat "$WORK/resp")"

expect_eq "unknown mode is 400" 400 "$(request POST /v1/results $PB "$WORK/bad-mode.bin")"
expect_eq "unknown mode reason" \
  'results[0].mode: "bogus" is not one of handshake, resumption, early_data' "$(cat "$WORK/resp")"

expect_eq "unknown path is 404" 404 "$(request GET /nope "" "")"
expect_eq "POST to unknown path is 404" 404 "$(request POST /v2/results $PB "$WORK/valid.bin")"
expect_eq "GET /v1/results is 405" 405 "$(request GET /v1/results "" "")"

expect_eq "nothing stored after rejects" 0 "$(sqlite3 "$DB" 'select count(*) from results')"
expect_eq "no batch recorded after rejects" 0 "$(sqlite3 "$DB" 'select count(*) from batches')"
expect_match "rejects are logged at warn with peer and reason" \
  'level=warn .*msg="rejected" status=400 peer=127\.0\.0\.1:[0-9]+ reason="empty batch"' \
  "$(cat "$WORK/collector.log")"

# --- a valid batch, then its retry ----------------------------------------------------------
expect_eq "valid batch is 200" 200 "$(request POST /v1/results $PB "$WORK/valid.bin")"
# BatchAck{batch_seq=1, stored=1}
expect_eq "ack says stored=1" "08 01 10 01" "$(od -An -tx1 "$WORK/resp" | xargs)"
expect_eq "one result stored" 1 "$(sqlite3 "$DB" "select count(*) from results where target='web' and profile='modern' and region='local' and port=443 and ok=1 and error_class='ok'")"

expect_eq "schema version 10" 10 "$(sqlite3 "$DB" 'pragma user_version')"
expect_eq "new facts stored" '["X25519","SECP256R1"]|resumption|1|good|90000|200|1|' \
  "$(sqlite3 "$DB" "select groups_offered, mode, ocsp_stapled, ocsp_cert_status, ocsp_age_seconds, http_status, http_hsts, days_to_earliest_expiry from results")"

expect_eq "retried batch is 200" 200 "$(request POST /v1/results $PB "$WORK/valid.bin")"
# BatchAck{batch_seq=1, duplicate=true}
expect_eq "retry ack says duplicate" "08 01 18 01" "$(od -An -tx1 "$WORK/resp" | xargs)"
expect_eq "retry stored nothing" 1 "$(sqlite3 "$DB" 'select count(*) from results')"

kill -0 "$COLLECTOR_PID" 2>/dev/null && pass "collector still running" || fail "collector died"
expect_eq "healthz still 200" 200 "$(request GET /healthz "" "")"

# --- report over the live database -----------------------------------------------------------
rc=0
out=$("$TP_COLLECTOR" report --db "$DB" 2>&1) || rc=$?
expect_eq "report exits 0" 0 "$rc"
expect_match "report header" '^tlsprobe report: window 1h ending [0-9T:-]+Z, 1 series, 1 probes' "$out"
expect_match "report row" 'web +modern +local +1 +1 +100\.00 +2\.50 +2\.50 +2\.50 +2\.50 +-' "$out"
expect_match "report flags the stale OCSP staple" \
  $'\nWARN web/modern/local: OCSP staple is 25\\.0 h old \\(threshold 24 h\\)\n' "$out"
out=$("$TP_COLLECTOR" report --db "$DB" --format json --target web 2>&1) || true
expect_match "json report" '"target":"web","profile":"modern","region":"local","agent":null,"family":null,"probes":1,"successes":1' "$out"
expect_match "json report facts with --target" '"chain":\[\]' "$out"
expect_match "json report rates" '"hrr_rate":0\.000000,"resumption_rate":1\.000000,"early_data_accept_rate":null,"ocsp_staple_rate":1\.000000,"min_days_to_expiry":null,"ocsp_max_age_seconds":90000' "$out"
expect_match "json report new facts with --target" '"mode":"resumption","groups_offered":\["X25519","SECP256R1"\],"key_shares_offered":\[\]' "$out"
expect_match "json report ocsp and http objects" '"ocsp":\{"cert_status":"good","this_update_unix":0,"next_update_unix":0,"age_seconds":90000\},"http":\{"status":200,"first_byte_ms":0\.000,"hsts":true\}' "$out"
out=$("$TP_COLLECTOR" report --db "$DB" --target nosuch 2>&1) || true
expect_match "report for an unknown target" 'no probes in window' "$out"

rc=0
"$TP_COLLECTOR" report --db "$WORK/missing.db" >/dev/null 2>"$WORK/err" || rc=$?
expect_eq "report on a missing database exits 1" 1 "$rc"
expect_match "report names the missing file" 'missing.db: cannot open database' "$(cat "$WORK/err")"
rc=0
"$TP_COLLECTOR" report --db "$DB" --since soon >/dev/null 2>&1 || rc=$?
expect_eq "report with a bad --since exits 2" 2 "$rc"
rc=0
"$TP_COLLECTOR" report --db "$DB" --format xml >/dev/null 2>&1 || rc=$?
expect_eq "report with a bad --format exits 2" 2 "$rc"
rc=0
"$TP_COLLECTOR" frobnicate >/dev/null 2>&1 || rc=$?
expect_eq "unknown command exits 2" 2 "$rc"
rc=0
"$TP_COLLECTOR" --help | grep -q 'tlsprobe-collector serve --config' || rc=$?
expect_eq "--help prints usage" 0 "$rc"

# --- port in use, bad configs ------------------------------------------------------------------
printf 'listen: 127.0.0.1:%s\ndatabase: %s/other.db\ninsecure_plaintext: true\nauth: {allow_unauthenticated: true}\n' \
  "$PORT" "$WORK" >"$WORK/busy.yaml"
rc=0
timeout 10 "$TP_COLLECTOR" serve --config "$WORK/busy.yaml" 2>"$WORK/err" || rc=$?
expect_eq "port in use exits 1" 1 "$rc"
expect_match "port in use is explained" 'Address already in use' "$(cat "$WORK/err")"
# The port is claimed before the database: a second collector touches no file.
[ ! -e "$WORK/other.db" ] && pass "port in use: no database created" ||
  fail "port in use: $WORK/other.db was created"

printf 'listen: 127.0.0.1:0\ndatabase: x.db\n' >"$WORK/plain.yaml"
rc=0
"$TP_COLLECTOR" serve --config "$WORK/plain.yaml" 2>"$WORK/err" || rc=$?
expect_eq "no tls and no insecure_plaintext exits 2" 2 "$rc"
expect_match "plaintext refusal is explained" 'no tls: section: .*insecure_plaintext: true' "$(cat "$WORK/err")"

printf 'listen: 127.0.0.1:0\ndatabase: x.db\ncolour: blue\n' >"$WORK/unknown-key.yaml"
rc=0
"$TP_COLLECTOR" serve --config "$WORK/unknown-key.yaml" 2>"$WORK/err" || rc=$?
expect_eq "unknown config key exits 2" 2 "$rc"
expect_match "unknown key error is file:line:col" "unknown-key.yaml:3:[0-9]+: .*colour" "$(cat "$WORK/err")"

printf 'database: x.db\nlisten: localhost:80\n' >"$WORK/bad-listen.yaml"
rc=0
"$TP_COLLECTOR" serve --config "$WORK/bad-listen.yaml" 2>"$WORK/err" || rc=$?
expect_eq "bad listen exits 2" 2 "$rc"
expect_match "bad listen error is file:line:col" "bad-listen.yaml:2:[0-9]+: listen: " "$(cat "$WORK/err")"

printf 'listen: 127.0.0.1:0\ndatabase: x.db\nmax_body_bytes: 0\n' >"$WORK/zero-body.yaml"
rc=0
"$TP_COLLECTOR" serve --config "$WORK/zero-body.yaml" 2>"$WORK/err" || rc=$?
expect_eq "max_body_bytes 0 exits 2" 2 "$rc"
expect_match "max_body_bytes error is file:line:col" "zero-body.yaml:3:[0-9]+: max_body_bytes" "$(cat "$WORK/err")"

rc=0
"$TP_COLLECTOR" serve --config "$WORK/no-such.yaml" 2>/dev/null || rc=$?
expect_eq "missing config exits 2" 2 "$rc"

# --- clean shutdown ---------------------------------------------------------------------------
kill -TERM "$COLLECTOR_PID"
rc=0
for _ in $(seq 1 100); do
  kill -0 "$COLLECTOR_PID" 2>/dev/null || break
  sleep 0.1
done
wait "$COLLECTOR_PID" || rc=$?
COLLECTOR_PID=""
expect_eq "SIGTERM: collector exits 0" 0 "$rc"
expect_match "shutdown is logged" 'msg="stopping" signal=SIGTERM' "$(cat "$WORK/collector.log")"
expect_eq "rows survive shutdown" 1 "$(sqlite3 "$DB" 'select count(*) from results')"

if [ "$FAILURES" -ne 0 ]; then
  echo "$FAILURES check(s) failed" >&2
  exit 1
fi
echo "all collector HTTP checks passed"
