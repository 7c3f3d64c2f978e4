#!/usr/bin/env bash
# test_profiles_import.sh - the profile command line against real data:
#   import-testssl on the REAL testssl.sh client-simulation.txt (Debian package testssl.sh):
#   every imported profile, all in one job, passes `tlsprobe-agent --check` (which builds each
#   with gnutls_priority_init); versions come from each client's recorded ClientHello (draft
#   TLS 1.3 is no TLS 1.3, supported_versions {1.3, 1.2} is exactly that) and DH limits from
#   minDhBits/maxDhBits; a hostile client-simulation file cannot inject YAML; --current-only
#   keeps fewer; `profiles list` builds every built-in; `profiles show NAME` is YAML that
#   loads back.
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
    printf 'agent: {id: import}\ncollector: {url: "http://127.0.0.1:9/v1/results", insecure_plaintext: true}\n'
    printf 'targets: [{name: t, host: 127.0.0.1, port: 443}]\n'
    cat "$1"
    printf 'jobs:\n  - targets: [t]\n    interval: 1m\n    profiles:\n'
    sed -n 's/^- name: /      - /p' "$1"
  } >"$2"
}

rc=0
"$TP_AGENT" profiles import-testssl "$SIM" >"$WORK/all.yaml" 2>"$WORK/all.err" || rc=$?
tp_expect_eq "import-testssl $SIM exits 0" 0 "$rc"
written=$(sed -n 's/.*: \([0-9]*\) profiles written.*/\1/p' "$WORK/all.err")
tp_expect_ge "import-testssl writes a profile for most of the ~160 clients" 150 "$written"
tp_expect_eq "one YAML entry per written profile" "$written" "$(grep -c '^- name: ' "$WORK/all.yaml")"
tp_expect_match "SSL-only clients are skipped with the reason" 'skipped "IE 6 XP".*SSL 2\.0/3\.0' \
  "$(cat "$WORK/all.err")"

# has PROFILE LINE-REGEX WHAT: the entry of PROFILE in all.yaml has a line matching LINE-REGEX.
has() {
  if awk -v n="- name: \"$1\"" '$0 == n {f = 1; print; next} /^- name: /{f = 0} f' "$WORK/all.yaml" |
    grep -Eq -- "$2"; then
    tp_pass "$3"
  else
    tp_fail "$3: no line /$2/ in profile $1"
  fi
}
has chrome_57_win7 '^  versions: \[TLS1\.0, TLS1\.1, TLS1\.2\]$' \
  "Chrome 57 (TLS 1.3 only as draft 18) gets no TLS 1.3"
has chrome_57_win7 'TLS1\.3-draft18: TLS 1\.3 only as drafts' "... and the note says why"
has openssl_111d '^  versions: \[TLS1\.2, TLS1\.3\]$' \
  "OpenSSL 1.1.1d (supported_versions {1.3, 1.2}) gets exactly those"
has java_8u161 '^  max_dh_bits: 2048$' "Java 8u161 refuses DH primes above 2048 bits"
has java_8u161 '^    cipher_suites: \[0xc024, 0xc028,' "the real client's offer is recorded"

# The built-ins taken from this file carry the same recorded offer as their import.
offer_of() { sed -n '/^  recorded_offer:$/,/^  [a-z]/p' | sed '$d'; }
for pair in android-4.4=android_442 java-8=java_8u161 ie11-win7=ie_11_win7; do
  builtin=${pair%%=*}
  imported=$(awk -v n="- name: \"${pair#*=}\"" '$0 == n {f = 1; next} /^- name: /{f = 0} f' \
    "$WORK/all.yaml" | offer_of)
  shown=$("$TP_AGENT" profiles show "$builtin" | offer_of)
  if [ -n "$shown" ] && [ "$shown" = "$imported" ]; then
    tp_pass "built-in $builtin: recorded_offer is the import's"
  else
    tp_fail "built-in $builtin: recorded_offer differs from the import's: '$shown' vs '$imported'"
  fi
done

wrap "$WORK/all.yaml" "$WORK/agent.yaml"
rc=0
"$TP_AGENT" --config "$WORK/agent.yaml" --check >"$WORK/check.out" 2>&1 || rc=$?
tp_expect_eq "--check accepts every imported profile" 0 "$rc"
tp_expect_match "--check counted them" "configuration OK \\($written profiles" "$(cat "$WORK/check.out")"
[ $rc -eq 0 ] || sed 's/^/  | /' "$WORK/check.out" | head -n 5 >&2

# A hostile file: a skipped client's name with CR line breaks (which ended the old importer's
# comment and added a profile with a trust store), a written client's name with LS/NEL line
# breaks, quotes and '#', a short name with CR. Recorded hellos: IE 6 XP's (SSL only, so
# skipped) and OpenSSL 1.1.1d's, taken from the real file.
hello_of() { awk -v n="names+=(\"$1\")" 'index($0, n) {f = 1} f && /handshakebytes/ {print; exit}' "$SIM"; }
{
  printf 'names+=("Evil\r  - name: injected\r    trust: /etc/evil\r  # ")\nshort+=("evil")\n'
  hello_of "IE 6 XP"
  printf 'lowest_protocol+=("0x0200")\n\n'
  printf 'names+=("Evil '"'"'q'"'"' # c\342\200\250  - name: injected2\342\200\250    trust: /etc/evil\302\205#")\n'
  printf 'short+=("written")\n'
  hello_of "OpenSSL 1.1.1d (Debian)"
  printf 'lowest_protocol+=("0x0301")\n\nnames+=("Plain")\nshort+=("x\r  trust: /etc/evil")\n'
  hello_of "OpenSSL 1.1.1d (Debian)"
  printf 'lowest_protocol+=("0x0301")\n'
} >"$WORK/hostile.txt"
rc=0
"$TP_AGENT" profiles import-testssl "$WORK/hostile.txt" >"$WORK/hostile.yaml" 2>"$WORK/hostile.err" || rc=$?
tp_expect_eq "import-testssl of a hostile file exits 0" 0 "$rc"
wrap "$WORK/hostile.yaml" "$WORK/hostile-agent.yaml"
rc=0
"$TP_AGENT" --config "$WORK/hostile-agent.yaml" --check >"$WORK/hostile-check.out" 2>&1 || rc=$?
tp_expect_eq "--check accepts the hostile import" 0 "$rc"
# --check builds every profile, so an injected `trust: /etc/evil` (no such file) would fail it.
tp_expect_match "... with exactly its two written profiles and no injected trust store" \
  'configuration OK \(2 profiles' "$(cat "$WORK/hostile-check.out")"
tp_expect_eq "two top-level entries" 2 "$(grep -c '^- name: ' "$WORK/hostile.yaml")"
if grep -q $'\r' "$WORK/hostile.err"; then
  tp_fail "a raw CR from the file reached stderr"
else
  tp_pass "the skipped client's name reaches stderr escaped"
fi

rc=0
"$TP_AGENT" profiles import-testssl "$SIM" --current-only >"$WORK/current.yaml" 2>/dev/null || rc=$?
current=$(grep -c '^- name: ' "$WORK/current.yaml" || true)
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
  sed -i "s/^- name: \"$name\"/- name: \"copy-of-$name\"/" "$WORK/show-$name.yaml"
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
