#!/usr/bin/env bash
# test_metrics.sh - both /metrics endpoints, real processes end to end:
#   tls-targets.sh servers <- tlsprobe-agent (metrics on 127.0.0.1; stopped with SIGTERM)
#                               -> HTTPS + token -> tlsprobe-collector (metrics listener)
# Scrapes both with curl while they run and checks: `promtool check metrics` passes on
# each; the agent's responder answers only GET/HEAD /metrics (404, 405, 400, 431, 505
# otherwise), caps its connections and recovers; the agent's numbers move (probes
# started, lateness observed, pushes acknowledged). After the agent stopped: per target
# and profile, tlsprobe_probes_total by result equals the rows SQLite holds (a failing
# target under its error class), the handshake histogram counts the ok rows, the leaf's
# expiry gauge is the stored notAfter; a batch sent twice counts once; a hostile target
# name (quote, backslash, newline) is escaped and still parses; a restart keeps the
# agents' last-seen gauge (seeded from the database) and starts the counters at zero;
# max_series caps label sets and counts what it refused.
# Needs TP_AGENT, TP_COLLECTOR (ctest sets them), curl, sqlite3, python3, promtool.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${TP_AGENT:?set TP_AGENT to the tlsprobe-agent binary}"
: "${TP_COLLECTOR:?set TP_COLLECTOR to the tlsprobe-collector binary}"
for tool in curl sqlite3 python3 promtool; do
  command -v "$tool" >/dev/null || tp_die "$tool missing: run deploy/scripts/install-deps.sh"
done

MIN_STARTED=60 # probes the agent must have started before it is stopped (12 series, 1 s)
AGENT_ID=metrics-agent
CLIENTS=$TP_ROOT/tests/integration/collector_clients.py
PROM=$TP_ROOT/tests/tools/prom_sample.py

tp_install_traps
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsprobe-metrics.XXXXXX")
tp_on_exit "rm -rf '$WORK'"
tp_on_exit "[ \$TP_EXIT_STATUS -eq 0 ] || tp__keep_evidence"
tp__keep_evidence() {
  local keep=${TP_BUILD_DIR:-${TMPDIR:-/tmp}}/metrics-failed
  rm -rf "$keep" && cp -r "$WORK" "$keep" && tp_say "logs, scrapes and database kept in $keep"
}

# sample FILE NAME [LABEL=VALUE...]: the summed value of the matching samples ("none").
sample() { python3 "$PROM" "$@"; }
# scrape URL FILE: GET with up to 5 s of retries (a collector just restarted under a
# sanitizer may still be starting its listener); on failure the test fails saying why,
# with the collector's log, instead of set -e ending it without a word.
scrape() {
  local i err=""
  for ((i = 0; i < 50; i++)); do
    err=$(curl -sS -f --max-time 5 "$1" -o "$2" 2>&1) && return 0
    sleep 0.1
  done
  tp_fail "scrape $1: $err"
  tail -n 20 "$TP_COLLECTOR_LOG" | sed 's/^/  | /' >&2
  return 1
}
# promtool_ok DESC FILE: the exposition passes `promtool check metrics` (lint included).
promtool_ok() {
  local out rc=0
  out=$(promtool check metrics <"$2" 2>&1) || rc=$?
  tp_expect_eq "$1: promtool check metrics (exit status)" 0 "$rc"
  [ $rc -eq 0 ] || echo "$out" | head -n 20 | sed 's/^/  | /' >&2
}
# raw PORT BYTES: sends BYTES (printf %b escapes) on a fresh connection, prints the status line.
raw() {
  python3 - "$1" "$2" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
data = b""
try:
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except OSError:
    pass
print(data.split(b"\r\n")[0].decode("latin-1"))
EOF
}

# --- 1. collector (HTTPS, token, metrics listener) and agent (metrics on a local port) -------

tp_start_targets "$WORK/targets"
tp_start_collector_https "$TP_COLLECTOR" "$WORK" "$AGENT_ID" "metrics: {listen: 127.0.0.1:0}"
CMETRICS=$(tp_log_field "$TP_COLLECTOR_LOG" "metrics listening" port)
[ -n "$CMETRICS" ] || tp_die "the collector did not log its metrics port"
TOKEN=$(head -n1 "$WORK/$AGENT_ID.token")

tp_write_agent_config "$WORK/agent.yaml" "$WORK/targets" "$TP_COLLECTOR_URL" 1s "$AGENT_ID"
tp_agent_use_https "$WORK/agent.yaml" "$WORK" "$AGENT_ID"
printf 'metrics:\n  listen: 127.0.0.1:0\n' >>"$WORK/agent.yaml"

# Stopped with SIGTERM once the checks below are done, however slow the build (TSan);
# --run-for bounds it should this script die without its cleanups. Not under timeout(1):
# it passes a SIGTERM on to its whole process group too, and a second SIGTERM ends the
# agent at once (its handler is gone once shutdown began), without the flush.
"$TP_AGENT" --config "$WORK/agent.yaml" --run-for 300s </dev/null >"$WORK/agent.log" 2>&1 &
agent_pid=$!
tp_on_exit "tp_stop $agent_pid agent >/dev/null 2>&1"
agent_port() { AMETRICS=$(tp_log_field "$WORK/agent.log" "metrics listening" port) && [ -n "$AMETRICS" ]; }
tp_wait_for 10 "the agent's metrics port" agent_port || tp_die "agent: $(cat "$WORK/agent.log")"

# --- 2. the agent's /metrics while it runs ---------------------------------------------------

pushed_some() {
  curl -sf "http://127.0.0.1:$AMETRICS/metrics" -o "$WORK/agent.prom" &&
    [ "$(sample "$WORK/agent.prom" tlsprobe_agent_pushed_results_total)" != 0 ]
}
tp_wait_for 20 "the agent to push a batch" pushed_some || true
start_ns=$(date +%s%N)
curl -sf -D "$WORK/agent.headers" "http://127.0.0.1:$AMETRICS/metrics" -o "$WORK/agent.prom"
agent_scrape_ms=$((($(date +%s%N) - start_ns) / 1000000))
promtool_ok "agent /metrics" "$WORK/agent.prom"
tp_expect_match "agent: Content-Type is the text format 0.0.4" \
  'Content-Type: text/plain; version=0.0.4; charset=utf-8' "$(tr -d '\r' <"$WORK/agent.headers")"
tp_expect_eq "agent: info names the agent and region" 1 \
  "$(sample "$WORK/agent.prom" tlsprobe_agent_info agent="$AGENT_ID" region=local)"
tp_expect_ge "agent: probes started (both loops together)" 12 \
  "$(sample "$WORK/agent.prom" tlsprobe_agent_probes_started_total)"
tp_expect_ge "agent: every due probe's lateness observed" \
  "$(sample "$WORK/agent.prom" tlsprobe_agent_probes_started_total)" \
  "$(sample "$WORK/agent.prom" tlsprobe_agent_schedule_lateness_seconds_count)"
tp_expect_ge "agent: pushed results acknowledged" 1 \
  "$(sample "$WORK/agent.prom" tlsprobe_agent_pushed_results_total)"
tp_expect_ge "agent: results produced, ok" 1 \
  "$(sample "$WORK/agent.prom" tlsprobe_agent_results_total result=ok)"
tp_expect_ge "agent: results produced, connection_refused (the closed port)" 1 \
  "$(sample "$WORK/agent.prom" tlsprobe_agent_results_total result=connection_refused)"
tp_expect_eq "agent: no push failed" 0 "$(sample "$WORK/agent.prom" tlsprobe_agent_push_failures_total)"
tp_expect_eq "agent: push failure classes all exported" 7 \
  "$(sample --count "$WORK/agent.prom" tlsprobe_agent_push_failures_total)"
tp_expect_eq "agent: spool dropped nothing" 0 \
  "$(sample "$WORK/agent.prom" tlsprobe_agent_spool_dropped_results_total)"
tp_expect_match "agent: spool depth exported" '^[0-9]+$' \
  "$(sample "$WORK/agent.prom" tlsprobe_agent_spool_records)"
tp_expect_eq "agent: in-flight gauge per loop" "$(sample --count "$WORK/agent.prom" tlsprobe_agent_probes_pending)" \
  "$(sample --count "$WORK/agent.prom" tlsprobe_agent_probes_in_flight)"

# The responder refuses everything but GET/HEAD /metrics, and bounds the head.
tp_expect_eq "agent: HEAD /metrics" "HTTP/1.1 200 OK" "$(raw "$AMETRICS" 'HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n')"
tp_expect_eq "agent: GET / is 404" "HTTP/1.1 404 Not Found" "$(raw "$AMETRICS" 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')"
tp_expect_eq "agent: POST /metrics is 405" "HTTP/1.1 405 Method Not Allowed" \
  "$(raw "$AMETRICS" 'POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc')"
tp_expect_eq "agent: garbage is 400" "HTTP/1.1 400 Bad Request" "$(raw "$AMETRICS" '\x16\x03\x01\x02\x00\x01\r\n\r\n')"
tp_expect_eq "agent: HTTP/1.1 without Host is 400" "HTTP/1.1 400 Bad Request" \
  "$(raw "$AMETRICS" 'GET /metrics HTTP/1.1\r\n\r\n')"
tp_expect_eq "agent: header with space before colon is 400" "HTTP/1.1 400 Bad Request" \
  "$(raw "$AMETRICS" 'GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n')"
tp_expect_eq "agent: HTTP/2.0 is 505" "HTTP/1.1 505 HTTP Version Not Supported" \
  "$(raw "$AMETRICS" 'GET /metrics HTTP/2.0\r\n\r\n')"
big=$(python3 -c 'print("X-Pad: " + "a" * 9000 + "\\r\\n", end="")')
tp_expect_eq "agent: a 9 KB head is 431" "HTTP/1.1 431 Request Header Fields Too Large" \
  "$(raw "$AMETRICS" "GET /metrics HTTP/1.1\\r\\nHost: x\\r\\n$big\\r\\n")"

# Connection cap: 4 idle connections hold every slot, a 5th is closed unanswered; when they
# go, scrapes work again.
fds=()
for i in 1 2 3 4; do
  exec {fd}<>"/dev/tcp/127.0.0.1/$AMETRICS"
  fds+=("$fd")
done
sleep 0.3
rc=0
curl -s --max-time 5 "http://127.0.0.1:$AMETRICS/metrics" -o /dev/null || rc=$?
tp_expect_match "agent: a 5th connection is closed without an answer (curl exit 52/56)" '^(52|56)$' "$rc"
for fd in "${fds[@]}"; do exec {fd}>&-; done
scrape_ok() { curl -sf --max-time 5 "http://127.0.0.1:$AMETRICS/metrics" -o /dev/null; }
tp_wait_for 5 "scrapes to work again after the idle connections closed" scrape_ok &&
  tp_pass "agent: scrapes work again once the idle connections closed" ||
  tp_fail "agent: scrapes still refused after the idle connections closed"

# The collector's scrape while ingest runs.
scrape "http://127.0.0.1:$CMETRICS/metrics" "$WORK/collector-live.prom" || tp_finish
promtool_ok "collector /metrics while ingesting" "$WORK/collector-live.prom"

started_enough() {
  curl -sf "http://127.0.0.1:$AMETRICS/metrics" -o "$WORK/agent-late.prom" &&
    [ "$(sample "$WORK/agent-late.prom" tlsprobe_agent_probes_started_total)" -ge "$MIN_STARTED" ]
}
tp_wait_for 120 "the agent to start $MIN_STARTED probes" started_enough || true
# The engine's chain-verification cache: the same good chains come back every second.
tp_expect_ge "agent: chains verified from the cache (hits)" 1 \
  "$(sample "$WORK/agent-late.prom" tlsprobe_agent_verify_cache_total result=hit)"
tp_expect_ge "agent: ... after GnuTLS verified them once (misses)" 1 \
  "$(sample "$WORK/agent-late.prom" tlsprobe_agent_verify_cache_total result=miss)"
tp_expect_ge "agent: cached chains held" 1 \
  "$(sample "$WORK/agent-late.prom" tlsprobe_agent_cache_entries cache=verify)"
tp_expect_eq "agent: an adaptive in-flight limit per loop" \
  "$(sample --count "$WORK/agent-late.prom" tlsprobe_agent_probes_in_flight)" \
  "$(sample --count "$WORK/agent-late.prom" tlsprobe_agent_in_flight_limit)"
tp_expect_eq "agent: a saturated-results counter per loop" \
  "$(sample --count "$WORK/agent-late.prom" tlsprobe_agent_probes_in_flight)" \
  "$(sample --count "$WORK/agent-late.prom" tlsprobe_agent_saturated_results_total)"
rc=0
tp_stop "$agent_pid" agent 30 || rc=$?
tp_expect_eq "agent exits 0 on SIGTERM" 0 "$rc"
[ $rc -eq 0 ] || tail -n 30 "$WORK/agent.log" | sed 's/^/  | /' >&2
tp_expect_eq "agent: unsent results after the flush" 0 "$(tp_log_field "$WORK/agent.log" "agent stopped" unsent)"

# --- 3. the collector's numbers against what SQLite holds -------------------------------------

DB=$TP_DB
start_ns=$(date +%s%N)
curl -sf -D "$WORK/collector.headers" "http://127.0.0.1:$CMETRICS/metrics" -o "$WORK/collector.prom"
collector_scrape_ms=$((($(date +%s%N) - start_ns) / 1000000))
promtool_ok "collector /metrics" "$WORK/collector.prom"
tp_expect_match "collector: Content-Type is the text format 0.0.4" \
  'Content-Type: text/plain; version=0.0.4; charset=utf-8' "$(tr -d '\r' <"$WORK/collector.headers")"
rows=$(tp_sql "$DB" "SELECT count(*) FROM results;")
tp_expect_ge "results stored" "$MIN_STARTED" "$rows"
tp_expect_eq "probes_total over everything == rows in results" "$rows" \
  "$(sample "$WORK/collector.prom" tlsprobe_probes_total)"
tp_expect_eq "ingest results stored == rows in results" "$rows" \
  "$(sample "$WORK/collector.prom" tlsprobe_collector_ingest_results_total outcome=stored)"
tp_expect_eq "every ingest answer was 200" \
  "$(sample "$WORK/collector.prom" tlsprobe_collector_ingest_requests_total)" \
  "$(sample "$WORK/collector.prom" tlsprobe_collector_ingest_requests_total code=200)"

# Per (target, profile, result): the metric equals the rows. result is the error class, or
# ok / divergent (emulation_divergence) for successes.
while IFS='|' read -r target profile result n; do
  tp_expect_eq "probes_total{target=$target,profile=$profile,result=$result} == rows" "$n" \
    "$(sample "$WORK/collector.prom" tlsprobe_probes_total target="$target" profile="$profile" \
      region=local result="$result")"
done < <(tp_sql "$DB" "SELECT target, profile, CASE WHEN ok = 1 AND coalesce(emulation_divergence, '') != ''
                       THEN 'divergent' ELSE error_class END, count(*) FROM results GROUP BY 1, 2, 3;")
tp_expect_ge "expired/default counted as expired" 3 \
  "$(sample "$WORK/collector.prom" tlsprobe_probes_total target=expired profile=default result=expired)"
tp_expect_eq "refused/default has no ok" none \
  "$(sample "$WORK/collector.prom" tlsprobe_probes_total target=refused profile=default result=ok)"
tp_expect_eq "handshake histogram counts the ok rows of good/default" \
  "$(tp_sql "$DB" "SELECT count(*) FROM results WHERE target='good' AND profile='default' AND ok=1;")" \
  "$(sample "$WORK/collector.prom" tlsprobe_handshake_duration_seconds_count target=good profile=default)"
tp_expect_eq "the +Inf bucket equals the count" \
  "$(sample "$WORK/collector.prom" tlsprobe_handshake_duration_seconds_count target=good profile=default)" \
  "$(sample "$WORK/collector.prom" tlsprobe_handshake_duration_seconds_bucket target=good profile=default le=+Inf)"
tp_expect_eq "no histogram for a target that never succeeded" 0 \
  "$(sample --count "$WORK/collector.prom" tlsprobe_handshake_duration_seconds_count target=refused)"
tp_expect_eq "hrr_total exists (at 0) for good/default" 0 \
  "$(sample "$WORK/collector.prom" tlsprobe_hrr_total target=good profile=default)"
leaf_not_after=$(tp_sql "$DB" "SELECT chain_json FROM results WHERE target='good' AND chain_json != '[]'
                               ORDER BY started_unix_ns DESC LIMIT 1;" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["not_after_unix"])')
tp_expect_eq "good's leaf expiry gauge == the stored notAfter" "$leaf_not_after" \
  "$(sample "$WORK/collector.prom" tlsprobe_cert_expiry_timestamp_seconds target=good position=0)"
tp_expect_eq "expired's leaf expiry gauge is in the past" 1 \
  "$(python3 -c "import sys, time; print(int(float(sys.argv[1]) < time.time()))" \
    "$(sample "$WORK/collector.prom" tlsprobe_cert_expiry_timestamp_seconds target=expired position=0)")"
tp_expect_eq "no expiry gauge for the closed port" 0 \
  "$(sample --count "$WORK/collector.prom" tlsprobe_cert_expiry_timestamp_seconds target=refused)"
seen=$(sample "$WORK/collector.prom" tlsprobe_agent_last_seen_timestamp_seconds agent="$AGENT_ID")
tp_expect_eq "the agent's last-seen is within the last minute" 1 \
  "$(python3 -c "import sys, time; print(int(abs(time.time() - float(sys.argv[1])) < 60))" "$seen")"

# --- 4. a re-sent batch counts once; a hostile target name is escaped --------------------------

post() { # FILE -> HTTP status
  curl -s -o /dev/null -w '%{http_code}' --cacert "$WORK/collector-ca.pem" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/x-protobuf' \
    --data-binary "@$1" "$TP_COLLECTOR_URL"
}
python3 "$CLIENTS" batch "$WORK/dup.bin" --agent "$AGENT_ID" --instance 91 --target dup-target --results 3
dups_before=$(sample "$WORK/collector.prom" tlsprobe_collector_ingest_duplicate_batches_total)
tp_expect_eq "first send of the batch" 200 "$(post "$WORK/dup.bin")"
tp_expect_eq "the same batch again (a re-send)" 200 "$(post "$WORK/dup.bin")"
hostile=$'evil"name\\x\nnext line'
python3 "$CLIENTS" batch "$WORK/hostile.bin" --agent "$AGENT_ID" --instance 92 --seq 2 --target "$hostile"
tp_expect_eq "a batch with a hostile target name" 200 "$(post "$WORK/hostile.bin")"
scrape "http://127.0.0.1:$CMETRICS/metrics" "$WORK/collector2.prom" || tp_finish
promtool_ok "collector /metrics with a hostile target name" "$WORK/collector2.prom"
tp_expect_eq "3 results sent twice count 3" 3 \
  "$(sample "$WORK/collector2.prom" tlsprobe_probes_total target=dup-target)"
tp_expect_eq "the re-send counted as a duplicate batch" $((dups_before + 1)) \
  "$(sample "$WORK/collector2.prom" tlsprobe_collector_ingest_duplicate_batches_total)"
tp_expect_eq "rows for dup-target" 3 "$(tp_sql "$DB" "SELECT count(*) FROM results WHERE target='dup-target';")"
tp_expect_eq "the hostile name, unescaped, is one series" 1 \
  "$(sample "$WORK/collector2.prom" tlsprobe_probes_total target="$hostile")"
tp_expect_eq "the hostile name is escaped on one line" 1 \
  "$(grep -cF 'tlsprobe_probes_total{target="evil\"name\\x\nnext line",profile="modern",region="local",result="ok"} 1' \
    "$WORK/collector2.prom" || true)"

# --- 5. restart: last-seen seeded from the database, counters from zero; the series cap ---------

rc=0
tp_stop "$TP_COLLECTOR_PID" collector || rc=$?
tp_expect_eq "collector exits 0 on SIGTERM" 0 "$rc"
sed -i 's/^metrics: .*/metrics: {listen: 127.0.0.1:0, max_series: 100}/' "$WORK/collector.yaml"
tp__run_collector "$TP_COLLECTOR" "$WORK" https || tp_die "the collector did not restart"
CMETRICS=$(tp_log_field "$TP_COLLECTOR_LOG" "metrics listening" port || true)
if [ -z "$CMETRICS" ]; then
  tp_fail "the restarted collector logged no metrics port; its log:"
  sed 's/^/  | /' "$TP_COLLECTOR_LOG" >&2
  tp_finish
fi
scrape "http://127.0.0.1:$CMETRICS/metrics" "$WORK/restart.prom" || tp_finish
promtool_ok "collector /metrics after a restart" "$WORK/restart.prom"
seed=$(tp_sql "$DB" "SELECT max(last_received_unix_ns) FROM spools WHERE agent_id='$AGENT_ID';" ||
  echo "sqlite3 failed")
tp_expect_eq "last-seen after the restart == the store's last delivery (within 1 ms)" 1 \
  "$(python3 -c "import sys; print(int(abs(float(sys.argv[2]) - int(sys.argv[1]) / 1e9) < 0.001))" \
    "$seed" "$(sample "$WORK/restart.prom" tlsprobe_agent_last_seen_timestamp_seconds agent="$AGENT_ID")")"
tp_expect_eq "counters start from zero after a restart" none \
  "$(sample "$WORK/restart.prom" tlsprobe_probes_total)"
python3 "$CLIENTS" batch "$WORK/many.bin" --agent "$AGENT_ID" --instance 93 --seq 3 --results 150 \
  --target many --distinct-targets 1
tp_expect_eq "a batch of 150 distinct targets" 200 "$(post "$WORK/many.bin")"
scrape "http://127.0.0.1:$CMETRICS/metrics" "$WORK/capped.prom" || tp_finish
promtool_ok "collector /metrics at the series cap" "$WORK/capped.prom"
tp_expect_eq "label sets held == max_series" 100 "$(sample "$WORK/capped.prom" tlsprobe_collector_metrics_series)"
refused=$(sample "$WORK/capped.prom" tlsprobe_collector_metrics_series_refused_total)
tp_expect_ge "refused label sets counted" 1 "$refused"
tp_expect_eq "every result still counted in the collector's totals" 150 \
  "$(sample "$WORK/capped.prom" tlsprobe_collector_ingest_results_total outcome=stored)"

series=$(grep -vc '^#' "$WORK/collector.prom" || true)
tp_say "figures: agent scrape ${agent_scrape_ms} ms ($(wc -c <"$WORK/agent.prom") bytes);" \
  "collector scrape ${collector_scrape_ms} ms ($(wc -c <"$WORK/collector.prom") bytes, $series samples," \
  "render $(sample "$WORK/collector.prom" tlsprobe_collector_metrics_render_seconds) s)"
tp_finish
