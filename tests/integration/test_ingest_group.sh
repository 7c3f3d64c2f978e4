#!/usr/bin/env bash
# test_ingest_group.sh - group commit in a real collector (issue #9): many concurrent
# pushers re-sending overlapping batches are stored exactly once and every ack's stored
# count adds up to the distinct total; batches are committed together (more batches than
# transactions); and an ack is only ever sent for what is committed -- a collector killed
# with SIGKILL in the middle of a push has every acknowledged result in its database.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${TP_COLLECTOR:?set TP_COLLECTOR to the tlsprobe-collector binary}"
command -v sqlite3 >/dev/null || tp_die "sqlite3 CLI missing: run deploy/scripts/install-deps.sh"
CLIENTS=$(dirname "$0")/collector_clients.py

tp_install_traps
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsprobe-group.XXXXXX")
tp_on_exit "rm -rf '$WORK'"
tp_on_exit "[ \$TP_EXIT_STATUS -eq 0 ] || tail -n 30 '$WORK/collector.log' >&2 2>/dev/null"
LIMITS="limits: {agent_requests_per_second: 100000, agent_burst: 1000000}"

# 1. 6 agents x 30 batches of 100 results, batch b holding result_seq 50b+1..50b+100 (every
# result in two batches), each batch sent twice, shuffled, by 16 concurrent connections:
# 360 requests for 6 x 1,550 distinct results.
AGENTS=6 BATCHES=30 PER=100
DISTINCT=$((AGENTS * (50 * (BATCHES - 1) + PER)))
tp_start_collector "$TP_COLLECTOR" "$WORK" 0 "$LIMITS"
out=$(python3 "$CLIENTS" overlap "$TP_COLLECTOR_PORT" "$WORK/acks1.log" $AGENTS $BATCHES $PER 16)
tp_say "$out"
tp_expect_match "every request answered 200" "^overlap: status_200=$((AGENTS * BATCHES * 2)) stored=" "$out"
tp_expect_eq "the acks' stored counts add up to the distinct results" "$DISTINCT" \
  "$(sed -n 's/.* stored=\([0-9]*\)$/\1/p' <<<"$out")"
tp_expect_eq "rows = distinct results" "$DISTINCT" "$(tp_sql "$TP_DB" 'SELECT count(*) FROM results')"
tp_expect_eq "no result stored twice" "$DISTINCT" \
  "$(tp_sql "$TP_DB" "SELECT count(*) FROM (SELECT DISTINCT agent_id, instance_id, result_seq FROM results)")"
tp_expect_eq "every agent has its numbers 1..last" "$AGENTS" \
  "$(tp_sql "$TP_DB" "SELECT count(*) FROM (SELECT agent_id, count(*) n, min(result_seq) lo, max(result_seq) hi
     FROM results GROUP BY agent_id) WHERE n = hi AND lo = 1 AND hi = $((50 * (BATCHES - 1) + PER))")"
tp_expect_eq "the spools' counters agree" "$DISTINCT" \
  "$(tp_sql "$TP_DB" 'SELECT sum(results) FROM spools')"
tp_expect_eq "no ack stored more than its batch" 0 \
  "$(awk '$6 == 200 && $7 > $5 - $4 + 1' "$WORK/acks1.log" | wc -l)"
tp_stop "$TP_COLLECTOR_PID" collector >/dev/null
tx=$(tp_log_field "$TP_COLLECTOR_LOG" "ingest stopped" transactions)
bt=$(tp_log_field "$TP_COLLECTOR_LOG" "ingest stopped" batches)
mx=$(tp_log_field "$TP_COLLECTOR_LOG" "ingest stopped" max_batches_per_transaction)
tp_say "group commit: $bt batches in $tx transactions, at most $mx in one"
tp_expect_eq "every batch went through the writer" $((AGENTS * BATCHES * 2)) "$bt"
tp_expect_ge "batches were committed together" 2 "$mx"
tp_expect_ge "fewer transactions than batches" "$tx" $((bt - 1))

# 2. An ack means committed: SIGKILL while 16 connections push (fresh agents), then
# every batch that was answered 200 must be in the file whole.
tp_start_collector "$TP_COLLECTOR" "$WORK" 0 "$LIMITS"
python3 "$CLIENTS" overlap "$TP_COLLECTOR_PORT" "$WORK/acks2.log" 8 200 100 16 \
  --prefix killed --stop-on-error 1 >"$WORK/push2.out" 2>&1 &
push=$!
tp_on_exit "kill $push 2>/dev/null || true"
tp_wait_for 30 "some acks before the kill" \
  bash -c "[ \$(awk '\$6 == 200' '$WORK/acks2.log' 2>/dev/null | wc -l) -ge 40 ]"
kill -KILL "$TP_COLLECTOR_PID"
wait "$TP_COLLECTOR_PID" 2>/dev/null || true
wait "$push" || true
tp_say "$(cat "$WORK/push2.out")"
verify=$(python3 "$CLIENTS" verify "$TP_DB" "$WORK/acks2.log")
tp_say "after SIGKILL: $verify"
tp_expect_match "acks were received before the kill" '^acked=([4-9][0-9]|[0-9]{3,}) ' "$verify"
tp_expect_match "every acknowledged batch is stored whole" ' missing=0 ' "$verify"
# The file opens (WAL recovered) and no result is there twice.
tp_start_collector "$TP_COLLECTOR" "$WORK" 0 "$LIMITS"
tp_expect_eq "no duplicate after recovery" 0 \
  "$(tp_sql "$TP_DB" "SELECT count(*) - count(DISTINCT agent_id || '/' || instance_id || '/' || result_seq) FROM results")"
tp_stop "$TP_COLLECTOR_PID" collector >/dev/null

tp_finish
