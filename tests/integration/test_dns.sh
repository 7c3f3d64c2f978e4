#!/usr/bin/env bash
# test_dns.sh - name resolution on the probe loop (c-ares) and trying every address, through
# the real engine (tests/tools/probe_once.c) against a real DNS server on 127.0.0.1
# (tests/tools/dns-server.pl) and a real TLS server on 127.0.0.1 only:
#   - a name that is never answered delays only its own probe: with 8 probes of silent names
#     in flight, a probe of a good name finishes first, ok (libuv's 4-thread getaddrinfo pool
#     used to stall every other probe behind them);
#   - the silent name itself ends dns_failure at its own deadline;
#   - NXDOMAIN is dns_failure with the resolver's reason;
#   - good.test resolves to ::1 and 127.0.0.1; the server listens on 127.0.0.1 only, so the
#     probe tries ::1 first (RFC 8305 order), is refused, and connects to 127.0.0.1;
#   - family ipv4 / ipv6 restrict the addresses (ipv6 -> refused on ::1; v4only.test with
#     ipv6 -> dns_failure "no IPv6"), and the address and family used are recorded;
#   - through the agent and a real collector: defaults.dns_servers points the agent at the test
#     server, `family: both` yields one labelled result per family, and a silent target beside
#     it reports dns_failure instead of going quiet.
set -euo pipefail
ROOT=${TP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$ROOT/tests/integration/lib.sh"
ONCE=${TP_PROBE_ONCE:?TP_PROBE_ONCE must point at the probe-once binary}
tp_install_traps
W=$(mktemp -d /tmp/tp-dns.XXXXXX)
tp_on_exit "rm -rf '$W'"

certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --no-text --outfile "$W/ca.key" 2>/dev/null
printf 'cn = "dns test CA"\nca\ncert_signing_key\nexpiration_days = 30\n' >"$W/ca.tmpl"
certtool --generate-self-signed --load-privkey "$W/ca.key" --template "$W/ca.tmpl" --outfile "$W/ca.pem" >/dev/null 2>&1
certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --no-text --outfile "$W/leaf.key" 2>/dev/null
printf 'cn = "good.test"\ndns_name = "good.test"\ndns_name = "v4only.test"\ntls_www_server\nsigning_key\nexpiration_days = 30\n' >"$W/leaf.tmpl"
certtool --generate-certificate --load-privkey "$W/leaf.key" --load-ca-certificate "$W/ca.pem" \
  --load-ca-privkey "$W/ca.key" --template "$W/leaf.tmpl" --outfile "$W/leaf.pem" >/dev/null 2>&1 ||
  tp_die "certtool failed"
tp_serve tls "$W" -cert "$W/leaf.pem" -key "$W/leaf.key" -www
PORT_tls=${PORT_tls:?tp_serve sets PORT_tls}

# The DNS server, on a free UDP port.
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  DNS_PORT=$((20000 + RANDOM % 12000))
  perl "$ROOT/tests/tools/dns-server.pl" "$DNS_PORT" >"$W/dns.log" 2>&1 &
  dns_pid=$!
  if tp_wait_for 5 "dns server" grep -qx "bound $DNS_PORT" "$W/dns.log" && tp_alive "$dns_pid"; then
    break
  fi
  tp_stop "$dns_pid" dns >/dev/null 2>&1 || true
  [ "$attempt" -lt 10 ] || tp_die "the DNS server did not start: $(cat "$W/dns.log")"
done
tp_on_exit "tp_stop $dns_pid dns >/dev/null 2>&1"

once() {
  local host=$1
  shift
  "$ONCE" --host "$host" --port "$PORT_tls" --trust "$W/ca.pem" --dns-server "127.0.0.1:$DNS_PORT" \
    --handshake-timeout 3000 "$@" >"$W/last" 2>"$W/last.err" || true
}
fact() { sed -n "s/^$1=//p" "$W/last" | head -n 1; }

extras=()
for i in 1 2 3 4 5 6 7 8; do extras+=(--extra-host "blackhole$i.test"); done
once good.test --connect-timeout 1500 "${extras[@]}"
tp_expect_eq "good name beside 8 silent names: outcome" ok "$(fact outcome)"
tp_expect_eq "good name beside 8 silent names: finished before any of them" 1 "$(fact finished_before_extras)"
tp_expect_eq "silent names: each ends dns_failure at its own deadline" \
  "dns_failure dns_failure dns_failure dns_failure dns_failure dns_failure dns_failure dns_failure" \
  "$(sed -n 's/^extra_[0-9]*_outcome=//p' "$W/last" | tr '\n' ' ' | sed 's/ $//')"
tp_say "good name resolved and probed in $(fact elapsed_ms) ms with 8 silent lookups pending"

once blackhole.test --connect-timeout 400
tp_expect_eq "silent name: outcome" dns_failure "$(fact outcome)"
tp_expect_match "silent name: detail names the host" 'cannot resolve "blackhole.test"' "$(fact detail)"

once nx.test
tp_expect_eq "NXDOMAIN: outcome" dns_failure "$(fact outcome)"
tp_expect_match "NXDOMAIN: detail" 'cannot resolve "nx.test"' "$(fact detail)"

once good.test
tp_expect_eq "::1 refused, 127.0.0.1 tried next: outcome" ok "$(fact outcome)"
tp_expect_eq "::1 refused, 127.0.0.1 tried next: address used" 127.0.0.1 "$(fact address)"
tp_expect_eq "::1 refused, 127.0.0.1 tried next: family" ipv4 "$(fact address_family)"

once good.test --family ipv6
tp_expect_eq "family ipv6: outcome (nothing listens on ::1)" connection_refused "$(fact outcome)"
tp_expect_eq "family ipv6: address" ::1 "$(fact address)"
tp_expect_eq "family ipv6: family" ipv6 "$(fact address_family)"

once good.test --family ipv4
tp_expect_eq "family ipv4: outcome" ok "$(fact outcome)"
tp_expect_eq "family ipv4: address" 127.0.0.1 "$(fact address)"

once v4only.test --family ipv6
tp_expect_eq "v4-only name with family ipv6: outcome" dns_failure "$(fact outcome)"

# --- the agent: dns_servers, family both, a silent target beside them ----------------------
TP_COLLECTOR=${TP_COLLECTOR:?TP_COLLECTOR must point at the collector binary}
TP_AGENT=${TP_AGENT:?TP_AGENT must point at the agent binary}
tp_start_collector "$TP_COLLECTOR" "$W" || tp_die "could not start the collector"
cat >"$W/agent.yaml" <<YAML
agent: {id: dns-agent, region: local}
collector: {url: "$TP_COLLECTOR_URL", insecure_plaintext: true, batch_size: 10, flush_interval: 1s}
limits: {loops: 1}
defaults: {connect_timeout: 500ms, handshake_timeout: 2s, dns_servers: "127.0.0.1:$DNS_PORT"}
profiles:
  - name: p
    trust: $W/ca.pem
targets:
  - {name: dual, host: good.test, port: $PORT_tls, family: both}
  - {name: silent, host: blackhole.test, port: $PORT_tls}
jobs:
  - {name: j, targets: [dual, silent], profiles: [p], interval: 1s}
YAML
rc=0
"$TP_AGENT" --config "$W/agent.yaml" --check >"$W/check.out" 2>&1 || rc=$?
tp_expect_eq "agent --check accepts dns_servers and family: both" 0 "$rc"
[ $rc -eq 0 ] || sed 's/^/  | /' "$W/check.out" >&2
sed 's/dns_servers: "127.0.0.1:[0-9]*"/dns_servers: "localhost:53"/' "$W/agent.yaml" >"$W/bad.yaml"
rc=0
"$TP_AGENT" --config "$W/bad.yaml" --check >"$W/bad.out" 2>&1 || rc=$?
tp_expect_eq "agent --check refuses a DNS server given by name" 2 "$rc"
tp_expect_match "  ... saying where and what is allowed" 'bad.yaml:[0-9]+:[0-9]+: .*not a list of DNS servers' "$(cat "$W/bad.out")"
rc=0
timeout 60 "$TP_AGENT" --config "$W/agent.yaml" --run-for 4s </dev/null >"$W/agent.log" 2>&1 || rc=$?
tp_expect_eq "agent --run-for 4s exits 0" 0 "$rc"
tp_stop "$TP_COLLECTOR_PID" collector >/dev/null 2>&1 || true
q() { tp_sql "$TP_DB" "$1"; }
tp_expect_ge "family both: ipv4 results, ok on 127.0.0.1" 2 \
  "$(q "SELECT count(*) FROM results WHERE target='dual' AND address_family='ipv4' AND ok=1 AND address='127.0.0.1'")"
tp_expect_ge "family both: ipv6 results, refused on ::1" 2 \
  "$(q "SELECT count(*) FROM results WHERE target='dual' AND address_family='ipv6' AND error_class='connection_refused' AND address='::1'")"
tp_expect_eq "family both: no result of another family or class" 0 \
  "$(q "SELECT count(*) FROM results WHERE target='dual' AND NOT ((address_family='ipv4' AND ok=1) OR (address_family='ipv6' AND error_class='connection_refused'))")"
tp_expect_ge "the silent target reports dns_failure (not silence)" 2 \
  "$(q "SELECT count(*) FROM results WHERE target='silent' AND error_class='dns_failure'")"

tp_finish
