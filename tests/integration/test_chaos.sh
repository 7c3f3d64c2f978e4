#!/usr/bin/env bash
# test_chaos.sh - nothing lost, nothing counted twice, under crashes (issue #7):
#   three agents (durable spools) and one collector on 127.0.0.1 probe the local TLS
#   servers for CHAOS_S seconds; the collector is killed with SIGKILL 5 times at random
#   moments (down 1-3 s each, restarted on the same port and database), one agent once
#   (restarted on the same spool), and one agent gets a SIGHUP (it must live on).
# Then the agents stop (SIGTERM) and, per agent, what its spool numbered (produced) is
# compared with what the collector stored: stored + reported lost + still spooled must
# equal produced, with no duplicate and no unexplained gap; `report` totals must match.
# Phase 2: with the collector down, SIGTERM leaves the results in the spool and says how
# many; a restart delivers them. Phase 3: a spool too small for a long outage drops the
# oldest results and the report shows the loss for that agent.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${TP_AGENT:?set TP_AGENT to the tlsprobe-agent binary}"
: "${TP_COLLECTOR:?set TP_COLLECTOR to the tlsprobe-collector binary}"
command -v sqlite3 >/dev/null || tp_die "sqlite3 CLI missing: run deploy/scripts/install-deps.sh"
command -v python3 >/dev/null || tp_die "python3 missing: run deploy/scripts/install-deps.sh"

CHAOS_S=${TP_CHAOS_SECONDS:-75}
COLLECTOR_KILLS=5
AGENTS=(chaos-a chaos-b chaos-c)

tp_install_traps
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsprobe-chaos.XXXXXX")
tp_on_exit "rm -rf '$WORK'"
tp_on_exit "[ \$TP_EXIT_STATUS -eq 0 ] || tp__keep_evidence"
tp__keep_evidence() {
  local keep=${TP_BUILD_DIR:-${TMPDIR:-/tmp}}/chaos-failed
  rm -rf "$keep" && cp -r "$WORK" "$keep" && tp_say "logs, spools and database kept in $keep"
}

tp_start_targets "$WORK/targets"
PORT=$(tp_free_port)
RESTARTS=0
start_collector() {
  [ -f "$WORK/collector.log" ] && cat "$WORK/collector.log" >>"$WORK/collector-all.log"
  tp_start_collector "$TP_COLLECTOR" "$WORK" "$PORT"
}
kill_collector() {
  kill -KILL "$TP_COLLECTOR_PID" 2>/dev/null || true
  wait "$TP_COLLECTOR_PID" 2>/dev/null || true
}
start_collector
URL=http://127.0.0.1:$PORT/v1/results

declare -A PID
start_agent() { # id
  "$TP_AGENT" --config "$WORK/$1.yaml" </dev/null >>"$WORK/$1.log" 2>&1 &
  PID[$1]=$!
  tp_on_exit "tp_stop ${PID[$1]} $1 >/dev/null 2>&1"
}
for id in "${AGENTS[@]}"; do
  tp_write_agent_config "$WORK/$id.yaml" "$WORK/targets" "$URL" 1s "$id"
  start_agent "$id"
done

# --- 1. chaos -------------------------------------------------------------------------------
# Kill moments: random, but at least 4 s apart so each outage ends before the next.
slot=$((CHAOS_S / (COLLECTOR_KILLS + 1)))
agent_killed=0
hup_sent=0
for ((k = 1; k <= COLLECTOR_KILLS; k++)); do
  sleep $((slot - 3 + RANDOM % 3)).$((RANDOM % 10))
  kill_collector
  down=$((1 + RANDOM % 3))
  tp_say "chaos: collector killed ($k/$COLLECTOR_KILLS), down ${down}s"
  if [ $agent_killed -eq 0 ] && [ "$k" -eq 2 ]; then
    kill -KILL "${PID[chaos-b]}" && wait "${PID[chaos-b]}" 2>/dev/null || true
    tp_say "chaos: agent chaos-b killed"
    agent_killed=1
  fi
  sleep "$down"
  start_collector
  RESTARTS=$((RESTARTS + 1))
  if [ $agent_killed -eq 1 ] && ! tp_alive "${PID[chaos-b]}"; then
    start_agent chaos-b
    tp_say "chaos: agent chaos-b restarted on its spool"
  fi
  if [ $hup_sent -eq 0 ] && [ "$k" -eq 3 ]; then
    kill -HUP "${PID[chaos-c]}"
    hup_sent=1
  fi
done
sleep "$slot"
tp_expect_eq "agent chaos-c survived SIGHUP" yes "$(tp_alive "${PID[chaos-c]}" && echo yes || echo no)"
tp_expect_match "agent chaos-c logged the reload" 'msg="SIGHUP: reloading collector credentials"' \
  "$(cat "$WORK/chaos-c.log")"

# Graceful stop with the collector up: every agent flushes its spool.
for id in "${AGENTS[@]}"; do
  rc=0
  tp_stop "${PID[$id]}" "$id" 30 || rc=$?
  tp_expect_eq "$id exits 0 on SIGTERM" 0 "$rc"
done

spool_sql() { sqlite3 -batch -noheader "$WORK/$1.spool" "$2"; }
total_stored=0
for id in "${AGENTS[@]}"; do
  spool_id=$(spool_sql "$id" "SELECT value FROM meta WHERE key = 'spool_id'")
  produced=$(spool_sql "$id" "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'records'), 0)")
  spooled=$(spool_sql "$id" "SELECT count(*) FROM records")
  stored=$(tp_sql "$TP_DB" "SELECT count(*) FROM results WHERE agent_id = '$id' AND instance_id = $spool_id")
  distinct=$(tp_sql "$TP_DB" "SELECT count(DISTINCT result_seq) FROM results WHERE agent_id = '$id' AND instance_id = $spool_id")
  max_seq=$(tp_sql "$TP_DB" "SELECT coalesce(max(result_seq), 0) FROM results WHERE agent_id = '$id' AND instance_id = $spool_id")
  dropped=$(tp_sql "$TP_DB" "SELECT coalesce(sum(count), 0) FROM drops WHERE agent_id = '$id'")
  spools=$(tp_sql "$TP_DB" "SELECT count(*) FROM spools WHERE agent_id = '$id'")
  tp_say "figures $id: produced=$produced stored=$stored duplicates=$((stored - distinct)) dropped=$dropped in_spool=$spooled"
  tp_expect_ge "$id produced results" 20 "$produced"
  tp_expect_eq "$id: one spool across its restarts" 1 "$spools"
  tp_expect_eq "$id: no duplicate" "$stored" "$distinct"
  tp_expect_eq "$id: stored + dropped + spooled = produced" "$produced" $((stored + dropped + spooled))
  tp_expect_eq "$id: nothing left in the spool after a graceful stop" 0 "$spooled"
  tp_expect_eq "$id: numbers 1..$produced all stored" "$produced" "$max_seq"
  total_stored=$((total_stored + stored))
done
tp_expect_eq "collector restarts" "$COLLECTOR_KILLS" "$RESTARTS"
tp_expect_match "the killed agent resumed its spool" 'msg="pusher started".*spooled=' \
  "$(grep -F 'msg="pusher started"' "$WORK/chaos-b.log" | sed -n 2p)"

json=$("$TP_COLLECTOR" report --db "$TP_DB" --since 1h --format json)
probes=$(python3 -c 'import json,sys; print(sum(s["probes"] for s in json.load(sys.stdin)["series"]))' <<<"$json")
tp_expect_eq "report totals = stored results" "$total_stored" "$probes"

# --- 2. SIGTERM while the collector is down: results stay in the spool -----------------------
kill_collector
start_agent chaos-a
sleep 4
rc=0
tp_stop "${PID[chaos-a]}" chaos-a 30 || rc=$?
tp_expect_eq "chaos-a exits 0 with the collector down" 0 "$rc"
last=$(grep -F 'msg="agent stopped"' "$WORK/chaos-a.log" | tail -1)
unsent=$(sed -n 's/.* unsent=\([0-9]*\).*/\1/p' <<<"$last")
tp_expect_ge "its last line counts results left unsent" 1 "${unsent:-0}"
tp_expect_match "... and says where they stay" "stay in the spool $WORK/chaos-a.spool" "$last"
tp_expect_eq "... and they are in the spool" "$unsent" "$(spool_sql chaos-a "SELECT count(*) FROM records")"
stored_a() { tp_sql "$TP_DB" "SELECT count(*) FROM results WHERE agent_id = 'chaos-a'"; }
before=$(stored_a)
start_collector
start_agent chaos-a
delivered() { [ $(($(stored_a) - before)) -ge "$unsent" ]; }
tp_wait_for 30 "the next start delivers them" delivered || true
tp_stop "${PID[chaos-a]}" chaos-a 30 || true
tp_expect_ge "the next start delivered them" "$unsent" $(($(stored_a) - before))
tp_expect_eq "... and emptied the spool" 0 "$(spool_sql chaos-a "SELECT count(*) FROM records")"

# --- 3. a spool too small for the outage: drops, reported -----------------------------------
kill_collector
tp_write_agent_config "$WORK/small.yaml" "$WORK/targets" "$URL" 1s chaos-small
printf 'spool:\n  max_bytes: 65536\n' >>"$WORK/small.yaml"
start_agent small
tp_wait_for 90 "the 64 KiB spool overflows" grep -q 'spool full: dropped the oldest' "$WORK/small.log" || true
start_collector
small_loss_arrived() {
  [ "$(tp_sql "$TP_DB" "SELECT coalesce(sum(count), 0) FROM drops WHERE agent_id = 'chaos-small'")" -gt 0 ]
}
tp_wait_for 30 "the small agent's loss reaches the collector" small_loss_arrived || true
tp_stop "${PID[small]}" small 30 || true
warns=$(grep -c 'spool full: dropped the oldest' "$WORK/small.log" || true)
tp_expect_eq "the overflow is logged once (per minute), not per result" 1 "$warns"
text=$("$TP_COLLECTOR" report --db "$TP_DB" --since 1h)
tp_expect_match "report shows the small agent's loss" \
  'WARN agent chaos-small: [0-9]+ results lost in the window \(spool_full [0-9]+' "$text"
tp_expect_match "report lists it with LOSS" 'chaos-small +[0-9T:-]+Z +[0-9]+ +[1-9][0-9]* +0 +LOSS' "$text"
sp=$(spool_sql small "SELECT value FROM meta WHERE key = 'spool_id'")
produced=$(spool_sql small "SELECT seq FROM sqlite_sequence WHERE name = 'records'")
stored=$(tp_sql "$TP_DB" "SELECT count(*) FROM results WHERE agent_id = 'chaos-small' AND instance_id = $sp")
dropped=$(tp_sql "$TP_DB" "SELECT sum(count) FROM drops WHERE agent_id = 'chaos-small'")
spooled=$(spool_sql small "SELECT count(*) FROM records")
tp_say "figures chaos-small: produced=$produced stored=$stored dropped=$dropped in_spool=$spooled"
tp_expect_eq "chaos-small: stored + dropped + spooled = produced" "$produced" $((stored + dropped + spooled))

tp_finish
