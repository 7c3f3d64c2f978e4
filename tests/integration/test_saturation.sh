#!/usr/bin/env bash
# test_saturation.sh - results taken while the agent is saturated are marked, delivered and
# kept out of the latency percentiles, end to end:
#   openssl s_server <- a proxy that holds every connection 100 ms <- tlsprobe-agent with ONE
#   probe slot and six series every second (limits.max_in_flight: 1, saturation.max_lateness:
#   50ms, adaptive off) -> tlsprobe-collector -> report
# Six 100 ms probes a second on one slot queue behind each other: some start more than
# 50 ms late (saturated), the first of each burst does not. The agent's debug log has every
# result's handshake, lateness and mark; the report must count exactly the marked ones and
# compute its nearest-rank percentiles over the others (all of them with
# --include-saturated).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${TP_AGENT:?set TP_AGENT to the tlsprobe-agent binary}"
: "${TP_COLLECTOR:?set TP_COLLECTOR to the tlsprobe-collector binary}"

tp_install_traps
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsprobe-saturation.XXXXXX")
tp_on_exit "rm -rf '$WORK'"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=slow.test -addext subjectAltName=DNS:slow.test \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1
tp_serve tls "$WORK" -cert "$WORK/cert.pem" -key "$WORK/key.pem" -www -quiet

# The proxy: accept, wait 100 ms, then relay to the server both ways (threads).
cat >"$WORK/proxy.py" <<'EOF'
import socket, sys, threading, time
upstream = int(sys.argv[1])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(64)
print(ls.getsockname()[1], flush=True)
def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def serve(c):
    time.sleep(0.1)
    u = socket.create_connection(("127.0.0.1", upstream))
    threading.Thread(target=pump, args=(c, u), daemon=True).start()
    pump(u, c)
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
python3 "$WORK/proxy.py" "$PORT_tls" >"$WORK/proxy.port" 2>"$WORK/proxy.log" &
PROXY_PID=$!
tp_on_exit "kill $PROXY_PID 2>/dev/null || true"
tp_wait_for 5 "the proxy's port" test -s "$WORK/proxy.port"
PROXY_PORT=$(head -1 "$WORK/proxy.port")

mkdir -p "$WORK/collector"
tp_start_collector "$TP_COLLECTOR" "$WORK/collector" || tp_die "collector did not start"

{
  cat <<EOF
agent: {id: sat-agent, region: lab, log_level: debug}
collector: {url: '$TP_COLLECTOR_URL', insecure_plaintext: true, flush_interval: 500ms}
spool: {path: $WORK/spool.db}
limits: {loops: 1, max_in_flight: 1}
saturation: {max_lateness: 50ms, max_loop_lag: 1m, max_cpu_wait_percent: 100, adaptive: false}
profiles:
  - {name: slow, trust: $WORK/cert.pem}
targets:
EOF
  for i in 1 2 3 4 5 6; do
    echo "  - {name: t$i, host: 127.0.0.1, port: $PROXY_PORT, sni: slow.test}"
  done
  echo "jobs:"
  echo "  - {targets: [t1, t2, t3, t4, t5, t6], profiles: [slow], interval: 1s}"
} >"$WORK/agent.yaml"

"$TP_AGENT" --config "$WORK/agent.yaml" --run-for 8s >"$WORK/agent.log" 2>&1 ||
  tp_die "agent failed: $(tail -5 "$WORK/agent.log")"

# Every result the agent logged: handshake (us), lateness (us), saturated.
grep 'msg="probe done"' "$WORK/agent.log" |
  sed -n 's/.*outcome=\([a-z_]*\) .*handshake_us=\([0-9]*\) .*late_us=\([0-9]*\) saturated=\([a-z]*\).*/\1 \2 \3 \4/p' \
    >"$WORK/results.txt"
total=$(wc -l <"$WORK/results.txt")
marked=$(awk '$4 == "true"' "$WORK/results.txt" | wc -l)
tp_expect_ge "the agent produced results through the slow proxy" 20 "$total"
tp_expect_eq "every one succeeded" "$total" "$(awk '$1 == "ok"' "$WORK/results.txt" | wc -l)"
tp_expect_ge "some waited > 50 ms for the one slot: saturated" 1 "$marked"
tp_expect_ge "the first of a burst did not" 1 "$((total - marked))"
tp_expect_eq "marked exactly when lateness > 50 ms" 0 \
  "$(awk '($3 > 50000) != ($4 == "true")' "$WORK/results.txt" | wc -l)"

report() { "$TP_COLLECTOR" report --db "$TP_DB" --since 10m --by agent --format json "$@"; }
report >"$WORK/report.json"
report --include-saturated >"$WORK/report-all.json"
python3 - "$WORK/results.txt" "$WORK/report.json" "$WORK/report-all.json" >"$WORK/check.txt" <<'EOF'
import json, math, sys
rows = [l.split() for l in open(sys.argv[1])]
def rank(values, q):  # nearest rank, as the report computes it
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)] / 1000.0
clean = [int(r[1]) for r in rows if r[3] == "false"]
every = [int(r[1]) for r in rows]
for path, values, excluded in ((sys.argv[2], clean, len(rows) - len(clean)), (sys.argv[3], every, 0)):
    s = json.load(open(path))["series"][0]
    print("probes", s["probes"], len(rows))
    print("saturated", s["saturated"]["results"], len(rows) - len(clean))
    print("excluded", s["saturated"]["excluded_from_latency"], excluded)
    for q, key in ((0.5, "p50"), (0.99, "p99")):
        # The log has whole microseconds, the report milliseconds to 3 places: 1 us apart
        # at most. Saturated values are 50-500 ms slower: leaving them in would show.
        got, want = s["handshake_ms"][key], rank(values, q)
        print("%s_within_1us" % key, "yes" if abs(got - want) <= 0.0011 else "no(%.3f)" % got,
              "yes")
EOF
while read -r what got want; do
  tp_expect_eq "report: $what" "$want" "$got"
done <"$WORK/check.txt"
tp_expect_match "the text report shows the SATURATED column" 'SATURATED' \
  "$("$TP_COLLECTOR" report --db "$TP_DB" --since 10m)"

tp_finish
