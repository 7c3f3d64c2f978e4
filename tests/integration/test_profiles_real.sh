#!/usr/bin/env bash
# test_profiles_real.sh - client profiles in real handshakes: the agent (--run-for) against
# openssl s_server instances on 127.0.0.1, results read back from the collector's SQLite.
#   tls10 (versions: [TLS1.0])   vs s_server -tls1 -cipher DEFAULT:@SECLEVEL=0 -> ok, TLS1.0
#   android-4.4 (built-in)       vs the same TLS 1.0 server                    -> ok, TLS1.0
#   x25519-only (built-in)       vs s_server -tls1_3 -groups secp384r1          -> failure
#   p384-only (built-in)         vs the same server                           -> ok, SECP384R1
#   h2 (alpn: [h2])              vs s_server -alpn h2                          -> ok, alpn h2
#   ordered / ordered-rev        vs s_server -tls1_2 with both AES-GCM suites  -> the client's
#                                (two cipher orders)                              first choice
# Needs TP_AGENT and TP_COLLECTOR (set by ctest).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${TP_AGENT:?set TP_AGENT to the tlsprobe-agent binary}"
: "${TP_COLLECTOR:?set TP_COLLECTOR to the tlsprobe-collector binary}"
command -v sqlite3 >/dev/null || tp_die "sqlite3 CLI missing: run deploy/scripts/install-deps.sh"

tp_install_traps
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsprobe-profiles.XXXXXX")
tp_on_exit "rm -rf '$WORK'"

# --- a self-signed RSA leaf for profiles.test: the profiles trust exactly it ---------------
certtool --generate-privkey --key-type=rsa --bits=2048 --no-text --outfile "$WORK/leaf.key" \
  >/dev/null 2>&1 || tp_die "certtool: key"
cat >"$WORK/leaf.tmpl" <<EOF
cn = "profiles.test"
dns_name = "profiles.test"
tls_www_server
signing_key
encryption_key
expiration_days = 30
EOF
certtool --generate-self-signed --no-text --load-privkey "$WORK/leaf.key" \
  --template "$WORK/leaf.tmpl" --outfile "$WORK/leaf.pem" >/dev/null 2>&1 ||
  tp_die "certtool: certificate"

# serve NAME ARGS...: openssl s_server -www with the leaf; sets PORT_<NAME>.
serve() { tp_serve "$1" "$WORK" -cert "$WORK/leaf.pem" -key "$WORK/leaf.key" -www "${@:2}"; }

serve tls10 -tls1 -cipher 'DEFAULT:@SECLEVEL=0'
serve p384 -tls1_3 -groups secp384r1
serve h2 -alpn h2
serve tls12 -tls1_2 -cipher 'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384'

tp_start_collector "$TP_COLLECTOR" "$WORK"

cat >"$WORK/agent.yaml" <<EOF
agent: {id: profiles-real, region: local, log_level: debug}
collector: {url: "$TP_COLLECTOR_URL", insecure_plaintext: true, flush_interval: 200ms}
profiles:
  - name: tls10
    versions: [TLS1.0]
    trust: $WORK/leaf.pem
  - name: android-4.4
    base: android-4.4
    trust: $WORK/leaf.pem
  - name: x25519-only
    base: x25519-only
    trust: $WORK/leaf.pem
  - name: p384-only
    base: p384-only
    trust: $WORK/leaf.pem
  - name: h2
    alpn: [h2, http/1.1]
    trust: $WORK/leaf.pem
  - name: ordered
    versions: [TLS1.2]
    ciphers: [AES-256-GCM, AES-128-GCM]
    key_exchanges: [ECDHE-RSA]
    macs: [AEAD]
    trust: $WORK/leaf.pem
  - name: ordered-rev
    versions: [TLS1.2]
    ciphers: [AES-128-GCM, AES-256-GCM]
    key_exchanges: [ECDHE-RSA]
    macs: [AEAD]
    trust: $WORK/leaf.pem
targets:
  - {name: tls10, host: 127.0.0.1, port: $PORT_tls10, sni: profiles.test}
  - {name: p384, host: 127.0.0.1, port: $PORT_p384, sni: profiles.test}
  - {name: h2, host: 127.0.0.1, port: $PORT_h2, sni: profiles.test}
  - {name: tls12, host: 127.0.0.1, port: $PORT_tls12, sni: profiles.test}
jobs:
  - {targets: [tls10], profiles: [tls10, android-4.4], interval: 1s}
  - {targets: [p384], profiles: [x25519-only, p384-only], interval: 1s}
  - {targets: [h2], profiles: [h2], interval: 1s}
  - {targets: [tls12], profiles: [ordered, ordered-rev], interval: 1s}
EOF

rc=0
timeout 60 "$TP_AGENT" --config "$WORK/agent.yaml" --run-for 3s </dev/null >"$WORK/agent.log" 2>&1 &
agent_pid=$!
tp_on_exit "tp_stop $agent_pid agent >/dev/null 2>&1"
wait "$agent_pid" || rc=$?
tp_expect_eq "agent --run-for 3s exits 0" 0 "$rc"
[ $rc -eq 0 ] || tail -n 30 "$WORK/agent.log" | sed 's/^/  | /' >&2
tp_stop "$TP_COLLECTOR_PID" collector >/dev/null 2>&1 || true

DB=$TP_DB
q() { tp_sql "$DB" "$1"; }
# facts TARGET PROFILE: "ok|class|version|group|alpn|cipher" of every row, distinct.
facts() {
  q "SELECT group_concat(f, ' / ') FROM (SELECT DISTINCT ok || '|' || error_class || '|' ||
       tls_version || '|' || grp || '|' || alpn || '|' || cipher AS f FROM results
       WHERE target='$1' AND profile='$2');"
}
rows() { q "SELECT count(*) FROM results WHERE target='$1' AND profile='$2';"; }

for pair in tls10/tls10 tls10/android-4.4 p384/x25519-only p384/p384-only h2/h2 tls12/ordered \
  tls12/ordered-rev; do
  tp_expect_ge "${pair}: rows stored" 2 "$(rows "${pair%%/*}" "${pair##*/}")"
done
tp_expect_match "TLS1.0 profile vs s_server -tls1: ok, TLS1.0 on every row" \
  '^1\|ok\|TLS1\.0\|' "$(facts tls10 tls10)"
tp_expect_eq "TLS1.0 profile: no failed row" 0 \
  "$(q "SELECT count(*) FROM results WHERE profile='tls10' AND ok=0;")"
tp_expect_match "android-4.4 vs s_server -tls1: ok, TLS1.0" '^1\|ok\|TLS1\.0\|' \
  "$(facts tls10 android-4.4)"
x25519=$(facts p384 x25519-only)
tp_expect_match "x25519-only vs a secp384r1-only TLS 1.3 server: fails" '^0\|[a-z_]+\|' "$x25519"
tp_say "x25519-only vs secp384r1-only server: engine says ${x25519} (ok|class|version|group|alpn|cipher)"
tp_expect_eq "x25519-only: no successful row" 0 \
  "$(q "SELECT count(*) FROM results WHERE profile='x25519-only' AND ok=1;")"
tp_expect_match "p384-only vs the same server: ok, TLS1.3, group SECP384R1" \
  '^1\|ok\|TLS1\.3\|SECP384R1\|' "$(facts p384 p384-only)"
tp_expect_match "alpn [h2, http/1.1] vs s_server -alpn h2: alpn h2 stored" '^1\|ok\|TLS1\.3\|[^|]*\|h2\|' \
  "$(facts h2 h2)"
# The server accepts both suites and, without -serverpref, OpenSSL takes the client's first
# choice: the order of `ciphers` reaches the wire.
tp_expect_match "ciphers [AES-256-GCM, AES-128-GCM]: the server picks AES-256-GCM" \
  '^1\|ok\|TLS1\.2\|.*AES_256_GCM_SHA384$' "$(facts tls12 ordered)"
tp_expect_match "ciphers [AES-128-GCM, AES-256-GCM]: the server picks AES-128-GCM" \
  '^1\|ok\|TLS1\.2\|.*AES_128_GCM_SHA256$' "$(facts tls12 ordered-rev)"
tp_expect_match "the agent logged the host-policy decision" 'msg="host GnuTLS policy ignored"' \
  "$(cat "$WORK/agent.log")"

if [ "$TP_FAILURES" -gt 0 ]; then
  q "SELECT target, profile, ok, error_class, tls_version, grp, alpn, cipher, error_detail
     FROM results GROUP BY target, profile;" | sed 's/^/  | /' >&2
fi
tp_finish
