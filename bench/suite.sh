#!/usr/bin/env bash
# bench/suite.sh - the benchmark suite of issue #9: tlsprobe side by side with the limit (a
# minimal GnuTLS loop, bench-limit) and with prometheus-blackbox-exporter, in one run, in
# interleaved rounds, as ratios, with the machine's load logged next to every figure; then
# the collector's ingest, `report` over a large database and instruction counts.
#
#   bench/suite.sh [--quick] [--10m] [--rounds N] [--rates "200 500 1000"] [--out DIR] [--keep]
#                  [--only rounds,contention,strace,callgrind,collector]
#   bench/suite.sh --selftest     the tools' correctness against a real nginx (no timing)
#
# What it starts, all on 127.0.0.1 and all stopped on exit: its own nginx (ECDSA P-256 and
# RSA-2048 leaf + intermediate, TLS 1.2 and 1.3, session tickets on, X25519 first), a real
# tlsprobe-collector over HTTPS with a token, tlsprobe-agent per round, the blackbox
# exporter, and the tools. Ports are the first that bind from 21000 up (suite_lib.py
# free-port), never random.
#
# Binaries: TP_BENCH_BUILD=DIR uses a build tree as it is (the suite measures Release:
# other build types are said so in the results); otherwise it configures and builds
# build-bench/ (Release) itself. Results: bench/results/suite-YYYY-MM-DD[-N].md and .json
# (--out DIR elsewhere). Modes: full (default, ~15 min), --quick (every round a few
# seconds: a smoke test, < 3 min). --10m adds ingest and report at 10 M stored rows (7.5 GB
# of disk, +5 min). Every loop has a count and a time limit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LIB=$ROOT/bench/suite_lib.py
# shellcheck source-path=SCRIPTDIR source=../tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

MODE=full TEN_M=0 KEEP=0 ROUNDS='' RATES='' OUT_DIR=$ROOT/bench/results
ONLY=rounds,contention,strace,callgrind,collector
while [ $# -gt 0 ]; do
  case $1 in
    --quick) MODE=quick ;;
    --full) MODE=full ;;
    --selftest) MODE=selftest ;;
    --10m) TEN_M=1 ;;
    --keep) KEEP=1 ;;
    --rounds) ROUNDS=${2:?--rounds N}; shift ;;
    --rates) RATES=${2:?--rates \"200 500\"}; shift ;;
    --out) OUT_DIR=${2:?--out DIR}; shift ;;
    --only) ONLY=${2:?--only rounds,contention,strace,callgrind,collector}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "suite.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

# Per mode: rounds, seconds of warm-up and measurement per agent/blackbox round, seconds per
# flat-out limit round, the agent's interval (series = rate x interval), strace seconds,
# report repetitions, rows of the large database, bench-ingest batches per run, callgrind
# probe counts (two runs: the difference cancels start-up) and agent callgrind seconds.
case $MODE in
  full) R=3 WARM=5 MEAS=15 LIMIT_S=8 INTERVAL=10 STRACE_S=5 REPORT_RUNS=3 ROWS=1000000
    INGEST_BATCHES=200 CG_N1=10 CG_N2=40 CG_AGENT_S=20 ;;
  quick) R=1 WARM=2 MEAS=4 LIMIT_S=2 INTERVAL=2 STRACE_S=2 REPORT_RUNS=1 ROWS=100000
    INGEST_BATCHES=10 CG_N1=5 CG_N2=15 CG_AGENT_S=8 ;;
  selftest) R=1 WARM=1 MEAS=2 LIMIT_S=1 INTERVAL=1 STRACE_S=1 REPORT_RUNS=1 ROWS=0
    INGEST_BATCHES=1 CG_N1=1 CG_N2=2 CG_AGENT_S=1 ;;
esac
R=${ROUNDS:-$R}
RATES=${RATES:-200 500 1000}
PACED_RATE=20          # the limit loop's paced probes per second during every round
AGENT_LOOPS=2          # the agent's probe loops ...
AGENT_IN_FLIGHT=64     # ... and probes in flight per loop (its default); the concurrent limit the same
NGINX_WORKERS=${BENCH_NGINX_WORKERS:-1}
GROUPS_YAML="X25519, SECP256R1, SECP384R1, SECP521R1" # Go's (blackbox_exporter's) preference
PRIORITY="NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1"
PRIORITY_TLS12="NORMAL:-VERS-ALL:+VERS-TLS1.2:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1"
SNI=bench.test
T_START=$(date +%s)

say() { echo "$(date -u +%H:%M:%S) suite: $*" >&2; }
die() { say "error: $*"; exit 2; }

# --- dependencies and binaries --------------------------------------------------------------

# What the measurements need beyond the build (blackbox_exporter, strace): installed the way
# every package of this project is, unless BENCH_NO_INSTALL=1; the self-test installs nothing.
if [ "$MODE" != selftest ] && [ "${BENCH_NO_INSTALL:-0}" != 1 ]; then
  "$ROOT/deploy/scripts/install-deps.sh" --bench >&2 || die "deploy/scripts/install-deps.sh --bench failed"
fi

for tool in nginx openssl sqlite3 python3 curl; do
  command -v "$tool" >/dev/null || die "$tool missing: run deploy/scripts/install-deps.sh"
done
HAVE_STRACE=1 HAVE_VALGRIND=1 HAVE_BLACKBOX=1
command -v strace >/dev/null || HAVE_STRACE=0
command -v valgrind >/dev/null || HAVE_VALGRIND=0
BLACKBOX=$(command -v prometheus-blackbox-exporter || true)
[ -n "$BLACKBOX" ] || HAVE_BLACKBOX=0

TARGETS=(tlsprobe-agent tlsprobe-collector bench-limit bench-blackbox-drive bench-handshake)
if [ -n "${TP_BENCH_BUILD:-}" ]; then
  BUILD=$(cd "$TP_BENCH_BUILD" && pwd)
else
  BUILD=$ROOT/build-bench
  command -v cmake >/dev/null || die "cmake missing: run deploy/scripts/install-deps.sh"
  say "building Release in $BUILD"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"${TMPDIR:-/tmp}/tp-suite-cmake.log" 2>&1 ||
    die "cmake configure failed: ${TMPDIR:-/tmp}/tp-suite-cmake.log"
  extra=()
  cmake --build "$BUILD" --target help 2>/dev/null | grep -q 'bench-ingest' && extra=(bench-ingest)
  cmake --build "$BUILD" -j"$(nproc)" --target "${TARGETS[@]}" "${extra[@]}" \
    >>"${TMPDIR:-/tmp}/tp-suite-cmake.log" 2>&1 || die "build failed: ${TMPDIR:-/tmp}/tp-suite-cmake.log"
fi
AGENT=$BUILD/agent/tlsprobe-agent
COLLECTOR=$BUILD/collector/tlsprobe-collector
LIMIT=$BUILD/bench/bench-limit
DRIVE=$BUILD/bench/bench-blackbox-drive
HANDSHAKE=$BUILD/bench/bench-handshake
INGEST=${TP_BENCH_INGEST:-$BUILD/bench/bench-ingest}
for b in "$AGENT" "$COLLECTOR" "$LIMIT" "$DRIVE"; do
  [ -x "$b" ] || die "$b not built (cmake --build $BUILD --target ${TARGETS[*]})"
done
BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
if [ "$MODE" != selftest ] && [ "$BUILD_TYPE" != Release ]; then
  say "warning: $BUILD is a '${BUILD_TYPE:-?}' build; the suite measures Release builds (the results say so)"
fi

# --- work directory, cleanup, records -------------------------------------------------------

W=$(mktemp -d "${TMPDIR:-/tmp}/tp-suite.XXXXXX")
tp_install_traps
if [ "$KEEP" -eq 1 ]; then say "keeping $W"; else tp_on_exit "rm -rf '$W'"; fi
REC=$W/records.jsonl
: >"$REC"
USED_PORTS=()

# free_port VAR: the first port from 21000 up that binds on 127.0.0.1 and that this run has
# not handed out yet.
free_port() {
  local p
  p=$(python3 "$LIB" free-port 21000 "${USED_PORTS[@]}") || die "no free port"
  USED_PORTS+=("$p")
  printf -v "$1" %s "$p"
}

# snap OUT PID...: the machine (time, /proc/stat, loadavg) into OUT.sys, each process's
# /proc/PID/stat into OUT.PID.stat.
snap() {
  local out=$1 pid
  shift
  { date +%s.%N; head -1 /proc/stat; cat /proc/loadavg; } >"$out.sys"
  for pid in "$@"; do cat "/proc/$pid/stat" >"$out.$pid.stat" 2>/dev/null || true; done
}

# record CMD ARGS...: one suite_lib.py record appended to the run's records, and a line on
# stderr; a record that cannot even be computed becomes a failure record.
record() {
  local line
  if line=$(python3 "$LIB" "$@" 2>"$W/record.err"); then
    echo "$line" >>"$REC"
    python3 -c 'import json,sys
r=json.loads(sys.argv[1]); d=r.get("data",{})
keys=["cpu_ms_per_probe","probes","achieved_per_s","syscalls_per_probe","instructions_per_probe","results_per_s","seconds_median"]
txt=", ".join("%s=%s"%(k,d[k]) for k in keys if k in d)
tag=" ".join(str(r[k]) for k in ("section","name") if k in r)+("" if "rate" not in r else " %s/s"%r["rate"])+("" if "round" not in r else " round %s"%r["round"])
print(tag+": "+("failed: "+r["failed"] if "failed" in r else txt)+(" WARNING "+r["warning"] if "warning" in r else ""))' "$line" >&2
  else
    say "record $1 failed: $(tail -1 "$W/record.err")"
    python3 "$LIB" failed "${1%-record}" "?" "could not compute: $(tail -1 "$W/record.err")" >>"$REC"
  fi
}

failed() { # SECTION NAME REASON [--round N] [--rate R] [k=v...]
  say "$1 $2: failed: $3"
  python3 "$LIB" failed "$@" >>"$REC"
}

# --- PKI and nginx --------------------------------------------------------------------------

PKI=$W/pki
make_pki() {
  mkdir -p "$PKI"
  local kind key ku
  for kind in ecdsa rsa; do
    if [ $kind = ecdsa ]; then key=(-newkey ec -pkeyopt ec_paramgen_curve:P-256); ku=digitalSignature
    else key=(-newkey rsa:2048); ku=digitalSignature,keyEncipherment; fi
    (
      cd "$PKI" &&
        openssl req -x509 "${key[@]}" -nodes -days 30 -subj "/CN=bench $kind root" \
          -keyout $kind-root.key -out $kind-root.pem \
          -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&
        openssl req "${key[@]}" -nodes -subj "/CN=bench $kind intermediate" \
          -keyout $kind-int.key -out $kind-int.csr &&
        printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' >int.ext &&
        openssl x509 -req -in $kind-int.csr -CA $kind-root.pem -CAkey $kind-root.key \
          -CAcreateserial -days 30 -extfile int.ext -out $kind-int.pem &&
        openssl req "${key[@]}" -nodes -subj "/CN=$SNI" -keyout $kind-leaf.key -out $kind-leaf.csr &&
        printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,%s\n' "$SNI" "$ku" >$kind-leaf.ext &&
        openssl x509 -req -in $kind-leaf.csr -CA $kind-int.pem -CAkey $kind-int.key \
          -CAcreateserial -days 30 -extfile $kind-leaf.ext -out $kind-leaf.pem &&
        cat $kind-leaf.pem $kind-int.pem >$kind.chain.pem
    ) >"$PKI/openssl.log" 2>&1 || die "openssl failed: $(tail -3 "$PKI/openssl.log")"
  done
  cat "$PKI/ecdsa-root.pem" "$PKI/rsa-root.pem" >"$PKI/ca.pem"
  # A CA that signed nothing here: the self-test's negative case.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=bench stranger" -keyout "$PKI/stranger.key" -out "$PKI/stranger.pem" \
    >>"$PKI/openssl.log" 2>&1 || die "openssl failed"
}

start_nginx() {
  local ngx=$W/nginx i pid
  mkdir -p "$ngx/tmp"
  free_port PORT_ECDSA
  free_port PORT_RSA
  {
    # `user` matters only when started as root (workers would switch to nobody).
    if [ "$(id -u)" -eq 0 ]; then echo "user $(id -un) $(id -gn);"; fi
    cat <<EOF
worker_processes $NGINX_WORKERS;
pid $ngx/nginx.pid;
error_log $ngx/error.log crit;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $ngx/tmp/body;
  proxy_temp_path $ngx/tmp/proxy;
  fastcgi_temp_path $ngx/tmp/fastcgi;
  uwsgi_temp_path $ngx/tmp/uwsgi;
  scgi_temp_path $ngx/tmp/scgi;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_tickets on;
  ssl_ecdh_curve X25519:prime256v1:secp384r1;
  server {
    listen 127.0.0.1:$PORT_ECDSA ssl;
    server_name $SNI;
    ssl_certificate $PKI/ecdsa.chain.pem;
    ssl_certificate_key $PKI/ecdsa-leaf.key;
    location / { return 200 "ok\n"; }
  }
  server {
    listen 127.0.0.1:$PORT_RSA ssl;
    server_name $SNI;
    ssl_certificate $PKI/rsa.chain.pem;
    ssl_certificate_key $PKI/rsa-leaf.key;
    location / { return 200 "ok\n"; }
  }
}
EOF
  } >"$ngx/nginx.conf"
  nginx -p "$ngx" -c "$ngx/nginx.conf" -e "$ngx/error.log" -g 'daemon off;' </dev/null \
    >"$ngx/stdout.log" 2>&1 &
  pid=$!
  tp_on_exit "tp_stop $pid nginx >/dev/null 2>&1"
  # Up = a real handshake with our chain verified, on both ports.
  for i in $(seq 100); do
    tp_alive "$pid" || die "nginx exited: $(cat "$ngx/error.log" "$ngx/stdout.log" 2>/dev/null | tail -5)"
    if "$LIMIT" --port "$PORT_ECDSA" --sni $SNI --ca "$PKI/ca.pem" --count 1 --warmup 0 >/dev/null 2>&1 &&
      "$LIMIT" --port "$PORT_RSA" --sni $SNI --ca "$PKI/ca.pem" --count 1 --warmup 0 >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  die "nginx did not serve our chains on 127.0.0.1:$PORT_ECDSA/$PORT_RSA within 10 s: $(tail -5 "$ngx/error.log")"
}

# --- blackbox_exporter ----------------------------------------------------------------------

BB_WHY="prometheus-blackbox-exporter not installed (deploy/scripts/install-deps.sh --bench)"
start_blackbox() {
  [ "$HAVE_BLACKBOX" -eq 1 ] || return 1
  local d=$W/blackbox pid i
  mkdir -p "$d"
  free_port PORT_BB
  # Go's crypto/tls offers X25519, P-256, P-384, P-521 and sends one X25519 key share;
  # blackbox_exporter's tls_config has no curve setting, so the others follow Go.
  cat >"$d/blackbox.yml" <<EOF
modules:
  tls_tcp:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
      tls: true
      tls_config:
        ca_file: $PKI/ca.pem
        server_name: $SNI
        min_version: TLS12
EOF
  "$BLACKBOX" --config.file="$d/blackbox.yml" --web.listen-address="127.0.0.1:$PORT_BB" \
    --log.level=warn </dev/null >"$d/blackbox.log" 2>&1 &
  pid=$!
  tp_on_exit "tp_stop $pid blackbox_exporter >/dev/null 2>&1"
  BB_PID=$pid
  BB_URL="http://127.0.0.1:$PORT_BB/probe?target=127.0.0.1:$PORT_ECDSA&module=tls_tcp"
  for i in $(seq 100); do
    if ! tp_alive "$pid"; then
      BB_WHY="blackbox_exporter exited: $(tail -3 "$d/blackbox.log")"
      return 1
    fi
    curl -sf "$BB_URL" -o "$d/first.txt" 2>/dev/null && break
    sleep 0.1
  done
  if ! grep -q '^probe_success 1$' "$d/first.txt" 2>/dev/null; then
    BB_WHY="blackbox_exporter's first probe did not succeed: $(curl -s "$BB_URL&debug=true" | grep -m3 -i 'level=error\|err=' || true)"
    return 1
  fi
}

# --- collector for the agent rounds ---------------------------------------------------------

start_agent_collector() {
  mkdir -p "$W/collector"
  # log level info: lib.sh reads the port from its "listening" line
  tp_start_collector_https "$COLLECTOR" "$W/collector" bench-agent \
    "limits: {agent_requests_per_second: 1000, agent_burst: 2000}" >/dev/null 2>&1 ||
    die "the collector did not start: $(tail -3 "$W/collector/collector.log" 2>/dev/null)"
  AG_COLLECTOR_PID=$TP_COLLECTOR_PID
  AG_COLLECTOR_URL=$TP_COLLECTOR_URL
  AG_DB=$TP_DB
}

# write_agent_config OUT REGION SERIES METRICS_PORT TARGET_PORT INTERVAL_S [LOG_LEVEL]
write_agent_config() {
  local out=$1 region=$2 n=$3 mport=$4 tport=$5 interval=$6 level=${7:-warn}
  {
    cat <<EOF
# written by bench/suite.sh: $n series of one profile against one nginx port
agent:
  id: bench-agent
  region: $region
  log_level: $level
collector:
  url: $AG_COLLECTOR_URL
  ca_file: $W/collector/collector-ca.pem
  token_file: $W/collector/bench-agent.token
  batch_size: 500
  flush_interval: 1s
  timeout: 60s
spool:
  path: ${out%.yaml}.spool
metrics:
  listen: 127.0.0.1:$mport
limits:
  loops: $AGENT_LOOPS
  max_in_flight: $AGENT_IN_FLIGHT
defaults:
  connect_timeout: 3s
  handshake_timeout: 30s
profiles:
  - name: bench
    versions: [TLS1.2, TLS1.3]
    groups: [$GROUPS_YAML]
    trust: $PKI/ca.pem
targets:
EOF
    awk -v n="$n" -v port="$tport" -v sni=$SNI -v interval="$interval" 'BEGIN {
      for (i = 1; i <= n; i++) printf "  - {name: t%d, host: 127.0.0.1, port: %d, sni: %s}\n", i, port, sni
      printf "jobs:\n  - name: bench\n    targets: ["
      for (i = 1; i <= n; i++) printf "%st%d", (i > 1 ? ", " : ""), i
      printf "]\n    profiles: [bench]\n    interval: %ss\n", interval
    }'
  } >"$out"
}

metrics_up() { curl -sf -o /dev/null "http://127.0.0.1:$1/metrics"; }

# start_agent DIR REGION SERIES RUN_FOR_S: sets AGENT_PID, AGENT_MPORT; returns 1 (and says
# why in AGENT_WHY) when it did not come up.
start_agent() {
  local d=$1 region=$2 n=$3 run_for=$4
  mkdir -p "$d"
  free_port AGENT_MPORT
  write_agent_config "$d/agent.yaml" "$region" "$n" "$AGENT_MPORT" "$PORT_ECDSA" "$INTERVAL"
  "$AGENT" --config "$d/agent.yaml" --run-for "${run_for}s" </dev/null >"$d/agent.log" 2>&1 &
  AGENT_PID=$!
  tp_on_exit "tp_stop $AGENT_PID agent >/dev/null 2>&1"
  if ! tp_wait_for 60 "agent /metrics" metrics_up "$AGENT_MPORT" 2>/dev/null; then
    AGENT_WHY="the agent did not serve /metrics within 60 s: $(tail -2 "$d/agent.log" | tr '\n' ' ')"
    tp_stop "$AGENT_PID" agent >/dev/null 2>&1 || true
    return 1
  fi
}

# window DIR: RFC 3339 --since/--until of the measured interval (whole seconds inside it).
window() {
  python3 - "$1/s0.sys" "$1/s1.sys" <<'EOF'
import math, sys, time
t0 = float(open(sys.argv[1]).readline()); t1 = float(open(sys.argv[2]).readline())
f = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
print(f(math.ceil(t0)), f(math.floor(t1)))
EOF
}

paced_limit() { # OUT SECONDS: the limit loop at PACED_RATE in the background; sets PACED_PID
  "$LIMIT" --mode paced --rate $PACED_RATE --duration "$2" --count $((PACED_RATE * $2 + 10)) \
    --port "$PORT_ECDSA" --sni $SNI --ca "$PKI/ca.pem" --priority "$PRIORITY" --warmup 0 --json \
    >"$1" 2>"$1.err" &
  PACED_PID=$!
  tp_on_exit "tp_stop $PACED_PID paced-limit >/dev/null 2>&1"
}

# --- rounds ---------------------------------------------------------------------------------

agent_round() { # ROUND RATE [SECTION]: SECTION contention runs it beside CPU hogs
  local rnd=$1 rate=$2 section=${3:-agent}
  local d=$W/$section-r$1-$2 region=$section-r$1-$2 n since until
  n=$((rate * INTERVAL))
  if ! start_agent "$d" "$region" "$n" $((WARM + MEAS + 60)); then
    failed agent agent "$AGENT_WHY" --round "$rnd" --rate "$rate"
    return 0
  fi
  sleep "$WARM"
  paced_limit "$d/paced.json" "$MEAS"
  snap "$d/s0" "$AGENT_PID" "$AG_COLLECTOR_PID"
  curl -sf "http://127.0.0.1:$AGENT_MPORT/metrics" >"$d/m0" || true
  sleep "$MEAS"
  if ! tp_alive "$AGENT_PID"; then
    wait "$PACED_PID" 2>/dev/null || true
    failed agent agent "the agent exited during the round: $(tail -2 "$d/agent.log" | tr '\n' ' ')" \
      --round "$rnd" --rate "$rate"
    return 0
  fi
  snap "$d/s1" "$AGENT_PID" "$AG_COLLECTOR_PID"
  curl -sf "http://127.0.0.1:$AGENT_MPORT/metrics" >"$d/m1" || true
  cp "/proc/$AGENT_PID/status" "$d/status1" 2>/dev/null || true
  wait "$PACED_PID" 2>/dev/null || true
  tp_stop "$AGENT_PID" agent 30 >/dev/null 2>&1 || true # SIGTERM: it pushes what it has
  read -r since until < <(window "$d")
  "$COLLECTOR" report --db "$AG_DB" --source raw --since "$since" --until "$until" \
    --by region --region "$region" --format json >"$d/report.json" 2>"$d/report.err" || true
  "$COLLECTOR" report --db "$AG_DB" --source raw --since "$since" --until "$until" \
    --by region --region "$region" --format json --include-saturated \
    >"$d/report-all.json" 2>>"$d/report.err" || true
  record agent-record --section "$section" --report-all "$d/report-all.json" \
    --round "$rnd" --rate "$rate" --sys0 "$d/s0.sys" --sys1 "$d/s1.sys" \
    --stat0 "$d/s0.$AGENT_PID.stat" --stat1 "$d/s1.$AGENT_PID.stat" --status1 "$d/status1" \
    --cstat0 "$d/s0.$AG_COLLECTOR_PID.stat" --cstat1 "$d/s1.$AG_COLLECTOR_PID.stat" \
    --metrics0 "$d/m0" --metrics1 "$d/m1" --report "$d/report.json" --region "$region" \
    --paced "$d/paced.json" --db "$AG_DB" --series "$n" --interval "$INTERVAL"
  rm -f "$d"/agent.spool*
}

blackbox_round() { # ROUND RATE
  local rnd=$1 rate=$2 d=$W/blackbox-r$1-$2
  if [ -n "${BB_PID:-}" ] && ! tp_alive "$BB_PID"; then
    BB_WHY="blackbox_exporter exited: $(tail -2 "$W/blackbox/blackbox.log" | tr '\n' ' ')"
    BB_PID=""
  fi
  if [ -z "${BB_PID:-}" ]; then
    failed blackbox blackbox "$BB_WHY" --round "$rnd" --rate "$rate"
    return 0
  fi
  mkdir -p "$d"
  "$DRIVE" --url "$BB_URL" --rate "$rate" --duration "$WARM" --max-in-flight 1024 --json >"$d/warm.json" 2>&1 || true
  paced_limit "$d/paced.json" "$MEAS"
  snap "$d/s0" "$BB_PID"
  "$DRIVE" --url "$BB_URL" --rate "$rate" --duration "$MEAS" --max-in-flight 1024 --json >"$d/drive.json" 2>"$d/drive.err" || true
  snap "$d/s1" "$BB_PID"
  cp "/proc/$BB_PID/status" "$d/status1" 2>/dev/null || true
  wait "$PACED_PID" 2>/dev/null || true
  record blackbox-record --round "$rnd" --rate "$rate" --sys0 "$d/s0.sys" --sys1 "$d/s1.sys" \
    --stat0 "$d/s0.$BB_PID.stat" --stat1 "$d/s1.$BB_PID.stat" --status1 "$d/status1" \
    --drive "$d/drive.json" --paced "$d/paced.json"
}

limit_round() { # ROUND NAME PORT MODE PRIORITY
  local rnd=$1 name=$2 port=$3 mode=$4 prio=$5 d=$W/limit-r$1-$2
  mkdir -p "$d"
  snap "$d/s0"
  "$LIMIT" --mode "$mode" --threads $AGENT_LOOPS --in-flight $AGENT_IN_FLIGHT \
    --duration "$LIMIT_S" --count 1000000 --port "$port" --sni $SNI --ca "$PKI/ca.pem" \
    --priority "$prio" --json >"$d/out.json" 2>"$d/err" || true
  snap "$d/s1"
  record limit-record --round "$rnd" --name "$name" --sys0 "$d/s0.sys" --sys1 "$d/s1.sys" --json "$d/out.json"
}

# --- syscalls per probe ---------------------------------------------------------------------

strace_agent() { # RATE
  local rate=$1 d=$W/strace-agent-$1 n p0 p1
  if [ "$HAVE_STRACE" -eq 0 ]; then
    failed strace agent "strace not installed (deploy/scripts/install-deps.sh --bench)" --rate "$rate"
    return 0
  fi
  n=$((rate * INTERVAL))
  if ! start_agent "$d" "strace-$rate" "$n" $((WARM + STRACE_S + 60)); then
    failed strace agent "$AGENT_WHY" --rate "$rate"
    return 0
  fi
  sleep "$WARM"
  curl -sf "http://127.0.0.1:$AGENT_MPORT/metrics" >"$d/m0" || true
  timeout -s INT "$STRACE_S" strace -c -f -p "$AGENT_PID" -o "$d/strace.txt" 2>"$d/strace.err" || true
  curl -sf "http://127.0.0.1:$AGENT_MPORT/metrics" >"$d/m1" || true
  tp_stop "$AGENT_PID" agent 30 >/dev/null 2>&1 || true
  rm -f "$d"/agent.spool*
  p0=$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import suite_lib as s; print(s.prom_sum(sys.argv[2], "tlsprobe_agent_results_total"))' "$ROOT/bench" "$d/m0" 2>/dev/null || echo 0)
  p1=$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import suite_lib as s; print(s.prom_sum(sys.argv[2], "tlsprobe_agent_results_total"))' "$ROOT/bench" "$d/m1" 2>/dev/null || echo 0)
  record strace-record --name agent --rate "$rate" --file1 "$d/strace.txt" \
    --probes1 "$(python3 -c "print($p1 - $p0)")"
}

strace_limit() { # NAME MODE N1 N2: two runs, the difference cancels start-up
  local name=$1 mode=$2 n1=$3 n2=$4 d=$W/strace-limit-$1 n
  [ "$HAVE_STRACE" -eq 1 ] || { failed strace "limit-$name" "strace not installed (deploy/scripts/install-deps.sh --bench)"; return 0; }
  mkdir -p "$d"
  for n in "$n1" "$n2"; do
    strace -c -f -o "$d/strace.$n" "$LIMIT" --mode "$mode" --threads $AGENT_LOOPS \
      --in-flight $AGENT_IN_FLIGHT --count "$n" --duration 120 --warmup 0 --port "$PORT_ECDSA" \
      --sni $SNI --ca "$PKI/ca.pem" --priority "$PRIORITY" >/dev/null 2>"$d/err.$n" || true
  done
  record strace-record --name "limit-$name" --file0 "$d/strace.$n1" --file1 "$d/strace.$n2" \
    --probes0 "$n1" --probes1 "$n2"
}

# --- instruction counts ---------------------------------------------------------------------

callgrind_section() {
  local d=$W/callgrind n s
  mkdir -p "$d"
  if [ "$HAVE_VALGRIND" -eq 0 ]; then
    for s in limit engine agent; do failed callgrind $s "valgrind not installed (deploy/scripts/install-deps.sh)"; done
    return 0
  fi
  say "callgrind: the limit loop (${CG_N1} and ${CG_N2} handshakes)"
  for n in $CG_N1 $CG_N2; do
    valgrind --tool=callgrind --callgrind-out-file="$d/limit.$n" "$LIMIT" --mode sequential \
      --count "$n" --duration 600 --warmup 0 --port "$PORT_ECDSA" --sni $SNI --ca "$PKI/ca.pem" \
      --priority "$PRIORITY" >"$d/limit.$n.out" 2>"$d/limit.$n.log" || true
  done
  record callgrind-record --name "limit (bench-limit sequential)" --file0 "$d/limit.$CG_N1" \
    --file1 "$d/limit.$CG_N2" --probes0 "$CG_N1" --probes1 "$CG_N2" \
    --method "whole process, (I(N2) - I(N1)) / (N2 - N1)"
  if [ -x "$HANDSHAKE" ]; then
    say "callgrind: the engine (bench-handshake's engine side, ${CG_N1} and ${CG_N2} probes)"
    for n in $CG_N1 $CG_N2; do
      valgrind --tool=callgrind --toggle-collect=uv_run --callgrind-out-file="$d/engine.$n" \
        "$HANDSHAKE" --port "$PORT_ECDSA" --sni $SNI --ca "$PKI/ca.pem" --count "$n" \
        --in-flight "$AGENT_IN_FLIGHT" >"$d/engine.$n.out" 2>"$d/engine.$n.log" || true
    done
    record callgrind-record --name "engine (bench-handshake, TLS 1.3 default groups)" \
      --file0 "$d/engine.$CG_N1" --file1 "$d/engine.$CG_N2" --probes0 "$CG_N1" \
      --probes1 "$CG_N2" --method "inside uv_run only (--toggle-collect=uv_run), (I(N2) - I(N1)) / (N2 - N1)"
  else
    failed callgrind engine "bench-handshake not built"
  fi
  callgrind_agent
}

# The agent for CG_AGENT_S seconds at two rates (1 and 4 series per second): the difference
# of instructions over the difference of results cancels start-up, idle timers and stop.
callgrind_agent() {
  local d=$W/callgrind counts=() n i produced
  for i in 1 2; do
    n=$((i == 1 ? 1 : 4))
    mkdir -p "$d/agent$i"
    free_port AGENT_MPORT
    write_agent_config "$d/agent$i/agent.yaml" "callgrind-$i" "$n" "$AGENT_MPORT" "$PORT_ECDSA" 1 info
    # GNUTLS_SYSTEM_PRIORITY_FILE=/dev/null skips the agent's re-exec (which would exec
    # valgrind's tool binary, /proc/self/exe).
    GNUTLS_SYSTEM_PRIORITY_FILE=/dev/null timeout $((CG_AGENT_S * 3 + 120)) \
      valgrind --tool=callgrind --callgrind-out-file="$d/agent$i/cg" "$AGENT" \
      --config "$d/agent$i/agent.yaml" --run-for "${CG_AGENT_S}s" </dev/null \
      >"$d/agent$i/log" 2>&1 || true
    produced=$(tp_log_field "$d/agent$i/log" "agent stopped" produced || true)
    counts+=("${produced:-0}")
  done
  record callgrind-record --name "agent (tlsprobe-agent, the suite's profile)" \
    --file0 "$d/agent1/cg" --file1 "$d/agent2/cg" --probes0 "${counts[0]}" --probes1 "${counts[1]}" \
    --method "whole process, ${CG_AGENT_S} s at 1 and 4 probes/s: (I2 - I1) / (results2 - results1)"
}

# --- collector: report and ingest -----------------------------------------------------------

# fill_db DB ROWS: bench/report.sh's database (made by a real collector, filled by sqlite3
# with ROWS results over 7 days; see that script).
fill_db() {
  local db=$1 rows=$2 t0
  mkdir -p "$(dirname "$db")"
  t0=$(date +%s)
  if ! BENCH_FILL_ONLY=1 BENCH_KEEP_DB="$db" TP_COLLECTOR="$COLLECTOR" \
    bash "$ROOT/bench/report.sh" "$rows" >"$W/fill-$rows.log" 2>&1; then
    say "filling $rows rows failed: $(tail -3 "$W/fill-$rows.log")"
    return 1
  fi
  say "filled $rows rows in $(($(date +%s) - t0)) s ($(du -m "$db" | cut -f1) MiB)"
}

report_section() { # DB ROWS
  local db=$1 rows=$2 q name args i d=$W/report-$2
  mkdir -p "$d"
  for q in "1h:--since 1h" "24h:--since 24h" "7d:--since 7d" "30d --by region:--since 30d --by region"; do
    name="report --${q%%:*}"
    read -ra args <<<"${q#*:}"
    snap "$d/s0"
    local times=()
    for ((i = 1; i <= REPORT_RUNS; i++)); do
      python3 "$LIB" time "$d/t.$i" "$COLLECTOR" report --db "$db" "${args[@]}" --format json \
        >"$d/out.json" 2>"$d/err" || true
      times+=("$d/t.$i")
    done
    snap "$d/s1"
    record report-record --name "$name" --rows "$rows" --sys0 "$d/s0.sys" --sys1 "$d/s1.sys" \
      --output "$d/out.json" "${times[@]}"
  done
}

# ingest_run NAME DIR ROWS PUSHERS: one bench-ingest run against the collector now running.
ingest_run() {
  local name=$1 d=$2 rows=$3 pushers=$4 tag=$2/ingest-$4-${1// /_}
  snap "$tag.s0"
  "$INGEST" --url "$TP_COLLECTOR_URL" --pushers "$pushers" --batches "$INGEST_BATCHES" \
    --batch-size 500 --agents "$pushers" --json --db "$TP_DB" >"$tag.json" 2>"$tag.err" || true
  snap "$tag.s1"
  record ingest-record --name "$name" --pushers "$pushers" --rows "$rows" --sys0 "$tag.s0.sys" \
    --sys1 "$tag.s1.sys" --json "$tag.json"
}

ingest_section() { # DIR ROWS (DIR/tlsprobe.db holds ROWS results, or nothing for 0)
  local d=$1 rows=$2 p loop_pid stop=$1/reports.stop
  if [ ! -x "$INGEST" ]; then
    for p in 1 4 8; do failed ingest alone "skipped: bench-ingest not built" pushers=$p rows_before="$rows"; done
    failed ingest "while reports run" "skipped: bench-ingest not built" pushers=4 rows_before="$rows"
    return 0
  fi
  # Plain HTTP without tokens (bench-ingest's K agents need no K tokens); a rate limit that
  # does not bite; maintenance once an hour, so the figures are ingest alone.
  if ! tp_start_collector "$COLLECTOR" "$d" 0 "max_body_bytes: 67108864
limits: {agent_requests_per_second: 100000, agent_burst: 1000000}
retention: {interval: 1h}" >/dev/null 2>&1; then
    failed ingest alone "the collector did not start on $d/tlsprobe.db" rows_before="$rows"
    return 0
  fi
  local cpid=$TP_COLLECTOR_PID
  for p in 1 4 8; do ingest_run alone "$d" "$rows" "$p"; done
  if [ "$rows" -gt 0 ]; then
    # The same ingest while an operator's reports run against the same database (issue #8:
    # ingest not slowed by more than 10 %). Bounded: 500 reports or until the ingest ends.
    rm -f "$stop"
    (
      for ((i = 0; i < 250; i++)); do
        [ -e "$stop" ] && exit 0
        "$COLLECTOR" report --db "$TP_DB" --since 1h >/dev/null 2>&1 || true
        "$COLLECTOR" report --db "$TP_DB" --since 24h >/dev/null 2>&1 || true
      done
    ) &
    loop_pid=$!
    tp_on_exit "kill $loop_pid 2>/dev/null || true"
    ingest_run "while reports run" "$d" "$rows" 4
    touch "$stop"
    wait "$loop_pid" 2>/dev/null || true
  fi
  tp_stop "$cpid" collector >/dev/null 2>&1 || true
}

# collector_section: ingest into an empty database; then a database of ROWS results (and of
# 10 M with --10m): report times, ingest alone and while reports run.
collector_section() {
  local rows
  say "collector: ingest into an empty database"
  mkdir -p "$W/ingest-0"
  ingest_section "$W/ingest-0" 0
  for rows in "$ROWS" $([ "$TEN_M" -eq 1 ] && echo 10000000); do
    say "collector: $rows rows (bench/report.sh's fill)"
    if fill_db "$W/big-$rows/tlsprobe.db" "$rows"; then
      report_section "$W/big-$rows/tlsprobe.db" "$rows"
      ingest_section "$W/big-$rows" "$rows"
    else
      failed report "report --1h" "could not fill $rows rows: $(tail -1 "$W/fill-$rows.log")" rows="$rows"
    fi
    rm -f "$W/big-$rows"/tlsprobe.db* # up to 7.5 GB at 10 M
  done
}

# --- machine and config ---------------------------------------------------------------------

describe() {
  local nginx_v bb_v gnutls_v commit
  nginx_v=$(nginx -v 2>&1 | sed 's/.*nginx\///')
  bb_v=$([ "$HAVE_BLACKBOX" -eq 1 ] && "$BLACKBOX" --version 2>&1 | head -1 | awk '{print $3}' || echo "not installed")
  gnutls_v=$(pkg-config --modversion gnutls 2>/dev/null || echo "?")
  commit=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo "?")
  python3 - "$W/machine.json" "$BUILD_TYPE" "$commit" "$nginx_v" "$bb_v" "$gnutls_v" <<'EOF'
import json, os, platform, sys, time
out, build_type, commit, nginx, bb, gnutls = sys.argv[1:7]
model = "?"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        model = line.split(":", 1)[1].strip(); break
mem = "?"
for line in open("/proc/meminfo"):
    if line.startswith("MemTotal:"):
        mem = "%.1f GiB RAM" % (int(line.split()[1]) / 1048576); break
os_name = "?"
try:
    for line in open("/etc/os-release"):
        if line.startswith("PRETTY_NAME="):
            os_name = line.split("=", 1)[1].strip().strip('"')
except OSError:
    pass
json.dump({"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "nproc": os.cpu_count(),
           "model": model, "memory": mem, "kernel": platform.release(), "os": os_name,
           "load_start": open("/proc/loadavg").read().split()[:3], "build_type": build_type or "?",
           "commit": commit, "nginx": nginx, "blackbox": bb, "gnutls": gnutls}, open(out, "w"))
EOF
  python3 - "$W/config.json" <<EOF
import json, sys
json.dump({"mode": "$MODE", "rounds": $R, "rates": [int(x) for x in "$RATES".split()],
  "warmup_s": $WARM, "measure_s": $MEAS, "limit_s": $LIMIT_S, "interval_s": $INTERVAL,
  "paced_rate": $PACED_RATE, "agent_loops": $AGENT_LOOPS, "agent_in_flight": $AGENT_IN_FLIGHT,
  "agent_profile": "versions [TLS1.2, TLS1.3], groups [$GROUPS_YAML], durable spool, HTTPS push (batch 500, flush 1 s)",
  "priority": "$PRIORITY", "rows": $ROWS, "ten_m": $TEN_M, "ingest_batches": $INGEST_BATCHES,
  "nginx_note": "$NGINX_WORKERS worker(s), TLS 1.2 + 1.3, tickets on, X25519:prime256v1:secp384r1, access log off"},
  open(sys.argv[1], "w"))
EOF
}

results_path() { # sets OUT_MD, OUT_JSON: suite-YYYY-MM-DD[-N] not yet taken
  local base n=1
  mkdir -p "$OUT_DIR"
  base=$OUT_DIR/suite-$(date -u +%Y-%m-%d)
  OUT_MD=$base.md
  while [ -e "$OUT_MD" ] || [ -e "${OUT_MD%.md}.json" ]; do
    n=$((n + 1))
    OUT_MD=$base-$n.md
  done
  OUT_JSON=${OUT_MD%.md}.json
}

# --- the self-test --------------------------------------------------------------------------

# Checks the tools, not their speed: every probe against nginx succeeds and verifies our
# chains, a wrong name or CA fails, the JSON parses and carries the figures the suite reads,
# and one short agent round and one blackbox round (if installed) give complete records.
jget() { python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[k] if isinstance(d,dict) else d[int(k)]
print(d)' "$1" "$2" 2>/dev/null || echo "?"; }

selftest() {
  local d=$W/selftest rc
  mkdir -p "$d"
  lim() { "$LIMIT" --port "$1" --sni "$2" --ca "$3" --priority "$4" "${@:5}" --json; }
  rc=0; lim "$PORT_ECDSA" $SNI "$PKI/ca.pem" "$PRIORITY" --count 30 >"$d/seq.json" || rc=$?
  tp_expect_eq "bench-limit sequential vs nginx (ECDSA): exit 0" 0 $rc
  tp_expect_eq "sequential: 30 ok" 30 "$(jget "$d/seq.json" ok)"
  tp_expect_eq "sequential: 0 failed" 0 "$(jget "$d/seq.json" failed)"
  tp_expect_eq "sequential: TLS 1.3 negotiated" TLS1.3 "$(jget "$d/seq.json" version)"
  tp_expect_eq "sequential: X25519 negotiated" X25519 "$(jget "$d/seq.json" group)"
  tp_expect_match "sequential: CPU per probe is a number" '^[0-9]+\.[0-9]+$' "$(jget "$d/seq.json" cpu_ms_per_probe)"
  tp_expect_match "sequential: handshake p99 is a number" '^[0-9]+\.[0-9]+$' "$(jget "$d/seq.json" handshake_ms.p99)"
  rc=0; lim "$PORT_RSA" $SNI "$PKI/ca.pem" "$PRIORITY" --count 10 >"$d/rsa.json" || rc=$?
  tp_expect_eq "bench-limit vs nginx (RSA-2048 chain): 10 ok" "0 10" "$rc $(jget "$d/rsa.json" ok)"
  rc=0; lim "$PORT_ECDSA" $SNI "$PKI/ca.pem" "$PRIORITY_TLS12" --count 10 >"$d/tls12.json" || rc=$?
  tp_expect_eq "bench-limit TLS 1.2 priority: TLS 1.2 negotiated" "0 TLS1.2" "$rc $(jget "$d/tls12.json" version)"
  rc=0; lim "$PORT_ECDSA" $SNI "$PKI/ca.pem" "$PRIORITY" --mode concurrent --threads 2 \
    --in-flight 8 --count 64 >"$d/conc.json" || rc=$?
  tp_expect_eq "bench-limit concurrent (2 x 8 in flight): 64 ok, 0 failed" "0 64 0" \
    "$rc $(jget "$d/conc.json" ok) $(jget "$d/conc.json" failed)"
  rc=0; lim "$PORT_ECDSA" $SNI "$PKI/ca.pem" "$PRIORITY" --mode paced --rate 50 --duration 1 \
    --count 1000 --warmup 0 >"$d/paced.json" || rc=$?
  tp_expect_eq "bench-limit paced: exit 0, 0 failed" "0 0" "$rc $(jget "$d/paced.json" failed)"
  # the duration bounds the starts: at 50/s for 1 s, at most 51 (not a timing assertion:
  # more would mean the pacing ignores its rate)
  tp_expect_match "bench-limit paced: 1..51 probes started in 1 s at 50/s" '^([1-9]|[1-4][0-9]|5[01])$' "$(jget "$d/paced.json" probes)"
  tp_expect_match "bench-limit paced: lateness percentiles present" '^[0-9]+\.[0-9]+$' "$(jget "$d/paced.json" late_ms.p99)"
  rc=0; lim "$PORT_ECDSA" other.test "$PKI/ca.pem" "$PRIORITY" --count 3 --warmup 0 >"$d/name.json" || rc=$?
  tp_expect_eq "wrong name: exit 1, 3 failed" "1 3" "$rc $(jget "$d/name.json" failed)"
  tp_expect_match "wrong name: the verification says so" 'verify' "$(jget "$d/name.json" first_error)"
  rc=0; lim "$PORT_ECDSA" $SNI "$PKI/stranger.pem" "$PRIORITY" --count 3 --warmup 0 --mode concurrent >"$d/ca.json" || rc=$?
  tp_expect_eq "unknown CA (concurrent): exit 1, 3 failed" "1 3" "$rc $(jget "$d/ca.json" failed)"
  rc=0; "$LIMIT" --port "$PORT_ECDSA" --sni $SNI --ca "$PKI/ca.pem" --mode bogus >/dev/null 2>&1 || rc=$?
  tp_expect_eq "bench-limit: a bad option is a usage error" 2 $rc
  rc=0; "$DRIVE" --url "http://192.0.2.1:9115/probe" --duration 1 >/dev/null 2>&1 || rc=$?
  tp_expect_eq "bench-blackbox-drive refuses a URL off loopback" 2 $rc

  # The suite's own configs pass the binaries' checks.
  free_port AGENT_MPORT
  write_agent_config "$d/check.yaml" check 3 "$AGENT_MPORT" "$PORT_ECDSA" 1
  rc=0; "$AGENT" --config "$d/check.yaml" --check >"$d/check.log" 2>&1 || rc=$?
  tp_expect_eq "the suite's agent config passes tlsprobe-agent --check" 0 $rc

  # One short round of each kind through the whole pipeline: records without "failed" (a
  # warning that the machine could not keep up is timing, which a self-test does not judge).
  limit_round 1 sequential "$PORT_ECDSA" sequential "$PRIORITY"
  agent_round 1 20
  tp_expect_eq "agent round: a complete record" "ok" "$(tail -1 "$REC" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r.get("failed") or "ok")')"
  tp_expect_match "agent round: CPU per probe and a reported p50" '^[0-9.]+ [0-9.]+$' \
    "$(tail -1 "$REC" | python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]; print(d["cpu_ms_per_probe"], d["report"]["handshake_p50_ms"])' 2>/dev/null)"
  tp_expect_eq "agent round: every probe in the interval reported ok" "ok" \
    "$(tail -1 "$REC" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["report"]; print("ok" if r["probes"] > 0 and r["probes"] == r["successes"] else r)' 2>/dev/null)"
  if [ -n "${BB_PID:-}" ]; then
    blackbox_round 1 20
    tp_expect_eq "blackbox round: a complete record" "ok" "$(tail -1 "$REC" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r.get("failed") or "ok")')"
  else
    tp_say "skip blackbox round: $BB_WHY"
  fi
  describe
  python3 "$LIB" render "$REC" "$W/machine.json" "$W/config.json" "$d/out.md" "$d/out.json" 2>"$d/render.err"
  tp_expect_eq "render: the JSON file parses with a summary for 20/s" "True" \
    "$(python3 -c 'import json,sys; print("20" in json.load(open(sys.argv[1]))["summary"])' "$d/out.json" 2>/dev/null)"
  tp_expect_match "render: the Markdown has the side-by-side table" '\| agent CPU ms per probe \| [0-9]' "$(cat "$d/out.md" 2>/dev/null)"
  tp_finish
}

# --- main -----------------------------------------------------------------------------------

say "mode $MODE, binaries from $BUILD (${BUILD_TYPE:-?}), work in $W"
make_pki
start_nginx
say "nginx on 127.0.0.1:$PORT_ECDSA (ECDSA P-256) and :$PORT_RSA (RSA-2048)"
if start_blackbox; then say "blackbox_exporter on 127.0.0.1:$PORT_BB"; else say "no blackbox rounds: $BB_WHY"; fi
start_agent_collector
if [ "$MODE" = selftest ]; then
  RATES=20
  selftest
  exit 0
fi
describe

want() { [[ ,$ONLY, == *,$1,* ]]; }

for ((rnd = 1; rnd <= R; rnd++)); do
  want rounds || break
  say "round $rnd of $R"
  limit_round "$rnd" sequential "$PORT_ECDSA" sequential "$PRIORITY"
  limit_round "$rnd" concurrent "$PORT_ECDSA" concurrent "$PRIORITY"
  if [ "$rnd" -eq 1 ]; then
    limit_round 1 "sequential RSA-2048" "$PORT_RSA" sequential "$PRIORITY"
    limit_round 1 "sequential TLS 1.2" "$PORT_ECDSA" sequential "$PRIORITY_TLS12"
  fi
  for rate in $RATES; do
    # the order alternates between rounds, so a drift of the machine favours neither
    if [ $((rnd % 2)) -eq 1 ]; then
      agent_round "$rnd" "$rate"
      blackbox_round "$rnd" "$rate"
    else
      blackbox_round "$rnd" "$rate"
      agent_round "$rnd" "$rate"
    fi
  done
done

# Under contention: one busy loop per CPU (nice 0, as a noisy neighbour would be) beside
# the agent and the paced limit loop. What the agent reports, with the results it marked
# saturated left out (its default) and with them, against the limit loop's p50 at the same
# moment (issue #9: within 1.5x).
if want contention; then
  say "contention: $(nproc) CPU hogs beside the agent"
  for rate in ${CONTENTION_RATES:-200 500}; do
    HOGS=()
    for ((i = 0; i < $(nproc); i++)); do
      timeout $((WARM + MEAS + 90)) sh -c 'while :; do :; done' &
      HOGS+=($!)
    done
    agent_round 1 "$rate" contention
    kill "${HOGS[@]}" 2>/dev/null || true
    wait "${HOGS[@]}" 2>/dev/null || true
  done
fi

if want strace; then
  say "syscalls per probe (strace -c)"
  for rate in $RATES; do strace_agent "$rate"; done
  strace_limit sequential sequential 100 300
  strace_limit concurrent concurrent 200 600
fi

if want callgrind; then callgrind_section; fi

if want collector; then collector_section; fi

results_path
python3 "$LIB" render "$REC" "$W/machine.json" "$W/config.json" "$OUT_MD" "$OUT_JSON" ||
  die "rendering the results failed (records kept: rerun with --keep)"
cat "$OUT_MD"
say "results: $OUT_MD, $OUT_JSON ($(($(date +%s) - T_START)) s)"
