#!/usr/bin/env bash
# bench/ingest.sh [STAGES] - collector ingest: a real `tlsprobe-collector serve` (build it
# Release) on a free 127.0.0.1 port, plain HTTP, pushed to by bench-ingest with 1, 4 and 8
# pushers at each stage of stored rows, filled between stages at full speed by 8 pushers.
#
#   STAGES  stored rows to measure at, comma-separated [0,1000000]; add 10000000 when it
#           fits your time (the fill runs at the ingest rate measured).
#   env     TP_BENCH_BUILD  build directory with collector/tlsprobe-collector and
#                           bench/bench-ingest [build]
#           TP_BENCH_COLLECTOR, TP_BENCH_INGEST  the two binaries, when elsewhere (an older
#                           collector, to compare)
#           TP_BENCH_BATCHES  batches per measured run [200] (500 results each)
#           TP_BENCH_OUT    also write the figures as JSON lines to this file
#           TP_BENCH_WITH_REPORT=1  after the stages, ingest (8 pushers) alone and while
#                           `report` runs back to back on the same database, in 3
#                           interleaved rounds (issue #8: ingest slowed <= 10 % by reports)
#           TP_BENCH_REPORT_ARGS  the report run meanwhile [--since 24h --source raw]
#           TP_BENCH_REPORT_BATCHES  batches per run of those rounds [1000]
#           TP_BENCH_REPORT_WRAP  a command the report runs under (e.g. "nice -n 10")
#
# The collector runs with its production durability (synchronous=FULL: every ack is
# fsynced) and its defaults, except: a rate limit high enough not to bite (the bench's
# agents push far more often than real ones) and maintenance every hour, so the figures
# are ingest alone (bench-rollup measures maintenance's share). Output: one Markdown
# table; bytes per result = page_count x page_size / rows (indexes and dictionaries
# included, the WAL's pages too); collector CPU per result = its utime + stime over the run
# (steadier than results/s on a shared machine).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${TP_BENCH_BUILD:-$ROOT/build}
COLLECTOR=${TP_BENCH_COLLECTOR:-$BUILD/collector/tlsprobe-collector}
PUSH=${TP_BENCH_INGEST:-$BUILD/bench/bench-ingest}
STAGES=${1:-0,1000000}
BATCHES=${TP_BENCH_BATCHES:-200}
BATCH_SIZE=500
for bin in "$COLLECTOR" "$PUSH"; do
  [ -x "$bin" ] || { echo "ingest.sh: build $bin first (cmake --build $BUILD)" >&2; exit 2; }
done

# shellcheck source-path=SCRIPTDIR source=../tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"
tp_install_traps
W=$(mktemp -d /tmp/tp-bench-ingest.XXXXXX)
tp_on_exit "rm -rf '$W'"
tp_start_collector "$COLLECTOR" "$W" 0 \
  "limits: {agent_requests_per_second: 100000, agent_burst: 1000000}
retention: {interval: 1h}" || exit 1
URL=$TP_COLLECTOR_URL
DB=$TP_DB

rows() { sqlite3 "$DB" "SELECT count(*) FROM $(sqlite3 "$DB" \
  "SELECT CASE WHEN count(*) THEN 'result_rows' ELSE 'results' END FROM sqlite_master WHERE name = 'result_rows'")"; }
json_field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<<"$1"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$TP_COLLECTOR_PID/stat"; }
TICK=$(getconf CLK_TCK)

echo "bench/ingest.sh: $(uname -m), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); collector $COLLECTOR"
echo "collector: 127.0.0.1:$TP_COLLECTOR_PORT, plain HTTP, synchronous=FULL; $BATCHES batches of $BATCH_SIZE per run"
echo
echo "| stored rows | pushers | results/s | ack p50 ms | ack p99 ms | bytes/result | collector CPU µs/result | load |"
echo "|---:|---:|---:|---:|---:|---:|---:|---|"
IFS=, read -ra stage_list <<<"$STAGES"
for stage in "${stage_list[@]}"; do
  have=$(rows)
  if [ "$have" -lt "$stage" ]; then
    need=$(((stage - have + BATCH_SIZE - 1) / BATCH_SIZE))
    fill=$("$PUSH" --url "$URL" --pushers 8 --batches "$need" --batch-size $BATCH_SIZE --json)
    tp_say "filled to $(rows) rows at $(json_field "$fill" results_per_second) results/s"
  fi
  for pushers in 1 4 8; do
    start=$(rows)
    c0=$(cpu_ticks)
    out=$("$PUSH" --url "$URL" --pushers "$pushers" --batches "$BATCHES" --batch-size $BATCH_SIZE \
      --db "$DB" --json)
    cpu_us=$(echo "($(cpu_ticks) - $c0) * 1000000 / $TICK / ($BATCHES * $BATCH_SIZE)" | bc -l)
    [ -n "${TP_BENCH_OUT:-}" ] && echo "{\"stored_rows\":$start,\"collector_cpu_us_per_result\":$(printf %.2f "$cpu_us"),\"result\":$out}" >>"$TP_BENCH_OUT"
    printf '| %s | %s | %s | %s | %s | %s | %.1f | %s |\n' "$start" "$pushers" \
      "$(json_field "$out" results_per_second)" "$(json_field "$out" p50)" \
      "$(json_field "$out" p99)" "$(json_field "$out" bytes_per_result)" "$cpu_us" \
      "$(cut -d' ' -f1 /proc/loadavg)"
  done
done

# push_rate: results/s of one measured run with 8 pushers (long enough for several
# reports to run meanwhile).
REPORT_BATCHES=${TP_BENCH_REPORT_BATCHES:-1000}
push_rate() {
  json_field "$("$PUSH" --url "$URL" --pushers 8 --batches "$REPORT_BATCHES" \
    --batch-size $BATCH_SIZE --json)" results_per_second
}

# report_loop STOPFILE: runs the report back to back until STOPFILE exists (bounded: at most
# 1000 runs); prints how many ran.
report_loop() {
  local n=0
  read -ra report_args <<<"${TP_BENCH_REPORT_ARGS:---since 24h --source raw}"
  while [ ! -e "$1" ] && [ "$n" -lt 1000 ]; do
    ${TP_BENCH_REPORT_WRAP:-} "$COLLECTOR" report --db "$DB" "${report_args[@]}" >/dev/null ||
      { echo "report failed" >&2; break; }
    n=$((n + 1))
  done
  echo "$n"
}

if [ "${TP_BENCH_WITH_REPORT:-0}" = 1 ]; then
  echo
  echo "Ingest alone and while \`report ${TP_BENCH_REPORT_ARGS:---since 24h --source raw}\` runs back to back (8 pushers, interleaved rounds):"
  echo
  echo "| round | stored rows | alone results/s | with reports results/s | ratio | reports run | load |"
  echo "|---:|---:|---:|---:|---:|---:|---|"
  for round in 1 2 3; do
    start=$(rows)
    alone=$(push_rate)
    rm -f "$W/stop-reports"
    report_loop "$W/stop-reports" >"$W/reports-ran" &
    loop_pid=$!
    busy=$(push_rate)
    touch "$W/stop-reports"
    wait "$loop_pid" || true
    printf '| %s | %s | %s | %s | %.2f | %s | %s |\n' "$round" "$start" "$alone" "$busy" \
      "$(echo "$busy / $alone" | bc -l)" "$(cat "$W/reports-ran")" "$(cut -d' ' -f1 /proc/loadavg)"
  done
fi
tp_stop "$TP_COLLECTOR_PID" collector >/dev/null 2>&1 || true

