#!/usr/bin/env bash
# test_agent_valgrind.sh - the agent under valgrind memcheck for TP_VALGRIND_SECONDS (default
# 40): two probe loops against the demo's TLS servers, pushing over HTTPS with a token, then
# a graceful stop. Any invalid read or write, use of uninitialised memory, or definite /
# indirect leak fails it. It sees what ASan cannot: accesses made inside the uninstrumented
# libraries (libcurl, GnuTLS, libuv, SQLite) to memory we freed. Registered only in builds
# without a sanitizer (tests/CMakeLists.txt): valgrind cannot run sanitized binaries.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${TP_AGENT:?set TP_AGENT to the tlsprobe-agent binary}"
: "${TP_COLLECTOR:?set TP_COLLECTOR to the tlsprobe-collector binary}"
command -v valgrind >/dev/null || tp_die "valgrind missing: run deploy/scripts/install-deps.sh"

RUN_S=${TP_VALGRIND_SECONDS:-40}

tp_install_traps
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsprobe-valgrind.XXXXXX")
tp_on_exit "rm -rf '$WORK'"
tp_on_exit "[ \$TP_EXIT_STATUS -eq 0 ] || cp '$WORK/agent.log' '${TP_BUILD_DIR:-/tmp}/valgrind-agent.log'"

tp_start_targets "$WORK/targets"
# The collector closes a connection idle for 10 s or whose request head is not in within
# 10 s (slowloris);
# an agent under memcheck on a busy machine can take longer than that to handshake.
tp_start_collector_https "$TP_COLLECTOR" "$WORK" vg-agent \
  "limits: {connection_timeout: 2m, header_timeout: 2m, request_timeout: 5m}"
tp_write_agent_config "$WORK/agent.yaml" "$WORK/targets" "$TP_COLLECTOR_URL" 1s vg-agent
tp_agent_use_https "$WORK/agent.yaml" "$WORK" vg-agent
# Everything runs 20-50x slower under memcheck: give the pushes and handshakes room.
sed -i 's/^  timeout: 5s$/  timeout: 60s/; s/^  handshake_timeout: 5s$/  handshake_timeout: 30s/' \
  "$WORK/agent.yaml"

# GNUTLS_SYSTEM_PRIORITY_FILE=/dev/null is what the agent re-executes itself with to be
# independent of the host's GnuTLS policy; set here, it skips that re-exec, which under
# valgrind would exec valgrind's own tool binary (/proc/self/exe).
rc=0
GNUTLS_SYSTEM_PRIORITY_FILE=/dev/null timeout $((RUN_S * 4 + 120)) \
  valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --track-origins=yes \
  "$TP_AGENT" --config "$WORK/agent.yaml" --run-for "${RUN_S}s" </dev/null >"$WORK/agent.log" 2>&1 ||
  rc=$?
tp_expect_eq "agent under valgrind exits 0 (99 = memcheck found errors)" 0 "$rc"
summary=$(grep -m1 'ERROR SUMMARY' "$WORK/agent.log" || true)
tp_say "valgrind: $summary"
tp_expect_match "memcheck: no error" 'ERROR SUMMARY: 0 errors' "$summary"
tp_expect_match "memcheck: every heap block freed or no definite/indirect loss" \
  'All heap blocks were freed|definitely lost: 0 bytes in 0 blocks' "$(cat "$WORK/agent.log")"
produced=$(tp_log_field "$WORK/agent.log" "agent stopped" produced)
pushed=$(tp_log_field "$WORK/agent.log" "agent stopped" pushed)
tp_say "valgrind run: produced=$produced pushed=$pushed in ${RUN_S}s"
tp_expect_ge "it probed" 10 "${produced:-0}"
tp_expect_ge "and delivered over HTTPS" 1 "${pushed:-0}"
tp_expect_eq "delivered exactly what it produced" "$produced" \
  "$(tp_sql "$TP_DB" "SELECT count(*) FROM results WHERE agent_id = 'vg-agent'")"

tp_finish
