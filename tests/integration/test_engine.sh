#!/usr/bin/env bash
# test_engine.sh - the probe engine itself (tests/tools/probe_once.c drives one probe)
# against real openssl s_server instances on 127.0.0.1:
#   chain diagnosis: full chain ok/complete; leaf-only -> unknown_ca without evidence,
#   incomplete_chain with an intermediate pool, incomplete_chain from AIA caIssuers;
#   HelloRetryRequest evidence; resumption; early data; ALPN; HTTP status.
set -euo pipefail
ROOT=${TP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=lib.sh
. "$ROOT/tests/integration/lib.sh"
ONCE=${TP_PROBE_ONCE:?TP_PROBE_ONCE must point at the probe-once binary}
tp_install_traps
W=$(mktemp -d /tmp/tp-engine.XXXXXX)
tp_on_exit "rm -rf '$W'"

utc() { date -u -d "$1" '+%Y-%m-%d %H:%M:%S UTC'; }
key() { certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --no-text --outfile "$W/$1.key" 2>/dev/null; }
# cert NAME ISSUER(or -) TEMPLATE-LINES...
cert() {
  local name=$1 issuer=$2
  shift 2
  key "$name"
  printf '%s\n' "$@" "activation_date = \"$(utc '-1 day')\"" "expiration_date = \"$(utc '+1 year')\"" >"$W/$name.tmpl"
  if [ "$issuer" = - ]; then
    certtool --generate-self-signed --no-text --load-privkey "$W/$name.key" --template "$W/$name.tmpl" \
      --outfile "$W/$name.pem" >"$W/$name.log" 2>&1
  else
    certtool --generate-certificate --no-text --load-privkey "$W/$name.key" \
      --load-ca-certificate "$W/$issuer.pem" --load-ca-privkey "$W/$issuer.key" \
      --template "$W/$name.tmpl" --outfile "$W/$name.pem" >"$W/$name.log" 2>&1
  fi || tp_die "certtool failed for $name: $(cat "$W/$name.log")"
}
cert root - 'cn = "engine test root"' ca cert_signing_key
cert inter root 'cn = "engine test intermediate"' ca cert_signing_key
cert leaf inter 'cn = "chain.test"' 'dns_name = "chain.test"' tls_www_server signing_key
cert leafaia inter 'cn = "chain.test"' 'dns_name = "chain.test"' tls_www_server signing_key \
  'ca_issuers_uri = "http://127.0.0.1:1/inter.crt"'

serve() { tp_serve "$1" "$W" "${@:2}"; } # s_server on a free port; sets PORT_<NAME>
serve full -cert "$W/leaf.pem" -key "$W/leaf.key" -cert_chain "$W/inter.pem" -www
serve leafonly -cert "$W/leaf.pem" -key "$W/leaf.key" -www
serve leafaia -cert "$W/leafaia.pem" -key "$W/leafaia.key" -www
serve p384 -cert "$W/leaf.pem" -key "$W/leaf.key" -cert_chain "$W/inter.pem" -www -tls1_3 -groups secp384r1
serve alpn -cert "$W/leaf.pem" -key "$W/leaf.key" -cert_chain "$W/inter.pem" -alpn h2 -www
serve early -cert "$W/leaf.pem" -key "$W/leaf.key" -cert_chain "$W/inter.pem" -early_data
# client certificates: a CA for clients the mtls servers accept, and an untrusted one
cert clientca - 'cn = "engine client CA"' ca cert_signing_key
cert rogueca - 'cn = "engine rogue client CA"' ca cert_signing_key
cert client clientca 'cn = "engine client"' tls_www_client signing_key
cert rogue rogueca 'cn = "engine rogue client"' tls_www_client signing_key
MTLS=(-cert "$W/leaf.pem" -key "$W/leaf.key" -cert_chain "$W/inter.pem" -www -Verify 1 -verify_return_error -CAfile "$W/clientca.pem")
serve mtls13 "${MTLS[@]}" -tls1_3
serve mtls12 "${MTLS[@]}" -tls1_2
serve mtls12nonames "${MTLS[@]}" -tls1_2 -no_ca_names
# -HTTP: the file IS the whole response (status line and headers included)
printf 'HTTP/1.1 503 Service Unavailable\r\nStrict-Transport-Security: max-age=31536000\r\nContent-Length: 0\r\n\r\n' >"$W/down.http"
printf 'HTTP/1.1 204 No Content\r\nStrict-Transport-Security: max-age=31536000\r\n\r\n' >"$W/up.http"
serve tls12cbc -cert "$W/leaf.pem" -key "$W/leaf.key" -cert_chain "$W/inter.pem" -www -tls1_2 \
  -cipher ECDHE-ECDSA-AES256-SHA384
serve tls12p384 -cert "$W/leaf.pem" -key "$W/leaf.key" -cert_chain "$W/inter.pem" -www -tls1_2 \
  -groups secp384r1
serve files -cert "$W/leaf.pem" -key "$W/leaf.key" -cert_chain "$W/inter.pem" -HTTP

# peer MODE: a plain TCP peer on a free port (perl-base only); sets PEER_PORT.
#   reset:   accept, read the ClientHello, close with SO_LINGER 0 (RST)
#   eof:     accept, read the ClientHello, close normally (FIN, no alert)
#   backlog: listen with backlog 0 and never accept: once the queue holds a connection,
#            the kernel drops further SYNs, so a connect times out (all on loopback)
PEER='
use strict; use Socket;
my ($mode, $port) = @ARGV;
socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1);
bind($s, sockaddr_in($port, inet_aton("127.0.0.1"))) or exit 3;
listen($s, $mode eq "backlog" ? 0 : 16) or die "listen: $!";
$| = 1; print "bound\n";
my $end = time + 120;
if ($mode eq "backlog") { sleep 1 while time < $end; exit 0; }
while (time < $end) {
  accept(my $c, $s) or next;
  my $buf; sysread($c, $buf, 4096);
  setsockopt($c, SOL_SOCKET, SO_LINGER, pack("ii", 1, 0)) if $mode eq "reset";
  close $c;
}'
peer() {
  local mode=$1 port pid
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 12000))
    perl -e "$PEER" "$mode" "$port" >"$W/peer-$mode.out" 2>&1 &
    pid=$!
    tp_on_exit "kill $pid 2>/dev/null || true"
    if tp_wait_for 5 "perl peer $mode bound" bash -c "grep -q bound '$W/peer-$mode.out' || ! kill -0 $pid 2>/dev/null" &&
      grep -q bound "$W/peer-$mode.out"; then
      PEER_PORT=$port
      return 0
    fi
  done
  tp_die "perl peer $mode did not start: $(cat "$W/peer-$mode.out")"
}

# once PORT ARGS...: runs one probe; its key=value output goes to $W/last
once() {
  local port=$1
  shift
  "$ONCE" --host 127.0.0.1 --port "$port" --sni chain.test --trust "$W/root.pem" \
    --handshake-timeout 3000 "$@" >"$W/last" 2>"$W/last.err" || true
}
fact() { sed -n "s/^$1=//p" "$W/last" | head -n 1; }

once "$PORT_full"
tp_expect_eq "full chain: outcome" ok "$(fact outcome)"
tp_expect_eq "full chain: chain_complete" 1 "$(fact chain_complete)"
tp_expect_eq "full chain: certificates recorded" 2 "$(fact chain_length)"
tp_expect_eq "full chain: chain_length_sent" 2 "$(fact chain_length_sent)"

once "$PORT_leafonly"
tp_expect_eq "leaf only, no evidence: outcome" unknown_ca "$(fact outcome)"
tp_expect_eq "leaf only: chain_complete" 0 "$(fact chain_complete)"
tp_expect_eq "leaf only: facts kept although verification failed" 1 "$(fact chain_length)"
tp_expect_eq "leaf only: chain_length_sent" 1 "$(fact chain_length_sent)"

once "$PORT_leafonly" --intermediates "$W/inter.pem"
tp_expect_eq "leaf only + intermediate pool: outcome" incomplete_chain "$(fact outcome)"
tp_expect_match "leaf only + pool: detail names the missing intermediate" "engine test intermediate" "$(fact detail)"

once "$PORT_leafonly" --intermediates "$W/leaf.pem"
tp_expect_eq "leaf only + a pool without the issuer: outcome" unknown_ca "$(fact outcome)"

# An AIA URL alone proves nothing: the issuer is fetched (here: nobody listens on port 1)
# and, without a verified issuer, the server is not blamed.
once "$PORT_leafaia"
tp_expect_eq "leaf with an unreachable AIA caIssuers URL: outcome" unknown_ca "$(fact outcome)"
tp_expect_match "AIA: detail says the fetch failed, and where the issuer may be" \
  "names it at http://127.0.0.1:1/inter.crt .*fetching it failed: connect: ECONNREFUSED" "$(fact detail)"

once "$PORT_p384"
tp_expect_eq "secp384r1-only server: outcome" ok "$(fact outcome)"
tp_expect_eq "secp384r1-only server: HelloRetryRequest seen" 1 "$(fact hello_retry_request)"
tp_expect_eq "secp384r1-only server: group" SECP384R1 "$(fact group)"
# A generic profile with GnuTLS's default groups sends one key share, for its first group
# (P-256, mandatory for TLS 1.3 servers: RFC 8446 §9.1); key_shares: 2 is GnuTLS's own default.
tp_expect_eq "ClientHello evidence: one key share by default" SECP256R1 "$(fact key_shares_offered)"
tp_expect_eq "ClientHello evidence: groups offered beyond the share" \
  SECP256R1,SECP384R1,SECP521R1,X25519 "$(fact groups_offered | cut -d, -f1-4)"
once "$PORT_p384" --key-shares 2
tp_expect_eq "key_shares 2: P-256 and X25519 shares" SECP256R1,X25519 "$(fact key_shares_offered)"
tp_expect_eq "key_shares 2 vs secp384r1-only server: HelloRetryRequest still" 1 \
  "$(fact hello_retry_request)"
once "$PORT_full"
tp_expect_eq "one key share vs a default server: no HelloRetryRequest" 0 "$(fact hello_retry_request)"
tp_expect_eq "one key share vs a default server: the group shared" SECP256R1 "$(fact group)"
once "$PORT_full"
tp_expect_eq "server with default groups: no HelloRetryRequest" 0 "$(fact hello_retry_request)"

# handshake_failure (40) is ambiguous; diagnostic handshakes decide (probes/engine/diagnosis.c)
X25519_ONLY="NORMAL:-GROUP-ALL:+GROUP-X25519"
once "$PORT_p384" --priority "$X25519_ONLY"
tp_expect_eq "x25519-only vs secp384r1-only TLS1.3 server" no_shared_group "$(fact outcome)"
tp_expect_match "no_shared_group: detail names the server's choice" "server chose SECP384R1" "$(fact detail)"
tp_expect_eq "no_shared_group: the evidence shows what was offered" X25519 "$(fact groups_offered)"
once "$PORT_tls12p384" --priority "NORMAL:-VERS-ALL:+VERS-TLS1.2:-GROUP-ALL:+GROUP-X25519"
tp_expect_eq "x25519-only vs secp384r1-only TLS1.2 server" no_shared_group "$(fact outcome)"
once "$PORT_tls12cbc" --priority "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM"
tp_expect_eq "AES-128-GCM-only vs a CBC-SHA384-only server" no_shared_cipher "$(fact outcome)"
tp_expect_match "no_shared_cipher: detail names the suite" "AES_256_CBC_SHA384" "$(fact detail)"
# Widening suites widens key exchange too; signature algorithms are not widened, so an
# RSA-signatures-only client against an ECDSA server stays an undiagnosed alert.
once "$PORT_tls12cbc" --priority "NORMAL:-VERS-ALL:+VERS-TLS1.2:-SIGN-ALL:+SIGN-RSA-SHA256"
tp_expect_eq "no widened dimension explains it (RSA-only signatures vs ECDSA): the alert stands" alert "$(fact outcome)"
tp_expect_match "undiagnosed alert: detail says the diagnosis failed" "failed too" "$(fact detail)"

# Client certificates. In TLS 1.3 the server's verdict comes after the client's handshake
# is complete: the engine reads for about a round trip to see it (no HTTP request here).
CLIENT=(--client-cert "$W/client.pem" --client-key "$W/client.key")
ROGUE=(--client-cert "$W/rogue.pem" --client-key "$W/rogue.key")
for v in 3 2; do
  port_var=PORT_mtls1$v
  once "${!port_var}"
  tp_expect_eq "mTLS TLS1.$v without a client certificate" client_cert_required "$(fact outcome)"
  once "${!port_var}" "${CLIENT[@]}"
  tp_expect_eq "mTLS TLS1.$v with an accepted client certificate" ok "$(fact outcome)"
  once "${!port_var}" "${ROGUE[@]}"
  tp_expect_eq "mTLS TLS1.$v with a certificate from a CA the server does not list" client_cert_rejected "$(fact outcome)"
  tp_expect_match "mTLS TLS1.$v rogue: detail says none was sent" "none was sent" "$(fact detail)"
done
serve mtls13nonames "${MTLS[@]}" -tls1_3 -no_ca_names
once "$PORT_mtls13nonames" "${CLIENT[@]}"
# GnuTLS 3.7.9 cannot decode what OpenSSL sends here (gnutls-cli fails alike): after a valid
# ServerHello that is a protocol error of the pair, reported as other, not not_tls
tp_expect_eq "GnuTLS/OpenSSL TLS 1.3 interop failure (no CA names)" other "$(fact outcome)"
tp_expect_match "other: the GnuTLS error is named" "GNUTLS_E_" "$(fact detail)"
once "$PORT_mtls12nonames" "${ROGUE[@]}"
tp_expect_eq "mTLS TLS1.2, no CA names: rogue certificate sent and refused" client_cert_rejected "$(fact outcome)"
tp_expect_match "mTLS sent+refused: the alert is named" "unknown_ca \\(48\\)" "$(fact detail)"

# Failures below TLS, all on loopback (or in a private network namespace).
"$ONCE" --host bad..name --port 443 >"$W/last" 2>&1 || true
tp_expect_eq "a malformed host name (glibc rejects it without a DNS query)" dns_failure "$(fact outcome)"
peer reset
once "$PEER_PORT"
tp_expect_eq "peer resets the connection after the ClientHello" connection_reset "$(fact outcome)"
peer eof
once "$PEER_PORT"
tp_expect_eq "peer closes without an alert after the ClientHello" unexpected_eof "$(fact outcome)"
peer backlog
# connections that fill the accept queue of a backlog-0 listener; later SYNs are dropped
for _ in 1 2; do
  (exec 3<>"/dev/tcp/127.0.0.1/$PEER_PORT" && sleep 30) 2>/dev/null &
  tp_on_exit "kill $! 2>/dev/null || true"
done
sleep 0.5
once "$PEER_PORT" --connect-timeout 700
tp_expect_eq "SYNs dropped by a full accept queue" connect_timeout "$(fact outcome)"
tp_expect_match "connect_timeout: detail names the limit" "within 700 ms" "$(fact detail)"
if unshare --net true 2>/dev/null; then
  # a fresh network namespace has only a down loopback: no route anywhere, no packet sent
  unshare --net "$ONCE" --host 192.0.2.1 --port 443 >"$W/last" 2>&1 || true
  tp_expect_eq "no route to the target (empty network namespace)" network_unreachable "$(fact outcome)"
else
  tp_fail "unshare --net is not permitted here: network_unreachable cannot be produced (run as root)"
fi

once "$PORT_full" --mode resumption
tp_expect_eq "resumption: outcome" ok "$(fact outcome)"
tp_expect_eq "resumption: ticket received" 1 "$(fact ticket_received)"
tp_expect_eq "resumption: resumed" 1 "$(fact resumed)"
tp_expect_ge "resumption: second handshake timed (ns)" 1 "$(fact resumption_handshake_ns)"

once "$PORT_early" --mode early_data
tp_expect_eq "early data: attempted" 1 "$(fact early_data_attempted)"
tp_expect_eq "early data: accepted by s_server -early_data" 1 "$(fact early_data_accepted)"
tp_expect_eq "early data: resumed" 1 "$(fact resumed)"
tp_expect_match "early data: the 0-RTT request reached the server" "GET / HTTP/1.1" "$(cat "$W/early.log")"

once "$PORT_alpn" --alpn h2,http/1.1
tp_expect_eq "ALPN: selected" h2 "$(fact alpn)"

once "$PORT_full" --http GET /
tp_expect_eq "HTTP GET on -www: outcome" ok "$(fact outcome)"
tp_expect_eq "HTTP GET on -www: status" 200 "$(fact http_status)"
tp_expect_ge "HTTP: time to first byte measured (ns)" 1 "$(fact http_first_byte_ns)"

once "$PORT_full" --http GET /
tp_expect_eq "HTTP: no HSTS header from -www" 0 "$(fact http_hsts)"
once "$PORT_files" --http GET /up.http
tp_expect_eq "HTTP 204 with HSTS: outcome" ok "$(fact outcome)"
tp_expect_eq "HTTP 204 with HSTS: status" 204 "$(fact http_status)"
tp_expect_eq "HTTP 204 with HSTS: hsts" 1 "$(fact http_hsts)"
once "$PORT_files" --http GET /down.http
tp_expect_eq "HTTP 503: outcome" http_status "$(fact outcome)"
tp_expect_eq "HTTP 503: status" 503 "$(fact http_status)"
tp_expect_match "HTTP 503: detail" "HTTP status 503" "$(fact detail)"

# A stalled agent: 50 ms into the probe its loop blocks for 600 ms (a CPU hog, a long
# callback), past the 400 ms handshake deadline, which fires first when it resumes.
# The server answers through a proxy that delays its bytes 100 ms (so the answer lands
# during the stall), answers once and then goes silent, or stays silent. A timeout is
# blamed on the server only with evidence: the answer waiting unread is processed
# (TLS 1.3: the handshake completes); with TLS 1.2 a second round trip is still due,
# and since the stall took the server's time the deadline moves once, by the stall: the
# handshake completes; a server silent for half its budget after the agent's last
# bytes is still blamed, stall or not.
proxy() { # NAME UPSTREAM_PORT DELAY_MS [SERVER_CHUNKS]: sets PORT_<NAME>
  local port
  port=$(tp_free_port)
  python3 "$ROOT/tests/tools/delay_proxy.py" "$port" "${@:2}" >"$W/$1.proxy" 2>&1 &
  tp_on_exit "kill $! 2>/dev/null || true"
  tp_wait_for 5 "proxy $1 listening" grep -q listening "$W/$1.proxy" || tp_die "delay_proxy.py did not start: $(cat "$W/$1.proxy")"
  printf -v "PORT_$1" %s "$port"
}
proxy late "$PORT_full" 100
proxy once "$PORT_full" 100 1
proxy silent "$PORT_full" 60000
STALL=(--stall-at-ms 50 --stall-ms 600 --handshake-timeout 400)
once "$PORT_late" "${STALL[@]}"
tp_expect_eq "stalled agent, TLS 1.3: the waiting answer completes the handshake" ok "$(fact outcome)"
tp_expect_ge "stalled agent: the stall is the result's loop lag (ns)" 500000000 "$(fact loop_lag_ns)"
once "$PORT_late" "${STALL[@]}" --versions TLS1.2
tp_expect_eq "stalled agent, TLS 1.2: the deadline moves by the stall, the handshake completes" \
  ok "$(fact outcome)"
once "$PORT_once" "${STALL[@]}" --versions TLS1.2
tp_expect_eq "stalled agent, a server that answers once and goes silent: its timeout" \
  handshake_timeout "$(fact outcome)"
once "$PORT_once" --handshake-timeout 400 --versions TLS1.2
tp_expect_eq "the same server on a loop that keeps up: its timeout" handshake_timeout "$(fact outcome)"
once "$PORT_silent" "${STALL[@]}"
tp_expect_eq "stalled agent, silent server: still the server's timeout" handshake_timeout "$(fact outcome)"
once "$PORT_late" --handshake-timeout 400 --versions TLS1.2
tp_expect_eq "the late server on a loop that keeps up: ok" ok "$(fact outcome)"

tp_finish
