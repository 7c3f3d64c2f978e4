#!/usr/bin/env bash
# test_agent_https.sh - the agent's side of authenticated ingest (issue #7), against a real
# HTTPS collector with bearer tokens:
#   - a right token over verified HTTPS: every result stored, exactly once;
#   - a wrong token: 401 is a configuration problem -- nothing dropped, everything stays in
#     the spool, logged at error once (not per retry); a SIGHUP after the token file is
#     fixed delivers it at once (not after the 5-minute retry);
#   - a collector certificate the agent's CA does not vouch for: nothing sent, nothing lost;
#   - an http:// URL without insecure_plaintext: refused by --check, with the reason.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${TP_AGENT:?set TP_AGENT to the tlsprobe-agent binary}"
: "${TP_COLLECTOR:?set TP_COLLECTOR to the tlsprobe-collector binary}"
command -v sqlite3 >/dev/null || tp_die "sqlite3 CLI missing: run deploy/scripts/install-deps.sh"

tp_install_traps
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsprobe-https.XXXXXX")
tp_on_exit "rm -rf '$WORK'"

tp_start_targets "$WORK/targets"
tp_start_collector_https "$TP_COLLECTOR" "$WORK" secure-agent
tp_expect_match "collector URL is https" '^https://127\.0\.0\.1:[0-9]+/v1/results$' "$TP_COLLECTOR_URL"
stored() { tp_sql "$TP_DB" "SELECT count(*) FROM results WHERE agent_id = 'secure-agent'"; }
field() { tp_log_field "$1" "agent stopped" "$2"; }

# --- 1. right token ---------------------------------------------------------------------------
tp_write_agent_config "$WORK/good.yaml" "$WORK/targets" "$TP_COLLECTOR_URL" 1s secure-agent
tp_agent_use_https "$WORK/good.yaml" "$WORK" secure-agent
rc=0
"$TP_AGENT" --config "$WORK/good.yaml" --run-for 4s </dev/null >"$WORK/good.log" 2>&1 || rc=$?
tp_expect_eq "agent over HTTPS exits 0" 0 "$rc"
tp_expect_match "it says it authenticates with a token" 'msg="pusher started" url=https://.* auth=token' \
  "$(cat "$WORK/good.log")"
produced=$(field "$WORK/good.log" produced)
tp_expect_ge "it produced results" 5 "$produced"
tp_expect_eq "every one stored" "$produced" "$(stored)"
tp_expect_eq "no token in the agent's log" 0 "$(grep -c -F "$(cat "$WORK/secure-agent.token")" "$WORK/good.log" || true)"
tp_expect_eq "a 0600 token file draws no warning" 0 "$(grep -c 'secret file is readable' "$WORK/good.log" || true)"

# --- 2. wrong token, then fixed with SIGHUP ------------------------------------------------------
before=$(stored)
sed "s|token_file: .*|token_file: $WORK/wrong.token|" "$WORK/good.yaml" >"$WORK/wrong.yaml"
printf 'tp1_this_is_not_a_valid_token\n' >"$WORK/wrong.token"
chmod 644 "$WORK/wrong.token"
"$TP_AGENT" --config "$WORK/wrong.yaml" </dev/null >"$WORK/wrong.log" 2>&1 &
pid=$!
tp_on_exit "tp_stop $pid wrong-agent >/dev/null 2>&1"
refused() { grep -q 'collector refuses our pushes' "$WORK/wrong.log"; }
tp_wait_for 20 "the 401" refused || true
sleep 4 # more failed pushes would log more lines if it logged per retry
tp_expect_match "a token file others can read is warned about" \
  "level=warn .*secret file is readable by others.*file=$WORK/wrong.token why=\"mode 0644" "$(cat "$WORK/wrong.log")"
tp_expect_eq "a 401 is logged once, at error" 1 "$(grep -c 'level=error.*collector refuses our pushes' "$WORK/wrong.log" || true)"
tp_expect_match "... with the collector's reason" 'HTTP 401: unknown or revoked token' "$(cat "$WORK/wrong.log")"
tp_expect_eq "nothing stored with the wrong token" "$before" "$(stored)"
cp "$WORK/secure-agent.token" "$WORK/wrong.token"
kill -HUP "$pid"
delivered() { [ "$(stored)" -gt "$before" ]; }
tp_wait_for 10 "delivery after SIGHUP" delivered || true
rc=0
tp_stop "$pid" wrong-agent 30 || rc=$?
tp_expect_eq "the agent survived SIGHUP and exits 0" 0 "$rc"
tp_expect_match "the token was reloaded" 'msg="collector token reloaded"' "$(cat "$WORK/wrong.log")"
produced=$(field "$WORK/wrong.log" produced)
tp_expect_eq "everything it produced, during the 401s too, is stored" "$produced" $(($(stored) - before))
tp_expect_eq "... and nothing dropped" 0 "$(field "$WORK/wrong.log" dropped)"

# --- 3. a collector the agent's CA does not vouch for -------------------------------------------
before=$(stored)
sed "s|ca_file: .*|ca_file: $WORK/targets/ca.pem|" "$WORK/good.yaml" >"$WORK/ca.yaml"
rc=0
"$TP_AGENT" --config "$WORK/ca.yaml" --run-for 3s </dev/null >"$WORK/ca.log" 2>&1 || rc=$?
tp_expect_eq "agent with the wrong CA exits 0" 0 "$rc"
tp_expect_eq "nothing reached the collector" "$before" "$(stored)"
tp_expect_match "the certificate problem is logged" 'collector refuses our pushes.*(certificate|SSL|issuer)' "$(cat "$WORK/ca.log")"
tp_expect_eq "what it produced is kept in its spool" "$(field "$WORK/ca.log" produced)" "$(field "$WORK/ca.log" unsent)"

# --- 4. plaintext needs the explicit opt-in -------------------------------------------------------
sed "/^  ca_file:/d; /^  token_file:/d; s|url: https://|url: http://|" "$WORK/good.yaml" >"$WORK/plain.yaml"
rc=0
out=$("$TP_AGENT" --config "$WORK/plain.yaml" --check 2>&1) || rc=$?
tp_expect_eq "--check refuses http:// without insecure_plaintext" 2 "$rc"
tp_expect_match "... saying why and what to set" 'collector.url: "http://" sends results .* collector.insecure_plaintext: true' "$out"

tp_finish
