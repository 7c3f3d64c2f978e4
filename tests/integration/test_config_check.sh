#!/usr/bin/env bash
# test_config_check.sh - both binaries' configuration checks, as an operator runs them
# (issue #6, defects 9 and 10):
#   * `tlsprobe-agent --check` and `tlsprobe-collector serve --check` refuse every broken
#     file in tests/data/config with exit 2 (not a crash: status < 128) and a message
#     "file:line:col: what is wrong (what is allowed)"; so do the real starts, which used
#     to segfault on an empty file;
#   * the shipped configurations (deploy/config) still pass;
#   * the agent refuses to start when RLIMIT_NOFILE cannot hold what its limits need,
#     says how many it needs and which knob to lower, raises a soft limit that is merely
#     low, and --check reports the budget without failing.
# Needs TP_AGENT and TP_COLLECTOR (set by ctest, see tests/CMakeLists.txt). No servers.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${TP_AGENT:?set TP_AGENT to the tlsprobe-agent binary}"
: "${TP_COLLECTOR:?set TP_COLLECTOR to the tlsprobe-collector binary}"
[ -x "$TP_AGENT" ] || tp_die "TP_AGENT=$TP_AGENT is not an executable"
[ -x "$TP_COLLECTOR" ] || tp_die "TP_COLLECTOR=$TP_COLLECTOR is not an executable"

DATA=$TP_ROOT/tests/data/config
tp_install_traps
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsprobe-config-check.XXXXXX")
tp_on_exit "rm -rf '$WORK'"

# run OUT CMD...: runs CMD with stdout+stderr in OUT; sets RC (never aborts the script).
run() {
  local out=$1
  shift
  RC=0
  "$@" >"$out" 2>&1 </dev/null || RC=$?
}

# expect_refused DESC FILE REGEX CMD...: CMD exits 2 (a configuration error, not a crash)
# and prints a line "FILE:" + REGEX, REGEX starting with the line and column.
expect_refused() {
  local desc=$1 file=$2 regex=$3 out
  shift 3
  N=$((N + 1))
  out=$WORK/out.$N
  run "$out" "$@"
  tp_expect_eq "$desc: exit status 2 (status $RC; >= 128 is a crash)" 2 "$RC"
  tp_expect_match "$desc: message" "^$file:$regex" "$(grep -F -- "$file:" "$out" | head -n 1)"
}
N=0

# with_nofile ULIMIT_OPTION VALUE CMD...: CMD under `ulimit OPTION VALUE` (-n: soft and hard,
# -Sn: soft only), in a subshell so this shell keeps its own limits.
with_nofile() {
  (
    ulimit "$1" "$2" || exit 125
    shift 2
    exec "$@"
  )
}
POS='[0-9]+:[0-9]+: ' # any line:col

# --- 1. agent: every broken file, with --check and with a real start ---------------------

agent_case() { # FILE REGEX
  expect_refused "agent --check $1" "$DATA/$1" "$2" "$TP_AGENT" --config "$DATA/$1" --check
}
agent_case empty.yaml '1:1: no configuration: the file is empty or holds only comments'
agent_case comment_only.yaml '1:1: no configuration: the file is empty or holds only comments'
agent_case bad_tab_indent.yaml '33:1: tab character in indentation \(YAML indents with spaces only'
agent_case bad_agent_id.yaml '3:7: agent.id "edge eu 1": must be printable ASCII without spaces \(allowed: '
agent_case bad_url_no_path.yaml '7:8: collector.url "http://127.0.0.1:8470" has no path'
agent_case bad_url_port.yaml '7:8: collector.url .* has port 99999, out of range \(allowed: .*port 1..65535\)'
agent_case bad_batch_zero.yaml '8:15: collector.batch_size: 0 is out of range \(allowed: 1..10000'
agent_case bad_sni_space.yaml '33:10: target "api": sni "api example.test": contains a space'
agent_case bad_interval_huge.yaml '38:15: job "all": interval: 1000000000d is too long \(allowed: 1s..1d\)'
agent_case bad_host.yaml '28:11: target "web": host "www.exa mple.test": contains a space'
agent_case bad_max_in_flight.yaml '14:18: limits.max_in_flight: 300000000 is out of range \(allowed: 1..4096'
agent_case bad_second_document.yaml '42:1: a second YAML document starts here'

# The run used to segfault where --check did: it must fail the same way.
for f in empty.yaml comment_only.yaml bad_agent_id.yaml; do
  expect_refused "agent start $f" "$DATA/$f" "$POS" "$TP_AGENT" --config "$DATA/$f" --run-for 1s
done

# --- 2. collector: the same for serve --check and serve ----------------------------------

collector_case() { # FILE REGEX
  expect_refused "collector --check $1" "$DATA/$1" "$2" \
    "$TP_COLLECTOR" serve --config "$DATA/$1" --check
}
collector_case empty.yaml '1:1: no configuration: .*expected a mapping with the keys listen, database'
collector_case comment_only.yaml '1:1: no configuration: the file is empty or holds only comments'
collector_case collector_tab_indent.yaml '4:1: tab character in indentation'
collector_case collector_bad_listen_port.yaml '2:9: listen: port "99999" is not a number in 0..65535'
collector_case collector_bad_max_body.yaml '4:17: max_body_bytes: 100 is out of range \(allowed: 1024..67108864 bytes\)'
collector_case collector_bad_database.yaml '3:11: database: directory "/nonexistent-tlsprobe-dir" does not exist'
for f in empty.yaml comment_only.yaml; do
  expect_refused "collector serve $f" "$DATA/$f" "$POS" timeout 10 "$TP_COLLECTOR" serve --config "$DATA/$f"
done

# --- 3. the shipped configurations still pass ---------------------------------------------

run "$WORK/agent-ok" "$TP_AGENT" --config "$TP_ROOT/deploy/config/agent.yaml" --check
tp_expect_eq "agent --check deploy/config/agent.yaml exits 0" 0 "$RC"
tp_expect_match "agent --check says OK" "configuration OK" "$(cat "$WORK/agent-ok")"
tp_expect_match "agent --check reports the fd budget" \
  "file descriptors: need [0-9]+ \([0-9]+ loops x 64 probes in flight x 2" "$(cat "$WORK/agent-ok")"

# The demo template, placeholders filled as the demo would (any port will do for --check).
ca=$TP_ROOT/tests/data/profiles/client.pem
sed -e 's|@AGENT_ID@|check-agent|' -e 's|@COLLECTOR_URL@|http://127.0.0.1:9/v1/results|' \
  -e 's|@INTERVAL@|2s|' -e "s|@CA_FILE@|$ca|" -e 's|@[A-Z0-9]*_PORT@|8443|' \
  "$TP_AGENT_TEMPLATE" >"$WORK/agent-demo.yaml"
run "$WORK/demo-ok" "$TP_AGENT" --config "$WORK/agent-demo.yaml" --check
tp_expect_eq "agent --check on the demo template exits 0" 0 "$RC"
[ "$RC" -eq 0 ] || sed 's/^/  | /' "$WORK/demo-ok" >&2

for f in "$TP_ROOT/deploy/config/collector.yaml" "$DATA/collector_good.yaml"; do
  run "$WORK/collector-ok" "$TP_COLLECTOR" serve --config "$f" --check
  tp_expect_eq "collector --check $(basename "$f") exits 0" 0 "$RC"
  tp_expect_match "collector --check $(basename "$f") says OK" "configuration OK" \
    "$(cat "$WORK/collector-ok")"
done

# --- 4. file-descriptor budget (defect 9) -------------------------------------------------
# 2 loops x 64 in flight need 2 x (64 x 2 + 8) + 48 = 320 descriptors. interval 1d: the
# first probe falls at a random phase within a day, so a 1 s run probes nothing and needs
# no collector.

cat >"$WORK/fd.yaml" <<'YAML'
agent: {id: fd-agent}
collector: {url: "http://127.0.0.1:9/v1/results", insecure_plaintext: true}
limits: {loops: 2, max_in_flight: 64}
targets: [{name: t, host: 127.0.0.1, port: 9}]
jobs: [{targets: [t], profiles: [modern], interval: 1d}]
YAML

# Hard limit 32: nothing can be raised; the agent must refuse, before opening anything.
run "$WORK/fd-short" with_nofile -n 32 "$TP_AGENT" --config "$WORK/fd.yaml" --run-for 1s
msg=$(cat "$WORK/fd-short")
tp_expect_eq "fd budget short: exit status 1 (not a crash)" 1 "$RC"
tp_expect_match "fd budget short: says what is needed and the limit" \
  "not enough file descriptors: 2 loops x 64 probes in flight need 320, but the limit is 32" "$msg"
tp_expect_match "fd budget short: names the knobs" "lower limits.max_in_flight or limits.loops" "$msg"

# --check under the same limit: information, not a failure.
run "$WORK/fd-check" with_nofile -n 32 "$TP_AGENT" --config "$WORK/fd.yaml" --check
tp_expect_eq "fd budget short: --check still exits 0" 0 "$RC"
tp_expect_match "fd budget short: --check reports it" \
  "need 320 .*limit 32 \(hard 32\): NOT enough: the agent would refuse to start" "$(cat "$WORK/fd-check")"

# Soft limit 64 under a higher hard limit: raised to the need, and the agent runs.
hard=$(ulimit -H -n)
if [ "$hard" = unlimited ] || [ "$hard" -ge 320 ]; then
  run "$WORK/fd-raise" with_nofile -Sn 64 "$TP_AGENT" --config "$WORK/fd.yaml" --run-for 1s
  tp_expect_eq "fd budget raise: exit status 0" 0 "$RC"
  tp_expect_match "fd budget raise: logged" \
    'msg="raised the file-descriptor limit" need=320 soft=64 new_soft=320' "$(cat "$WORK/fd-raise")"
  [ "$RC" -eq 0 ] || sed 's/^/  | /' "$WORK/fd-raise" >&2
else
  tp_say "hard RLIMIT_NOFILE $hard < 320: raise case skipped"
fi

# --- 4. --help and --version of both binaries, every subcommand -------------------------------
for cmd in "$TP_AGENT --help" "$TP_COLLECTOR --help" "$TP_COLLECTOR serve --help" \
  "$TP_COLLECTOR report --help" "$TP_COLLECTOR agents --help"; do
  rc=0
  out=$($cmd 2>/dev/null) || rc=$?
  tp_expect_eq "${cmd##*/}: exit 0" 0 "$rc"
  tp_expect_match "${cmd##*/}: usage on stdout" '^usage' "$out"
done
for bin in "$TP_AGENT" "$TP_COLLECTOR"; do
  rc=0
  out=$("$bin" --version) || rc=$?
  tp_expect_eq "${bin##*/} --version: exit 0" 0 "$rc"
  tp_expect_match "${bin##*/} --version: name, version and library versions" \
    "^${bin##*/} [0-9]+\.[0-9]+\.[0-9]+ \(GnuTLS [0-9.]+, " "$out"
done

tp_finish
