#!/usr/bin/env bash
# test_agent_disk_full.sh - the spool's disk fills up (issue #7): RLIMIT_FSIZE caps the
# agent's files at 200 KiB, so SQLite's writes start failing with "disk full" a few
# seconds in, as on a full filesystem. The agent must keep probing and delivering (from
# memory), say so once -- not once per result --, exit 0, and keep what is in the spool
# for the next start, which delivers it: no result is lost or counted twice.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${TP_AGENT:?set TP_AGENT to the tlsprobe-agent binary}"
: "${TP_COLLECTOR:?set TP_COLLECTOR to the tlsprobe-collector binary}"
command -v sqlite3 >/dev/null || tp_die "sqlite3 CLI missing: run deploy/scripts/install-deps.sh"

LIMIT_KIB=200
RUN_S=10

tp_install_traps
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsprobe-diskfull.XXXXXX")
tp_on_exit "rm -rf '$WORK'"
# A failure shows what the agents and the collector said (the test is timing-bound).
tp_on_exit "[ \$TP_EXIT_STATUS -eq 0 ] || tail -n 40 '$WORK/agent.log' '$WORK/agent2.log' '$WORK/collector.log' >&2 2>/dev/null"

tp_start_targets "$WORK/targets"
tp_start_collector "$TP_COLLECTOR" "$WORK"
tp_write_agent_config "$WORK/agent.yaml" "$WORK/targets" "$TP_COLLECTOR_URL" 1s full-agent

# A file-size limit makes write() fail with EFBIG once a file would pass it; ignoring
# SIGXFSZ (inherited across exec) keeps the default action from killing the agent.
rc=0
(
  trap '' XFSZ
  ulimit -f "$LIMIT_KIB"
  exec "$TP_AGENT" --config "$WORK/agent.yaml" --run-for "${RUN_S}s"
) </dev/null >"$WORK/agent.log" 2>&1 || rc=$?
tp_expect_eq "agent exits 0 with its disk full" 0 "$rc"
log=$(cat "$WORK/agent.log")
tp_expect_eq "the full disk is logged once (per minute), not per result" 1 \
  "$(grep -c 'cannot write a result to the spool' "$WORK/agent.log" || true)"
produced=$(tp_log_field "$WORK/agent.log" "agent stopped" produced)
pushed=$(tp_log_field "$WORK/agent.log" "agent stopped" pushed)
unsent=$(tp_log_field "$WORK/agent.log" "agent stopped" unsent)
dropped=$(tp_log_field "$WORK/agent.log" "agent stopped" dropped)
duplicates=$(tp_log_field "$WORK/agent.log" "agent stopped" duplicates)
tp_say "figures: produced=$produced pushed=$pushed unsent=$unsent dropped=$dropped duplicates=$duplicates"
# An acknowledged batch whose deletion failed on the full disk must not be sent again
# by the same process (CI once saw 31,024 duplicates: ack, failed delete, re-send...).
tp_expect_eq "no result re-sent within one run" 0 "$duplicates"
tp_expect_ge "probing and delivery went on after the disk filled" $((produced / 2)) "$pushed"
tp_expect_eq "produced = pushed + unsent (nothing dropped)" "$produced" $((pushed + unsent))
tp_expect_eq "no drop" 0 "$dropped"
size=$(stat -c %s "$WORK/agent.spool")
tp_expect_ge "the spool stayed under the limit" "$size" $((LIMIT_KIB * 1024))
tp_expect_match "the disk error was logged" 'keeping results in memory' "$log"

# Space again: the next start delivers what the spool kept.
rc=0
"$TP_AGENT" --config "$WORK/agent.yaml" --run-for 3s </dev/null >"$WORK/agent2.log" 2>&1 || rc=$?
tp_expect_eq "second run exits 0" 0 "$rc"
produced2=$(tp_log_field "$WORK/agent2.log" "agent stopped" produced)
tp_expect_eq "second run: nothing left unsent" 0 "$(tp_log_field "$WORK/agent2.log" "agent stopped" unsent)"
stored=$(tp_sql "$TP_DB" "SELECT count(*) FROM results WHERE agent_id = 'full-agent'")
distinct=$(tp_sql "$TP_DB" "SELECT count(DISTINCT instance_id || '/' || result_seq) FROM results WHERE agent_id = 'full-agent'")
tp_expect_eq "every result of both runs stored once" $((produced + produced2)) "$stored"
tp_expect_eq "no duplicate" "$stored" "$distinct"

tp_finish
