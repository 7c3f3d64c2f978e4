#!/usr/bin/env bash
# test_retention.sh - storage for long windows in a real collector (retention.interval 1s):
#   1. a pusher sends batches through the real ingest (POST /v1/results) for several
#      seconds while the maintenance thread rolls them up: rollups appear during the push,
#      and every batch is acknowledged (200) -- with the ack latencies printed;
#   2. rows from 8 and 100 days ago, written straight into the database (ingest refuses
#      results older than max_result_age), are rolled up and then deleted as raw rows;
#      the 100-day-old minute's rollup is deleted too;
#   3. a late batch for a minute already rolled up is merged into that minute once, and
#      its re-send (a duplicate ack) changes nothing;
#   4. per minute, rollup probes equal the raw rows; the collector stops promptly.
# Needs TP_COLLECTOR (set by ctest), sqlite3 and python3.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${TP_COLLECTOR:?set TP_COLLECTOR to the tlsprobe-collector binary}"
[ -x "$TP_COLLECTOR" ] || tp_die "TP_COLLECTOR=$TP_COLLECTOR is not an executable"
command -v sqlite3 >/dev/null || tp_die "sqlite3 CLI missing: run deploy/scripts/install-deps.sh"
command -v python3 >/dev/null || tp_die "python3 missing"
CLIENTS=$(dirname "$0")/collector_clients.py
MINUTE=60000000000
DAY=86400000000000

tp_install_traps
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsprobe-retention.XXXXXX")
tp_on_exit "rm -rf '$WORK'"
tp_on_exit "[ \$TP_EXIT_STATUS -eq 0 ] || { tp_say 'collector log:'; sed 's/^/  | /' '$WORK/collector.log' >&2; }"

tp_start_collector "$TP_COLLECTOR" "$WORK" 0 "retention: {raw: 7d, rollups: 90d, interval: 1s}"
tp_expect_match "the collector schedules maintenance" \
  'msg="maintenance scheduled" interval=1s raw_retention=7d rollup_retention=90d' \
  "$(grep -m1 'maintenance scheduled' "$TP_COLLECTOR_LOG" || true)"

# --- 1. ingest while the maintenance thread works -------------------------------------------

BATCHES=60
PER=200
python3 "$CLIENTS" push "$TP_COLLECTOR_PORT" pusher-1 $BATCHES $PER --pause 0.08 >"$WORK/push1.out" 2>&1 &
push_pid=$!
tp_on_exit "kill $push_pid 2>/dev/null || true"

# 2. Old rows, stored as a collector before rollups would have left them: 50 from 8 days
# ago (one minute), 10 from 100 days ago. Written while the push runs.
now=$(date +%s%N)
old8=$((now - 8 * DAY - (now - 8 * DAY) % MINUTE))
old100=$((now - 100 * DAY - (now - 100 * DAY) % MINUTE))
old_rows() { # AGENT COUNT STARTED
  cat <<EOF
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
INSERT INTO results (received_unix_ns, agent_id, instance_id, batch_seq, region, target, host,
  port, sni, profile, address, result_seq, started_unix_ns, dns_ns, connect_ns, handshake_ns,
  total_ns, loop_lag_ns, ok, error_class, error_detail, tls_version, cipher, grp, alpn,
  resumed, hello_retry_request, server_signature_algorithm, chain_json,
  days_to_earliest_expiry)
SELECT $3, '$1', 1, 1, 'local', 'web', 'h', 443, '', 'modern', '127.0.0.1', i, $3 + i, 0,
  100000, 2000000 + i * 1000, 3000000 + i * 1000, 0, 1, 'ok', '', 'TLS1.3', '', '', '', 0, 0,
  '', '[]', NULL FROM n;
EOF
}
sleep 1
tp_sql "$TP_DB" "$(old_rows archive-8d 50 $old8)"
tp_sql "$TP_DB" "$(old_rows archive-100d 10 $old100)"

# Rollups must show up while the pusher is still pushing.
seen_during_push=no
for ((i = 0; i < 100; i++)); do
  tp_alive "$push_pid" || break
  if [ "$(tp_sql "$TP_DB" "SELECT coalesce(sum(probes), 0) FROM rollups WHERE span_ns = $MINUTE AND agent_id = 'pusher-1'")" -gt 0 ]; then
    seen_during_push=yes
    break
  fi
  sleep 0.1
done
rc=0
wait "$push_pid" || rc=$?
cat "$WORK/push1.out" >&2
tp_expect_eq "every batch acknowledged with 200 while maintenance ran" 0 "$rc"
tp_expect_match "push: all acks" "acks=$BATCHES non200=0 duplicates=0" "$(cat "$WORK/push1.out")"
tp_expect_eq "rollups appeared while ingest was still pushing" yes "$seen_during_push"

# --- catch up: everything pushed rolled up, old raw rows deleted ------------------------------

pushed=$((BATCHES * PER))
rolled_up() { [ "$(tp_sql "$TP_DB" "SELECT coalesce(sum(probes), 0) FROM rollups WHERE span_ns = $MINUTE")" = "$1" ] &&
  [ "$(tp_sql "$TP_DB" "SELECT count(*) FROM results WHERE started_unix_ns < $((now - 7 * DAY))")" = 0 ]; }
# 100-day rows are rolled up, deleted as raw rows, and their minute deleted as a rollup.
tp_wait_for 20 "rollups of every pushed and 8-day-old result" rolled_up $((pushed + 50)) ||
  tp_fail "rollups: $(tp_sql "$TP_DB" "SELECT sum(probes) FROM rollups WHERE span_ns = $MINUTE"), want $((pushed + 50))"
tp_expect_eq "raw rows: the pushed ones only" "$pushed" "$(tp_sql "$TP_DB" 'SELECT count(*) FROM results')"
tp_expect_eq "the 8-day-old minute is a rollup of its 50 results" 50 \
  "$(tp_sql "$TP_DB" "SELECT probes FROM rollups WHERE span_ns = $MINUTE AND start_unix_ns = $old8 AND agent_id = 'archive-8d'")"
tp_expect_eq "the 100-day-old minute's rollup is deleted" 0 \
  "$(tp_sql "$TP_DB" "SELECT count(*) FROM rollups WHERE span_ns = $MINUTE AND start_unix_ns = $old100")"
tp_expect_eq "the watermark is the newest result" \
  "$(tp_sql "$TP_DB" 'SELECT max(id) FROM results')" "$(tp_sql "$TP_DB" 'SELECT watermark FROM rollup_state')"
tp_expect_ge "raw rows complete since ~7 days ago" $((now - 7 * DAY)) \
  "$(tp_sql "$TP_DB" 'SELECT raw_complete_since_unix_ns FROM rollup_state')"

# --- 3. a late batch for a rolled-up minute, then its re-send ---------------------------------

first=$(tp_sql "$TP_DB" "SELECT min(started_unix_ns) FROM results WHERE agent_id = 'pusher-1'")
minute=$((first - first % MINUTE))
in_minute() { echo "$(tp_sql "$TP_DB" "SELECT coalesce(sum(probes), 0) FROM rollups WHERE span_ns = $MINUTE AND agent_id = 'pusher-1' AND start_unix_ns = $minute")"; }
before=$(in_minute)
tp_expect_ge "the first minute is rolled up" 1 "$before"
python3 "$CLIENTS" push "$TP_COLLECTOR_PORT" pusher-1 1 30 --first-batch 900 --started $((minute + 1000)) >"$WORK/late.out" 2>&1 ||
  tp_fail "late push: $(cat "$WORK/late.out")"
minute_holds() { [ "$(in_minute)" = "$1" ]; }
tp_wait_for 10 "the late batch in its minute" minute_holds $((before + 30)) ||
  tp_fail "late batch: minute holds $(in_minute), want $((before + 30))"
python3 "$CLIENTS" push "$TP_COLLECTOR_PORT" pusher-1 1 30 --first-batch 900 --started $((minute + 1000)) >"$WORK/resend.out" 2>&1 ||
  tp_fail "re-send: $(cat "$WORK/resend.out")"
tp_expect_match "the re-send is acknowledged as a duplicate" "acks=1 non200=0 duplicates=1" "$(cat "$WORK/resend.out")"
sleep 2.5 # two more passes
tp_expect_eq "the re-send changed nothing" $((before + 30)) "$(in_minute)"

# --- 4. rollups = raw, minute by minute ---------------------------------------------------------

tp_expect_eq "every minute's raw rows equal its rollup probes" 0 "$(tp_sql "$TP_DB" "
  SELECT count(*) FROM
    (SELECT started_unix_ns - started_unix_ns % $MINUTE AS m, count(*) AS c FROM results GROUP BY m) r
    LEFT JOIN (SELECT start_unix_ns AS m, sum(probes) AS p FROM rollups WHERE span_ns = $MINUTE GROUP BY m) u USING (m)
  WHERE u.p IS NULL OR u.p <> r.c")"
tp_expect_eq "successes: rollups = raw" "$(tp_sql "$TP_DB" "SELECT count(*) FROM results WHERE ok = 1")" \
  "$(tp_sql "$TP_DB" "SELECT sum(successes) FROM rollups WHERE span_ns = $MINUTE AND agent_id LIKE 'pusher%'")"

passes=$(grep -c 'msg="maintenance" rolled_up=' "$TP_COLLECTOR_LOG" || true)
tp_expect_ge "maintenance logged its passes" 2 "$passes"
tp_expect_eq "no failed maintenance pass" "" "$(grep 'maintenance failed' "$TP_COLLECTOR_LOG" || true)"
tp_say "a maintenance line: $(grep -m1 'raw_deleted=[1-9]' "$TP_COLLECTOR_LOG" | sed 's/.*msg=/msg=/')"

start=$(date +%s%N)
rc=0
tp_stop "$TP_COLLECTOR_PID" collector || rc=$?
tp_expect_eq "collector exits 0 on SIGTERM" 0 "$rc"
stop_ms=$((($(date +%s%N) - start) / 1000000))
tp_expect_eq "collector stops within 2 s (maintenance joined)" yes "$([ $stop_ms -lt 2000 ] && echo yes || echo "no: ${stop_ms} ms")"
tp_finish
