#!/usr/bin/env bash
# Installs the Debian 12 packages tlsprobe needs to build, run the demo and run its tests.
# Idempotent: only missing packages are installed; apt-get update runs only when something is missing.
#   install-deps.sh           what builds, the demo and the tests need
#   install-deps.sh --bench   that, plus what bench/suite.sh compares against and measures with
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libgnutls28-dev gnutls-bin           # handshakes; certtool + gnutls-serv for test servers
  libuv1-dev                           # agent event loop
  libc-ares-dev                        # asynchronous DNS on the probe loops
  libcurl4-gnutls-dev                  # agent -> collector push
  libprotobuf-c-dev protobuf-c-compiler
  libcyaml-dev libyaml-dev             # YAML config (+ libyaml for error positions)
  libmicrohttpd-dev                    # collector HTTP
  libsqlite3-dev sqlite3               # embedded store (+ CLI used by tests)
  libcmocka-dev                        # unit tests
  openssl                              # openssl s_server test targets
  testssl.sh                           # client-simulation.txt: profiles import-testssl test data
  nginx                                # server matrix: session tickets, 0-RTT, OCSP stapling file
  curl                                 # raw HTTP in the collector bad-input tests
  python3                              # collector tests: keep-alive TLS client, slowloris, flood
  python3-jsonschema                   # report JSON checked against docs/report.schema.json
  valgrind                             # the agent under memcheck (test_agent_valgrind)
  chromium                             # renders report --format html headless (test_report_html, screenshots)
  pngquant                             # report-screenshots.sh: docs/report-html.png in a palette (1/3 the bytes)
  prometheus                           # promtool: /metrics format and deploy/prometheus rules
  procps psmisc                        # pkill/ps used by scripts
  ca-certificates
)
# Optional: only bench/suite.sh needs these (no build or test does).
BENCH_PACKAGES=(
  prometheus-blackbox-exporter         # the suite's comparison prober (tcp module with TLS)
  strace                               # syscalls per probe (strace -c)
)
case "${1:-}" in
  "") ;;
  --bench) PACKAGES+=("${BENCH_PACKAGES[@]}") ;;
  *) echo "usage: install-deps.sh [--bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
# Tests start their own nginx (own prefix, 127.0.0.1 only) and use only prometheus's promtool;
# neither package may start the distribution's service (nginx: port 80, every address;
# prometheus: :9090 and a node exporter; the blackbox exporter: :9115) on the user's machine.
# Debian's invoke-rc.d honours /usr/sbin/policy-rc.d: exit 101 = "do not start services".
# Only ours is removed afterwards; an existing one is left alone.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# tlsprobe install-deps: no service starts during this install\nexit 101\n' |
    $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  trap '$SUDO rm -f "$POLICY"' EXIT
fi
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
