#!/usr/bin/env bash
# test_agent_answers.sh - what the agent does with each class of collector answer
# (agent/pusher.h, docs/architecture.md), against tests/tools/fake_collector.py, a real
# HTTP server on 127.0.0.1 that answers as scripted and logs every request it gets:
#   302                 a configuration problem: retried every 5 min, not hammered; nothing
#                       dropped (everything still spooled at the stop), logged at error
#   503 + Retry-After   the same batch again after the time the collector asked for
#   200 without an ack  the same batch again (backoff), then delivered
#   400 for everything  split down to single results, each replaced once by a minimal
#                       result, then dropped and counted; a bounded number of requests,
#                       never a loop; the agent stops cleanly
# (413 is covered against the real collector in unit test test_pusher, 401 and certificate
# failures in test_agent_https.)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${TP_AGENT:?set TP_AGENT to the tlsprobe-agent binary}"
command -v python3 >/dev/null || tp_die "python3 missing: run deploy/scripts/install-deps.sh"
FAKE=$(dirname "$0")/../tools/fake_collector.py

tp_install_traps
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsprobe-answers.XXXXXX")
tp_on_exit "rm -rf '$WORK'"
tp_start_targets "$WORK/targets"

# run_case NAME SCRIPT RUN_SECONDS [BATCH_SIZE]: a fresh fake collector and agent (own
# spool); sets LOG (the fake's request log) and ALOG (the agent's log).
run_case() {
  local name=$1 script=$2 secs=$3 batch=${4:-200} fake_pid port rc=0
  LOG=$WORK/$name.requests
  ALOG=$WORK/$name.log
  python3 "$FAKE" "$WORK/$name.port" "$LOG" "$script" &
  fake_pid=$!
  tp_on_exit "kill $fake_pid 2>/dev/null || true"
  have_port() { [ -s "$WORK/$name.port" ]; }
  tp_wait_for 10 "the fake collector's port" have_port
  port=$(cat "$WORK/$name.port")
  tp_write_agent_config "$WORK/$name.yaml" "$WORK/targets" "http://127.0.0.1:$port/v1/results" 1s \
    "answers-$name"
  sed -i "s/^  batch_size: 200$/  batch_size: $batch/; s/^  flush_interval: 2s$/  flush_interval: 500ms/" \
    "$WORK/$name.yaml"
  "$TP_AGENT" --config "$WORK/$name.yaml" --run-for "${secs}s" </dev/null >"$ALOG" 2>&1 || rc=$?
  kill "$fake_pid" 2>/dev/null || true
  wait "$fake_pid" 2>/dev/null || true
  tp_expect_eq "$name: agent exits 0" 0 "$rc"
}
requests() { wc -l <"$LOG"; }
nth() { sed -n "${1}p" "$LOG" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }
stat_of() { tp_log_field "$ALOG" "agent stopped" "$1"; }

# --- 302 ----------------------------------------------------------------------------------------
run_case redirect redirect 3
tp_expect_eq "302: one request, no hammering (next try in 5 min)" 1 "$(requests)"
tp_expect_match "302: logged at error as a configuration problem, with the answer" \
  'level=error .*collector refuses our pushes \(fix the configuration\).*reason="HTTP 302' "$(cat "$ALOG")"
tp_expect_eq "302: nothing dropped" 0 "$(stat_of dropped)"
tp_expect_eq "302: everything still in the spool" "$(stat_of produced)" "$(stat_of unsent)"

# --- 503 + Retry-After ----------------------------------------------------------------------------
run_case busy busy:2,busy:2,ok 3
tp_expect_ge "503: at least 3 requests" 3 "$(requests)"
tp_expect_eq "503: the same batch each time" "$(nth 1 batch_seq) $(nth 1 batch_seq)" \
  "$(nth 2 batch_seq) $(nth 3 batch_seq)"
gap=$(python3 -c "print(int(($(nth 2 t) - $(nth 1 t)) * 1000))")
tp_expect_ge "503: Retry-After 2 honoured (ms between the first two tries)" 1900 "$gap"
tp_expect_eq "503: then everything delivered" "$(stat_of produced)" "$(stat_of pushed)"
tp_expect_eq "503: nothing left" 0 "$(stat_of unsent)"

# --- 200 without a valid acknowledgement ------------------------------------------------------------
run_case garbage garbage-ack,ok 3
tp_expect_eq "bad ack: retried as the same batch" "$(nth 1 batch_seq)" "$(nth 2 batch_seq)"
tp_expect_eq "bad ack: the retry carries the same results" "$(nth 1 seqs)" "$(nth 2 seqs)"
tp_expect_eq "bad ack: then everything delivered" "$(stat_of produced)" "$(stat_of pushed)"

# --- 400 for everything ------------------------------------------------------------------------------
run_case refuse refuse 2 4
produced=$(stat_of produced)
tp_say "refuse: produced=$produced requests=$(requests)"
tp_expect_ge "400: the agent produced results" 1 "$produced"
tp_expect_match "400: batches split" 'msg="collector refused a batch: splitting it"' "$(cat "$ALOG")"
tp_expect_eq "400: every result replaced once by a minimal result" "$produced" "$(stat_of replaced)"
tp_expect_eq "400: ... then dropped and counted" "$produced" "$(stat_of rejected)"
tp_expect_eq "400: nothing left in the spool" 0 "$(stat_of unsent)"
tp_expect_ge "400: a bounded number of requests (<= 6 per result + 20)" "$(requests)" \
  $((6 * produced + 20))
singles=$(python3 -c "import json; print(sum(1 for l in open('$LOG') if json.loads(l)['results'] == 1))")
tp_expect_ge "400: single-result requests isolate each result (replacement, then refusal)" \
  $((2 * produced)) "$singles"

tp_finish
