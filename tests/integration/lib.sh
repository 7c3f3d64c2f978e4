# shellcheck shell=bash disable=SC2034  # sourced; its TP_* variables are for the caller
# tests/integration/lib.sh - shell helpers shared by the integration tests and
# deploy/scripts/demo.sh. Source it from bash; it defines functions and a few TP_* variables
# and starts nothing by itself.
#
#   cleanup    tp_install_traps; tp_on_exit CMD...  (run in reverse order on any exit)
#   processes  tp_start_targets DIR; tp_start_collector BIN DIR; tp_stop PID NAME
#   waiting    tp_wait_for SECONDS DESCRIPTION CMD...
#   servers    tp_serve NAME DIR S_SERVER_ARGS... (sets PORT_<NAME>)
#   config     tp_write_agent_config OUT TARGETS_DIR COLLECTOR_URL INTERVAL AGENT_ID
#   queries    tp_sql DB SQL; tp_log_field FILE MSG FIELD
#   asserts    tp_expect_eq / tp_expect_ge / tp_expect_match DESC EXPECTED GOT; tp_finish
#
# Every process a helper starts is registered with tp_on_exit, so a failing step anywhere
# still leaves no server behind.

TP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TP_TARGETS_SCRIPT=$TP_ROOT/deploy/scripts/tls-targets.sh
TP_AGENT_TEMPLATE=$TP_ROOT/deploy/config/agent-demo.yaml.in
TP_FAILURES=0
TP_CLEANUPS=()

tp_say() { echo "$(date -u +%H:%M:%S) $*" >&2; }
tp_die() { tp_say "error: $*"; exit 1; }

# --- cleanup --------------------------------------------------------------------------------

# TP_EXIT_STATUS holds the exit status while the cleanups run.
tp_on_exit() { TP_CLEANUPS+=("$*"); }

tp_cleanup() {
  TP_EXIT_STATUS=$?
  local i
  for ((i = ${#TP_CLEANUPS[@]} - 1; i >= 0; i--)); do
    eval "${TP_CLEANUPS[i]}" || true
  done
  TP_CLEANUPS=()
}

# EXIT runs the cleanups; INT and TERM are turned into an exit so that EXIT runs for them too.
tp_install_traps() {
  trap tp_cleanup EXIT
  # A command that ends the script under set -e says which (a TSan run of test_metrics
  # once ended without a word): not inherited by functions or substitutions, so only
  # the script's own commands -- an assignment from a failed $(...) among them.
  trap 'tp_say "exit status $? at line $LINENO: $BASH_COMMAND"' ERR
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# --- waiting and stopping -------------------------------------------------------------------

# tp_wait_for SECONDS DESCRIPTION CMD...: polls CMD every 0.1 s; fails after SECONDS.
tp_wait_for() {
  local secs=$1 what=$2 i
  shift 2
  # Without a command "$@" would run nothing and succeed at once: a silent non-wait.
  [ $# -gt 0 ] || tp_die "tp_wait_for '$what': no command to poll"
  for ((i = 0; i < secs * 10; i++)); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  tp_say "timed out after ${secs}s waiting for $what"
  return 1
}

tp_alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# tp_serve NAME DIR ARGS...: `openssl s_server -accept 127.0.0.1:PORT ARGS...` on a free port,
# run in DIR (-HTTP/-WWW serve files from there), output in DIR/NAME.log. Sets PORT_<NAME>;
# stopped on exit. Ports stay below the kernel's ephemeral range (32768+), where a client's
# local port could hold the address or a loopback self-connect could fake readiness. Up =
# accepting AND alive. stdin is a FIFO whose write end this shell holds: s_server exits at
# EOF on stdin unless -www, and nothing else keeps ctest's output pipe open.
tp_serve() {
  local name=$1 dir=$2 attempt port pid fifo
  shift 2
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 12000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
    fifo="$dir/$name.$attempt.stdin"
    mkfifo "$fifo"
    (cd "$dir" && exec openssl s_server -accept "127.0.0.1:$port" "$@") <"$fifo" >"$dir/$name.log" 2>&1 &
    pid=$!
    exec {TP__SERVE_FD}>"$fifo" # lets the server's open of its stdin complete
    tp_on_exit "tp_stop $pid $name >/dev/null 2>&1"
    if tp_wait_for 5 "server $name" bash -c "(exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null" &&
      tp_alive "$pid"; then
      printf -v "PORT_$name" %s "$port"
      return 0
    fi
    tp_stop "$pid" "$name" >/dev/null 2>&1 || true
  done
  tp_die "server $name did not start: $(cat "$dir/$name.log")"
}

# tp_stop PID NAME [SECONDS]: SIGTERM, wait up to SECONDS (default 10), then SIGKILL.
# PID must be a child of this shell. Returns the process's exit status (KILL: 137).
# SIGKILL is sent only if the whole grace period passed with the process alive; once it
# looks gone, `wait` (which blocks until the child has really exited) has the last word.
tp_stop() {
  local pid=$1 name=$2 secs=${3:-10} i rc=0 gone=0
  # Already reaped (e.g. stopped earlier, now in a cleanup): its pid may belong to a stranger.
  if ! jobs -p | grep -qx "$pid"; then
    wait "$pid" 2>/dev/null || rc=$?
    return $rc
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 10; i++)); do
    if ! tp_alive "$pid"; then gone=1; break; fi
    sleep 0.1
  done
  if [ $gone -eq 0 ]; then
    tp_say "$name (pid $pid) ignored SIGTERM for ${secs}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || rc=$?
  return $rc
}

# --- the pieces of the data path ------------------------------------------------------------

# tp_start_targets DIR: the local TLS servers; sets TP_TARGETS_DIR and exports *_PORT.
tp_start_targets() {
  TP_TARGETS_DIR=$1
  tp_on_exit "'$TP_TARGETS_SCRIPT' stop '$TP_TARGETS_DIR' >/dev/null 2>&1"
  "$TP_TARGETS_SCRIPT" start "$TP_TARGETS_DIR" >/dev/null || tp_die "could not start the TLS targets"
  # shellcheck disable=SC1091
  . "$TP_TARGETS_DIR/targets.env"
}

# tp_log_field FILE MSG FIELD: value of FIELD=... on the first line of FILE with msg="MSG".
tp_log_field() {
  [ -f "$1" ] || return 1
  grep -m1 -F "msg=\"$2\"" "$1" | sed -n "s/.*[[:space:]]$3=\"\{0,1\}\([^\" ]*\).*/\1/p"
}

tp__collector_port_known() {
  TP_COLLECTOR_PORT=$(tp_log_field "$1" listening port)
  [ -n "$TP_COLLECTOR_PORT" ] && return 0
  # Stop waiting as soon as the collector has died.
  tp_alive "$TP_COLLECTOR_PID" || return 2
  return 1
}

# tp_start_collector BIN DIR [PORT [YAML]]: collector on 127.0.0.1, PORT (default 0: any
# free port), database DIR/tlsprobe.db, plain HTTP without authentication (what most tests
# need; tp_start_collector_https for the real thing); YAML is appended to the config (e.g.
# retention). Sets TP_COLLECTOR_PID, TP_COLLECTOR_PORT, TP_COLLECTOR_URL, TP_COLLECTOR_LOG,
# TP_DB.
tp_start_collector() {
  local bin=$1 dir=$2 port=${3:-0} extra=${4:-}
  cat >"$dir/collector.yaml" <<EOF
listen: 127.0.0.1:$port
database: $dir/tlsprobe.db
insecure_plaintext: true
auth: {allow_unauthenticated: true}
$extra
EOF
  tp__run_collector "$bin" "$dir" http
}

# tp_start_collector_https BIN DIR AGENT_ID [YAML]: HTTPS with a certificate for 127.0.0.1
# from a CA made here (DIR/collector-ca.pem), bearer tokens only, and one token minted for
# AGENT_ID (DIR/AGENT_ID.token, mode 600); YAML is appended to the config (e.g. limits).
# Sets what tp_start_collector sets.
tp_start_collector_https() {
  local bin=$1 dir=$2 agent=$3 extra=${4:-}
  tp__make_collector_certificate "$dir" || return 1
  cat >"$dir/collector.yaml" <<EOF
listen: 127.0.0.1:0
database: $dir/tlsprobe.db
tls: {cert_file: $dir/collector.pem, key_file: $dir/collector.key}
auth: {tokens_file: $dir/tokens.yaml}
$extra
EOF
  (umask 077 && "$bin" agents add "$agent" --config "$dir/collector.yaml" >"$dir/$agent.token") ||
    { tp_say "could not mint a token for $agent"; return 1; }
  tp__run_collector "$bin" "$dir" https
}

tp__make_collector_certificate() {
  local dir=$1
  (
    cd "$dir" &&
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj "/CN=tlsprobe demo collector CA" -keyout collector-ca.key -out collector-ca.pem \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign &&
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
        -keyout collector.key -out collector.csr &&
      printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >collector.ext &&
      openssl x509 -req -in collector.csr -CA collector-ca.pem -CAkey collector-ca.key \
        -CAcreateserial -days 30 -extfile collector.ext -out collector.pem &&
      chmod 600 collector.key collector-ca.key
  ) >"$dir/openssl.log" 2>&1 || { tp_say "openssl failed:"; cat "$dir/openssl.log" >&2; return 1; }
}

# tp__run_collector BIN DIR SCHEME: starts `serve --config DIR/collector.yaml` and waits
# for the port it logs.
tp__run_collector() {
  local bin=$1 dir=$2 scheme=$3 i rc
  TP_DB=$dir/tlsprobe.db
  TP_COLLECTOR_LOG=$dir/collector.log
  TP_COLLECTOR_PORT=""
  "$bin" serve --config "$dir/collector.yaml" </dev/null >"$TP_COLLECTOR_LOG" 2>&1 &
  TP_COLLECTOR_PID=$!
  tp_on_exit "tp_stop $TP_COLLECTOR_PID collector >/dev/null 2>&1"
  # It logs msg="listening" address=127.0.0.1 port=NNNNN once bound.
  for ((i = 0; i < 100; i++)); do
    rc=0
    tp__collector_port_known "$TP_COLLECTOR_LOG" || rc=$?
    [ $rc -eq 0 ] && break
    if [ $rc -eq 2 ]; then
      tp_say "collector exited during start-up; its log:"
      sed 's/^/  | /' "$TP_COLLECTOR_LOG" >&2
      return 1
    fi
    sleep 0.1
  done
  if [ -z "$TP_COLLECTOR_PORT" ]; then
    tp_say "collector did not log msg=\"listening\" with port= within 10s; its log:"
    sed 's/^/  | /' "$TP_COLLECTOR_LOG" >&2
    return 1
  fi
  TP_COLLECTOR_URL=$scheme://127.0.0.1:$TP_COLLECTOR_PORT/v1/results
}

# tp_agent_use_https AGENT_YAML DIR AGENT_ID: points a config written by
# tp_write_agent_config at tp_start_collector_https's collector: its CA, the agent's
# token, no plaintext.
tp_agent_use_https() {
  sed -i "s|^  insecure_plaintext: true\$|  ca_file: $2/collector-ca.pem\n  token_file: $2/$3.token|" "$1"
}

# tp_write_agent_config OUT TARGETS_DIR COLLECTOR_URL INTERVAL AGENT_ID: fills
# deploy/config/agent-demo.yaml.in with the ports of TARGETS_DIR/targets.env.
tp_write_agent_config() {
  local out=$1 tdir=$2 url=$3 interval=$4 id=$5 subst=() line
  subst+=(-e "s|@AGENT_ID@|$id|g" -e "s|@COLLECTOR_URL@|$url|g" -e "s|@INTERVAL@|$interval|g"
    -e "s|@CA_FILE@|$tdir/ca.pem|g")
  while IFS= read -r line; do
    [ -n "$line" ] && subst+=(-e "s|@${line%%=*}@|${line#*=}|g")
  done <"$tdir/targets.env"
  sed "${subst[@]}" "$TP_AGENT_TEMPLATE" >"$out"
  if grep -n '@[A-Z_]*@' "$out" >&2; then
    tp_say "$out: placeholders left unfilled (above)"
    return 1
  fi
}

# tp_free_port: a TCP port on 127.0.0.1 that was free a moment ago (the kernel's choice),
# for a server that must come back on the same port after a restart.
tp_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# tp_sql DB SQL: one query, no header, '|' between columns; waits on a busy database.
tp_sql() { sqlite3 -batch -noheader -cmd '.timeout 5000' "$1" "$2"; }

# --- assertions -----------------------------------------------------------------------------
# Each prints "ok   DESC" or "FAIL DESC: expected X, got Y" and counts failures; tp_finish
# exits 1 if any failed, so one run shows every broken expectation, not only the first.

tp_fail() {
  echo "FAIL $1" >&2
  TP_FAILURES=$((TP_FAILURES + 1))
}
tp_pass() { echo "ok   $1" >&2; }

tp_expect_eq() {
  if [ "$3" = "$2" ]; then tp_pass "$1"; else tp_fail "$1: expected '$2', got '$3'"; fi
}

tp_expect_ge() {
  if [[ $3 =~ ^-?[0-9]+$ ]] && [ "$3" -ge "$2" ]; then
    tp_pass "$1 ($3)"
  else
    tp_fail "$1: expected a number >= $2, got '$3'"
  fi
}

tp_expect_match() {
  if [[ $3 =~ $2 ]]; then tp_pass "$1"; else tp_fail "$1: expected to match /$2/, got '$3'"; fi
}

tp_finish() {
  if [ "$TP_FAILURES" -gt 0 ]; then
    tp_say "$TP_FAILURES assertion(s) failed"
    exit 1
  fi
  tp_say "all assertions passed"
}
