#!/usr/bin/env bash
# test_profiles_import.sh - the profile command line against real data:
#   import-testssl on the REAL testssl.sh client-simulation.txt (Debian package testssl.sh):
#   every imported profile, all in one job, passes `tlsprobe-agent --check` (which builds each
#   with gnutls_priority_init); --current-only keeps fewer; `profiles list` builds every
#   built-in; `profiles show NAME` is YAML that loads back.
# Needs TP_AGENT (set by ctest).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${TP_AGENT:?set TP_AGENT to the tlsprobe-agent binary}"

tp_install_traps
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsprobe-import.XXXXXX")
tp_on_exit "rm -rf '$WORK'"

SIM=$(dpkg -L testssl.sh 2>/dev/null | grep '/client-simulation\.txt$' | head -n1 || true)
[ -n "$SIM" ] && [ -r "$SIM" ] ||
  tp_die "testssl.sh's client-simulation.txt not found: run deploy/scripts/install-deps.sh"

# wrap PROFILES_YAML OUT: an agent.yaml with those profiles, one target and one job naming
# every profile in PROFILES_YAML.
wrap() {
  {
    printf 'agent: {id: import}\ncollector: {url: "http://127.0.0.1:9/v1/results"}\n'
    printf 'targets: [{name: t, host: 127.0.0.1, port: 443}]\n'
    cat "$1"
    printf 'jobs:\n  - targets: [t]\n    interval: 1m\n    profiles:\n'
    sed -n 's/^  - name: /      - /p' "$1"
  } >"$2"
}

rc=0
"$TP_AGENT" profiles import-testssl "$SIM" >"$WORK/all.yaml" 2>"$WORK/all.err" || rc=$?
tp_expect_eq "import-testssl $SIM exits 0" 0 "$rc"
written=$(sed -n 's/.*: \([0-9]*\) profiles written.*/\1/p' "$WORK/all.err")
tp_expect_ge "import-testssl writes a profile for most of the ~160 clients" 150 "$written"
tp_expect_eq "one YAML entry per written profile" "$written" "$(grep -c '^  - name: ' "$WORK/all.yaml")"
tp_expect_match "SSL-only clients are skipped with the reason" 'skipped "IE 6 XP".*SSL 2\.0/3\.0' \
  "$(cat "$WORK/all.err")"

wrap "$WORK/all.yaml" "$WORK/agent.yaml"
rc=0
"$TP_AGENT" --config "$WORK/agent.yaml" --check >"$WORK/check.out" 2>&1 || rc=$?
tp_expect_eq "--check accepts every imported profile" 0 "$rc"
tp_expect_match "--check counted them" "configuration OK \\($written profiles" "$(cat "$WORK/check.out")"
[ $rc -eq 0 ] || sed 's/^/  | /' "$WORK/check.out" | head -n 5 >&2

rc=0
"$TP_AGENT" profiles import-testssl "$SIM" --current-only >"$WORK/current.yaml" 2>/dev/null || rc=$?
current=$(grep -c '^  - name: ' "$WORK/current.yaml" || true)
tp_expect_eq "--current-only exits 0" 0 "$rc"
if [ "$current" -gt 0 ] && [ "$current" -lt "$written" ]; then
  tp_pass "--current-only keeps fewer clients ($current of $written)"
else
  tp_fail "--current-only: expected 0 < n < $written, got $current"
fi

rc=0
"$TP_AGENT" profiles list >"$WORK/list.out" 2>&1 || rc=$?
tp_expect_eq "profiles list exits 0 (every built-in builds)" 0 "$rc"
for name in modern intermediate old tls12-rsa-kx-only p384-only x25519-only ffdhe-only \
  android-4.4 java-8 ie11-win7; do
  tp_expect_match "profiles list shows $name with its priority string" '^  priority: NORMAL:' \
    "$(grep -x -A2 -- "$name" "$WORK/list.out" | tail -n1)"
  "$TP_AGENT" profiles show "$name" >"$WORK/show-$name.yaml"
  sed -i "s/^  - name: \"$name\"/  - name: \"copy-of-$name\"/" "$WORK/show-$name.yaml"
  wrap "$WORK/show-$name.yaml" "$WORK/show-$name-agent.yaml"
  rc=0
  "$TP_AGENT" --config "$WORK/show-$name-agent.yaml" --check >"$WORK/show-$name.out" 2>&1 || rc=$?
  tp_expect_eq "profiles show $name: YAML loads back (--check)" 0 "$rc"
done
rc=0
"$TP_AGENT" profiles show no-such-profile >/dev/null 2>"$WORK/show-bad.err" || rc=$?
tp_expect_eq "profiles show no-such-profile exits 2" 2 "$rc"
tp_expect_match "and lists the built-ins" 'built-in: modern, intermediate' "$(cat "$WORK/show-bad.err")"
tp_finish
