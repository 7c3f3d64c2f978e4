#!/usr/bin/env bash
# demo.sh - the whole data path on one machine, in about a minute:
#   install the Debian packages, build into build/, start the local TLS servers of
#   tls-targets.sh, a collector on SQLite (HTTPS with its own CA, a bearer token minted for
#   the agent) and an agent probing every server with two client profiles for
#   TP_DEMO_SECONDS (default 30), then print the collector's report.
# Everything runs on 127.0.0.1 and lives under .run/demo/; everything started is stopped
# on exit, including on failure or Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../../tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"

BUILD=${TP_DEMO_BUILD_DIR:-$ROOT/build}
RUN=$ROOT/.run/demo
DEMO_SECONDS=${TP_DEMO_SECONDS:-30}
[[ $DEMO_SECONDS =~ ^[1-9][0-9]*$ ]] || tp_die "TP_DEMO_SECONDS must be a positive number of seconds"

tp_install_traps

tp_say "installing dependencies"
"$ROOT/deploy/scripts/install-deps.sh"

tp_say "building into $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
# Only what the demo runs: a broken unit test must not keep the demo from working.
cmake --build "$BUILD" -j"$(nproc)" --target tlsprobe-agent tlsprobe-collector >/dev/null || {
  tp_say "build failed; rerun 'cmake --build $BUILD' to see why"
  exit 1
}
AGENT=$BUILD/agent/tlsprobe-agent
COLLECTOR=$BUILD/collector/tlsprobe-collector
[ -x "$AGENT" ] || tp_die "$AGENT was not built"
[ -x "$COLLECTOR" ] || tp_die "$COLLECTOR was not built"

# A previous demo killed hard may have left its servers running: stop them first.
if [ -f "$RUN/targets/pids" ]; then "$TP_TARGETS_SCRIPT" stop "$RUN/targets" || true; fi
rm -rf "$RUN"
mkdir -p "$RUN"

tp_say "starting the local TLS servers"
tp_start_targets "$RUN/targets"
tp_say "  good:$GOOD_PORT expired:$EXPIRED_PORT wrongname:$WRONGNAME_PORT" \
  "unknownca:$UNKNOWNCA_PORT tls12:$TLS12_PORT refused:$REFUSED_PORT"

tp_say "starting the collector (HTTPS, a token minted for demo-agent)"
tp_start_collector_https "$COLLECTOR" "$RUN" demo-agent
tp_say "  $TP_COLLECTOR_URL, database $TP_DB"

tp_write_agent_config "$RUN/agent.yaml" "$RUN/targets" "$TP_COLLECTOR_URL" 2s demo-agent
tp_agent_use_https "$RUN/agent.yaml" "$RUN" demo-agent
"$AGENT" --config "$RUN/agent.yaml" --check || tp_die "the generated $RUN/agent.yaml does not validate"

tp_say "probing 6 targets x 2 profiles every 2s for ${DEMO_SECONDS}s (log: $RUN/agent.log)"
agent_rc=0
"$AGENT" --config "$RUN/agent.yaml" --run-for "${DEMO_SECONDS}s" </dev/null >"$RUN/agent.log" 2>&1 &
agent_pid=$!
tp_on_exit "tp_stop $agent_pid agent >/dev/null 2>&1"
wait "$agent_pid" || agent_rc=$?
if [ $agent_rc -ne 0 ]; then
  tp_say "the agent exited with status $agent_rc; the end of its log:"
  tail -n 20 "$RUN/agent.log" >&2
  exit 1
fi
grep -F 'msg="agent stopped"' "$RUN/agent.log" >&2 || tp_say "warning: the agent logged no 'agent stopped' line"

tp_say "stopping the collector"
tp_stop "$TP_COLLECTOR_PID" collector || tp_say "warning: the collector exited with status $?"

echo
"$COLLECTOR" report --db "$TP_DB" --since 1h
echo
tp_say "done; files in $RUN (database, logs, generated configs and certificates)"
