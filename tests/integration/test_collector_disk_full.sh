#!/usr/bin/env bash
# test_collector_disk_full.sh - a commit that fails fails its whole group (issue #9).
# RLIMIT_FSIZE caps the collector's files, so SQLite's writes start failing with "disk
# full" (EFBIG; SIGXFSZ ignored) while 8 connections push: every request of a failing
# transaction is answered 503 -- none is acknowledged, none is half stored -- and every
# batch that was acknowledged is in the file whole. With room again, the agents' retries
# (the same batches) are stored once each.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${TP_COLLECTOR:?set TP_COLLECTOR to the tlsprobe-collector binary}"
command -v sqlite3 >/dev/null || tp_die "sqlite3 CLI missing: run deploy/scripts/install-deps.sh"
CLIENTS=$(dirname "$0")/collector_clients.py
LIMIT_KIB=1536
AGENTS=4 BATCHES=40 PER=200

tp_install_traps
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsprobe-collector-full.XXXXXX")
tp_on_exit "rm -rf '$WORK'"
tp_on_exit "[ \$TP_EXIT_STATUS -eq 0 ] || tail -n 30 '$WORK/collector.log' '$WORK/collector2.log' >&2 2>/dev/null"
cat >"$WORK/collector.yaml" <<EOF
listen: 127.0.0.1:0
database: $WORK/tlsprobe.db
insecure_plaintext: true
auth: {allow_unauthenticated: true}
limits: {agent_requests_per_second: 100000, agent_burst: 1000000}
retention: {interval: 1h}
EOF

# 1. The capped collector. (The log lives outside the cap's reach only in that it is
# small; it is written through the same limit.)
(
  trap '' XFSZ
  ulimit -f "$LIMIT_KIB"
  exec "$TP_COLLECTOR" serve --config "$WORK/collector.yaml"
) </dev/null >"$WORK/collector.log" 2>&1 &
pid=$!
tp_on_exit "tp_stop $pid collector >/dev/null 2>&1"
tp_wait_for 10 "the capped collector's port" bash -c "grep -q 'msg=\"listening\"' '$WORK/collector.log'"
port=$(tp_log_field "$WORK/collector.log" listening port)

# Batches that do not overlap (--step PER), each sent once: a 503 is final for this run.
out=$(python3 "$CLIENTS" overlap "$port" "$WORK/acks.log" $AGENTS $BATCHES $PER 8 \
  --step $PER --resend 1)
tp_say "capped: $out"
tp_expect_match "some batches were acknowledged before the disk filled" 'status_200=[1-9]' "$out"
tp_expect_match "then the store failed: 503" 'status_503=[1-9]' "$out"
tp_expect_eq "nothing but 200 and 503" "" "$(awk '$6 != 200 && $6 != 503' "$WORK/acks.log")"
tp_expect_match "the failure is logged" 'msg="store failed"' "$(cat "$WORK/collector.log")"
tp_expect_eq "the collector kept running" 0 "$(kill -0 $pid 2>/dev/null; echo $?)"
rc=0
tp_stop "$pid" collector || rc=$?
tp_expect_eq "it stops cleanly" 0 "$rc"

# 2. Room again: what was acknowledged is there whole, what was refused is not there.
tp_start_collector "$TP_COLLECTOR" "$WORK" 0 "limits: {agent_requests_per_second: 100000, agent_burst: 1000000}"
verify=$(python3 "$CLIENTS" verify "$TP_DB" "$WORK/acks.log")
tp_say "after the disk filled: $verify"
tp_expect_match "every acknowledged batch is stored whole" ' missing=0 ' "$verify"
tp_expect_match "no refused batch left a row" ' unacked_present=0$' "$verify"
acked=$(awk '$6 == 200 {n += $7} END {print n + 0}' "$WORK/acks.log")
tp_expect_eq "rows = what the acks said was stored" "$acked" "$(tp_sql "$TP_DB" 'SELECT count(*) FROM results')"

# 3. The agents retry everything (the acknowledged batches too, as after a lost ack):
# each result stored once.
out=$(python3 "$CLIENTS" overlap "$TP_COLLECTOR_PORT" "$WORK/acks2.log" $AGENTS $BATCHES $PER 8 \
  --step $PER --resend 1)
tp_say "retried: $out"
tp_expect_match "every retry answered 200" "^overlap: status_200=$((AGENTS * BATCHES)) " "$out"
tp_expect_eq "the retries stored exactly what was missing" $((AGENTS * BATCHES * PER - acked)) \
  "$(sed -n 's/.* stored=\([0-9]*\)$/\1/p' <<<"$out")"
tp_expect_eq "every result once" $((AGENTS * BATCHES * PER)) \
  "$(tp_sql "$TP_DB" "SELECT count(DISTINCT agent_id || '/' || instance_id || '/' || result_seq) FROM results")"
tp_expect_eq "rows = distinct results" $((AGENTS * BATCHES * PER)) "$(tp_sql "$TP_DB" 'SELECT count(*) FROM results')"

tp_finish
