#!/usr/bin/env bash
# test_e2e.sh - the whole data path against real TLS servers on 127.0.0.1:
#   tls-targets.sh servers  <-  tlsprobe-agent (2 profiles, every 1s, --run-for 8s)
#                                  -> HTTP protobuf ->  tlsprobe-collector -> SQLite
# then checks what landed in the database (sqlite3) and what `report` prints, per
# (server case, client profile) -> expected outcome class; and that the agent accounts for
# every result it produced. Also: `--check` rejects broken configs with file:line:col.
# Needs TP_AGENT and TP_COLLECTOR (set by ctest, see tests/CMakeLists.txt).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${TP_AGENT:?set TP_AGENT to the tlsprobe-agent binary}"
: "${TP_COLLECTOR:?set TP_COLLECTOR to the tlsprobe-collector binary}"
[ -x "$TP_AGENT" ] || tp_die "TP_AGENT=$TP_AGENT is not an executable"
[ -x "$TP_COLLECTOR" ] || tp_die "TP_COLLECTOR=$TP_COLLECTOR is not an executable"
command -v sqlite3 >/dev/null || tp_die "sqlite3 CLI missing: run deploy/scripts/install-deps.sh"

RUN_FOR_S=8
MIN_ROUNDS=5 # probes expected at least per (target, profile) in RUN_FOR_S at a 1s interval

tp_install_traps
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsprobe-e2e.XXXXXX")
tp_on_exit "rm -rf '$WORK'"
# Keep the evidence of a failed run: logs, configs and the database go to the build tree.
tp_on_exit "[ \$TP_EXIT_STATUS -eq 0 ] || tp__keep_evidence"
tp__keep_evidence() {
  local keep=${TP_BUILD_DIR:-${TMPDIR:-/tmp}}/e2e-failed
  rm -rf "$keep" && cp -r "$WORK" "$keep" && tp_say "logs, configs and database kept in $keep"
}

# --- 1. config validation (negative tests first: they need no servers) ----------------------

tp_start_targets "$WORK/targets"
tp_write_agent_config "$WORK/agent.yaml" "$WORK/targets" http://127.0.0.1:9/v1/results 1s e2e-agent

rc=0
"$TP_AGENT" --config "$WORK/agent.yaml" --check >"$WORK/check-ok.out" 2>&1 || rc=$?
tp_expect_eq "--check accepts the generated config (exit status)" 0 "$rc"
[ $rc -eq 0 ] || sed 's/^/  | /' "$WORK/check-ok.out" >&2
# A clean --check says nothing alarming (e.g. no libuv handle left open at loop close).
tp_expect_eq "--check on a valid config logs no warn/error lines" "" \
  "$(grep -E 'level=(warn|error)' "$WORK/check-ok.out" || true)"

# An unknown key inside `agent:`, on a line we know: the message must point at it.
bad=$WORK/bad-key.yaml
awk '{ print } /^agent:/ { print "  colour: blue" }' "$WORK/agent.yaml" >"$bad"
bad_line=$(grep -n '^  colour: blue$' "$bad" | cut -d: -f1)
rc=0
"$TP_AGENT" --config "$bad" --check >"$WORK/check-bad.out" 2>&1 || rc=$?
msg=$(cat "$WORK/check-bad.out")
tp_expect_eq "--check on an unknown key exits 2" 2 "$rc"
tp_expect_match "--check on an unknown key prints file:line:col" "$bad:[0-9]+:[0-9]+: " "$msg"
tp_expect_match "--check points at the unknown key's line ($bad_line)" "$bad:$bad_line:[0-9]+: " "$msg"
tp_expect_match "--check names the unknown key" "colour" "$msg"

# A job that names a profile nobody defined.
bad=$WORK/bad-profile.yaml
sed 's/profiles: \[default, tls13-only\]/profiles: [default, no-such-profile]/' "$WORK/agent.yaml" >"$bad"
rc=0
"$TP_AGENT" --config "$bad" --check >"$WORK/check-bad2.out" 2>&1 || rc=$?
msg=$(cat "$WORK/check-bad2.out")
tp_expect_eq "--check on an undefined profile exits 2" 2 "$rc"
tp_expect_match "--check on an undefined profile prints file:line:col and the name" \
  "$bad:[0-9]+:[0-9]+: .*no-such-profile" "$msg"

# --- 2. the data path ----------------------------------------------------------------------

tp_start_collector "$TP_COLLECTOR" "$WORK"
tp_write_agent_config "$WORK/agent.yaml" "$WORK/targets" "$TP_COLLECTOR_URL" 1s e2e-agent

# In the background so that a signal to this script interrupts `wait` and the cleanups run
# at once; timeout bounds an agent that never stops.
rc=0
timeout $((RUN_FOR_S + 60)) "$TP_AGENT" --config "$WORK/agent.yaml" --run-for "${RUN_FOR_S}s" \
  </dev/null >"$WORK/agent.log" 2>&1 &
agent_pid=$!
tp_on_exit "tp_stop $agent_pid agent >/dev/null 2>&1"
wait "$agent_pid" || rc=$?
tp_expect_eq "agent --run-for ${RUN_FOR_S}s exits 0" 0 "$rc"
if [ $rc -ne 0 ]; then tail -n 30 "$WORK/agent.log" | sed 's/^/  | /' >&2; fi

stopped=$(grep -F 'msg="agent stopped"' "$WORK/agent.log" || true)
tp_expect_match "agent logs 'agent stopped' with its counters" 'produced=[0-9]+' "$stopped"
produced=$(tp_log_field "$WORK/agent.log" "agent stopped" produced)
pushed=$(tp_log_field "$WORK/agent.log" "agent stopped" pushed)
dropped=$(tp_log_field "$WORK/agent.log" "agent stopped" dropped)
unsent=$(tp_log_field "$WORK/agent.log" "agent stopped" unsent)
tp_expect_eq "agent: dropped" 0 "$dropped"
tp_expect_eq "agent: unsent" 0 "$unsent"
tp_expect_eq "agent: pushed == produced" "$produced" "$pushed"
tp_expect_eq "agent: every libuv handle closed at exit" "" \
  "$(grep -F 'handles still open' "$WORK/agent.log" || true)"

# Stop the collector before reading: every acknowledged batch must already be durable, and
# a clean shutdown is part of the contract.
rc=0
tp_stop "$TP_COLLECTOR_PID" collector || rc=$?
tp_expect_eq "collector exits 0 on SIGTERM" 0 "$rc"
[ $rc -eq 0 ] || tail -n 20 "$TP_COLLECTOR_LOG" | sed 's/^/  | /' >&2

DB=$TP_DB
[ -f "$DB" ] || tp_die "no database at $DB"
total=$(tp_sql "$DB" "SELECT count(*) FROM results;")
tp_expect_eq "rows in results == agent's produced=" "$produced" "$total"
tp_expect_eq "every row from agent e2e-agent, region local" "$total" \
  "$(tp_sql "$DB" "SELECT count(*) FROM results WHERE agent_id='e2e-agent' AND region='local';")"

# expect_class TARGET PROFILE CLASS: at least MIN_ROUNDS rows, all of class CLASS, and ok=1
# exactly when CLASS is ok. On failure, show what the rows did say.
expect_class() {
  local target=$1 profile=$2 class=$3 want_ok=0 where n
  [ "$class" = ok ] && want_ok=1
  where="target='$target' AND profile='$profile'"
  n=$(tp_sql "$DB" "SELECT count(*) FROM results WHERE $where;")
  tp_expect_ge "$target/$profile: probes stored" "$MIN_ROUNDS" "$n"
  tp_expect_eq "$target/$profile: every row is $class (class counts)" "$class:$n" \
    "$(tp_sql "$DB" "SELECT group_concat(error_class || ':' || c, ' ') FROM
        (SELECT error_class, count(*) c FROM results WHERE $where GROUP BY 1 ORDER BY 2 DESC);")"
  tp_expect_eq "$target/$profile: ok column is $want_ok on every row" 0 \
    "$(tp_sql "$DB" "SELECT count(*) FROM results WHERE $where AND ok != $want_ok;")"
}

expect_class good default ok
expect_class good tls13-only ok
expect_class expired default expired
expect_class expired tls13-only expired
expect_class wrongname default hostname_mismatch
expect_class wrongname tls13-only hostname_mismatch
expect_class unknownca default unknown_ca
expect_class unknownca tls13-only unknown_ca
expect_class tls12 default ok
expect_class tls12 tls13-only protocol_version
expect_class refused default connection_refused
expect_class refused tls13-only connection_refused

tp_expect_eq "tls12/default negotiated TLS1.2 on every row" "TLS1.2" \
  "$(tp_sql "$DB" "SELECT group_concat(DISTINCT tls_version) FROM results
                   WHERE target='tls12' AND profile='default';")"
tp_expect_eq "good/* negotiated TLS1.3 on every row" "TLS1.3" \
  "$(tp_sql "$DB" "SELECT group_concat(DISTINCT tls_version) FROM results WHERE target='good';")"
tp_expect_eq "successful rows have a cipher and handshake_ns > 0 (rows violating)" 0 \
  "$(tp_sql "$DB" "SELECT count(*) FROM results WHERE ok=1 AND (cipher='' OR handshake_ns<=0);")"
tp_expect_eq "result_seq unique per agent instance (duplicates)" 0 \
  "$(tp_sql "$DB" "SELECT count(*) - count(DISTINCT instance_id || '/' || result_seq) FROM results;")"

# --- 3. the report -------------------------------------------------------------------------

rc=0
"$TP_COLLECTOR" report --db "$DB" --since 1h >"$WORK/report.txt" 2>"$WORK/report.err" || rc=$?
tp_expect_eq "report (text) exits 0" 0 "$rc"
report=$(cat "$WORK/report.txt")
# SATURATED appears when some result was taken while the agent was saturated (under
# TSan's slowdown it is).
tp_expect_match "report has the column header" \
  'TARGET +PROFILE +REGION +PROBES +OK( +SATURATED)? +SUCCESS% +P50_MS +P90_MS +P99_MS +P99\.9_MS +TOP_ERROR' "$report"

# top_error CLASS N: the TOP_ERROR cell, as "class:N", "class(N)" or "class (N)".
top_error() { echo "$1(:$2|\\($2\\)| \\($2\\))"; }
# report_row TARGET PROFILE: that row of the text table, columns single-space separated.
report_row() { awk -v t="$1" -v p="$2" '$1 == t && $2 == p { $1 = $1; print; exit }' "$WORK/report.txt"; }
row=$(report_row good default)
tp_expect_match "report: good/default is 100% successful" '^good default local [0-9]+ [0-9]+ ([0-9]+ )?100(\.0+)?%? ' "$row"
n_good=$(tp_sql "$DB" "SELECT count(*) FROM results WHERE target='good' AND profile='default';")
tp_expect_match "report: good/default PROBES and OK equal the database's $n_good" \
  "^good default local $n_good $n_good " "$row"
n_exp=$(tp_sql "$DB" "SELECT count(*) FROM results WHERE target='expired' AND profile='default';")
tp_expect_match "report: expired/default 0% and TOP_ERROR expired($n_exp)" \
  "^expired default local $n_exp 0 ([0-9]+ )?0(\.0+)?%? .*$(top_error expired "$n_exp")\$" \
  "$(report_row expired default)"
n_p=$(tp_sql "$DB" "SELECT count(*) FROM results WHERE target='tls12' AND profile='tls13-only';")
tp_expect_match "report: tls12/tls13-only TOP_ERROR protocol_version" \
  " $(top_error protocol_version "$n_p")\$" "$(report_row tls12 tls13-only)"

rc=0
"$TP_COLLECTOR" report --db "$DB" --since 1h --format json --target good \
  >"$WORK/report.json" 2>"$WORK/report-json.err" || rc=$?
tp_expect_eq "report --format json --target good exits 0" 0 "$rc"
json=$(tr -d '\n' <"$WORK/report.json")
tp_expect_match "report json: only target good" '"target": *"good"' "$json"
if [[ $json =~ \"target\":\ *\"(expired|wrongname|unknownca|tls12|refused)\" ]]; then
  tp_fail "report json --target good: contains target ${BASH_REMATCH[1]}"
fi
# The p99 of good/default, in whatever number form the report uses: must be > 0.
p99=$(sed -n 's/.*"profile": *"default"[^}]*"handshake_ms": *{[^}]*"p99": *\([0-9.eE+-]*\).*/\1/p' <<<"$json" | head -1)
tp_expect_match "report json: good/default handshake p99 > 0" '^(0*[1-9][0-9]*(\.[0-9]*)?|0*\.0*[1-9][0-9]*|0\.0*[1-9][0-9]*)([eE][+-]?[0-9]+)?$' "$p99"

# report --check: the verdict is the exit status (the expired certificate is CRIT).
rc=0
"$TP_COLLECTOR" report --db "$DB" --since 1h --check >/dev/null 2>"$WORK/check.err" || rc=$?
tp_expect_eq "report --check exits 2 on a CRIT line" 2 "$rc"
tp_expect_match "... and says so" 'report --check: critical' "$(cat "$WORK/check.err")"
rc=0
"$TP_COLLECTOR" report --db "$DB" --since 1h --target good --check >/dev/null 2>&1 || rc=$?
tp_expect_eq "report --check on the healthy target exits 0" 0 "$rc"
rc=0
"$TP_COLLECTOR" report --db "$WORK/no-such.db" --check >/dev/null 2>&1 || rc=$?
tp_expect_eq "report --check without a report exits 3" 3 "$rc"

# --- 4. the report on read-only media ------------------------------------------------------
# A copy of the database in a directory the reader cannot write (an archive, a read-only
# mount): SQLite cannot create the WAL's -shm there, and the report must still read it.
ro=$WORK/readonly
mkdir "$ro"
cp "$DB" "$ro/tlsprobe.db"
chmod 444 "$ro/tlsprobe.db"
chmod 555 "$ro"
as_reader=()
# root writes anywhere: read as nobody, who cannot.
[ "$(id -u)" -eq 0 ] && as_reader=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
chmod o+x "$WORK"
rc=0
"${as_reader[@]}" "$TP_COLLECTOR" report --db "$ro/tlsprobe.db" --since 1h >"$WORK/report-ro.txt" \
  2>&1 || rc=$?
tp_expect_eq "report on a read-only directory exits 0" 0 "$rc"
tp_expect_eq "... and prints the same table" "$(sed 1d "$WORK/report.txt")" \
  "$(sed 1d "$WORK/report-ro.txt")"
tp_expect_eq "... and writes nothing there" "tlsprobe.db" "$(ls "$ro")"
chmod 755 "$ro"

tp_finish
