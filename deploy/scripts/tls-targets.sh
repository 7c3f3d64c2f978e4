#!/usr/bin/env bash
# tls-targets.sh - real TLS servers on 127.0.0.1 for the demo and the integration tests.
#
#   tls-targets.sh start DIR   generate a PKI into DIR and start one server per case
#   tls-targets.sh stop DIR    stop every server listed in DIR/pids and wait for them
#
# Cases (target name -> what a correct probe with trust DIR/ca.pem must report):
#   good       valid leaf, SAN good.test                         -> ok
#   expired    leaf whose notAfter is in the past, SAN expired.test -> expired
#   wrongname  valid leaf for other.test; probes send wrongname.test -> hostname_mismatch
#   unknownca  leaf signed by an unrelated "rogue" CA            -> unknown_ca
#   tls12      valid leaf, SAN tls12.test, server speaks only TLS 1.2
#                                                  -> ok (TLS1.2) / protocol_version for 1.3-only
#   refused    a port bound (by a holder) but never listening   -> connection_refused
#
# Outputs: DIR/ca.pem (the root to trust), DIR/targets.env (NAME_PORT=... lines, sourceable),
# DIR/pids (one pid per line), DIR/<case>.log (server output).
#
# Every server is `openssl s_server -accept 127.0.0.1:PORT -www`. gnutls-serv would give us a
# second TLS stack, but it has no bind-address option: it binds the wildcard address
# (getaddrinfo(NULL, port, AI_PASSIVE) in src/serv.c), and these tests must stay on loopback.
#
# Certificates are ECDSA P-256 made with certtool, because certtool's templates take an explicit
# activation/expiration date (OpenSSL 3.0's `x509 -req` cannot backdate notAfter).
set -euo pipefail

PROG=${0##*/}
CASES=(good expired wrongname unknownca tls12)
READY_TIMEOUT_S=10

die() { echo "$PROG: $*" >&2; exit 1; }
usage() { echo "usage: $PROG start DIR | stop DIR" >&2; exit 2; }

# --- PKI ------------------------------------------------------------------------------------

utc() { date -u -d "$1" '+%Y-%m-%d %H:%M:%S UTC'; }

# make_key OUT
make_key() {
  certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --no-text \
    --outfile "$1" >/dev/null 2>&1 || die "certtool could not generate key $1"
}

# make_ca NAME CN: self-signed root valid from well before any leaf until 10 years from now,
# so every leaf's validity lies inside its issuer's (some verifiers check that nesting).
make_ca() {
  local name=$1 cn=$2
  make_key "$DIR/pki/$name.key"
  cat >"$DIR/pki/$name.tmpl" <<EOF
cn = "$cn"
organization = "tlsprobe tests"
ca
cert_signing_key
crl_signing_key
activation_date = "$(utc '2015-01-01 00:00:00')"
expiration_date = "$(utc '+10 years')"
EOF
  certtool --generate-self-signed --no-text --load-privkey "$DIR/pki/$name.key" \
    --template "$DIR/pki/$name.tmpl" --outfile "$DIR/pki/$name.pem" \
    >"$DIR/pki/$name.certtool.log" 2>&1 || die "certtool failed for CA $name (see $DIR/pki/$name.certtool.log)"
}

# make_leaf NAME ISSUER SAN NOT_BEFORE NOT_AFTER
make_leaf() {
  local name=$1 issuer=$2 san=$3 nb=$4 na=$5
  make_key "$DIR/pki/$name.key"
  cat >"$DIR/pki/$name.tmpl" <<EOF
cn = "$san"
organization = "tlsprobe tests"
dns_name = "$san"
tls_www_server
signing_key
activation_date = "$nb"
expiration_date = "$na"
EOF
  certtool --generate-certificate --no-text --load-privkey "$DIR/pki/$name.key" \
    --load-ca-certificate "$DIR/pki/$issuer.pem" --load-ca-privkey "$DIR/pki/$issuer.key" \
    --template "$DIR/pki/$name.tmpl" --outfile "$DIR/pki/$name.pem" \
    >"$DIR/pki/$name.certtool.log" 2>&1 || die "certtool failed for leaf $name (see $DIR/pki/$name.certtool.log)"
}

make_pki() {
  mkdir -p "$DIR/pki"
  local now_nb now_na
  now_nb=$(utc '-1 day')
  now_na=$(utc '+1 year')
  make_ca root "tlsprobe test root CA"
  make_ca rogue "tlsprobe rogue CA (not trusted)"
  make_leaf good root good.test "$now_nb" "$now_na"
  make_leaf expired root expired.test "$(utc '2020-01-01 00:00:00')" "$(utc '2021-01-01 00:00:00')"
  make_leaf wrongname root other.test "$now_nb" "$now_na"
  make_leaf unknownca rogue unknownca.test "$now_nb" "$now_na"
  make_leaf tls12 root tls12.test "$now_nb" "$now_na"
  cp "$DIR/pki/root.pem" "$DIR/ca.pem"
}

# --- ports and servers ----------------------------------------------------------------------

# True if something accepts TCP connections on 127.0.0.1:$1.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Alive and not a zombie: an exited server stays a zombie until its parent (or init, once
# orphaned; slowly in some containers) reaps it, and kill -0 still succeeds on a zombie.
alive() { [ -r "/proc/$1/status" ] && ! grep -q "^State:[[:space:]]*Z" "/proc/$1/status" 2>/dev/null; }

# TP_TARGETS_PORT_BASE pins the first port tried (debugging); random otherwise, so parallel
# runs rarely probe the same ports.
NEXT_PORT=${TP_TARGETS_PORT_BASE:-$((20000 + RANDOM % 20000))}
# free_port: sets PORT to a port nobody listens on now. A global, not stdout: the cursor
# NEXT_PORT must advance, which a $(...) subshell would lose. A later bind can still lose a
# race with another process; start_server detects that and asks for another port.
free_port() {
  local tries=0
  while [ $tries -lt 200 ]; do
    local p=$NEXT_PORT
    NEXT_PORT=$((NEXT_PORT >= 40000 ? 20000 : NEXT_PORT + 1))
    tries=$((tries + 1))
    if ! port_busy "$p"; then PORT=$p; return 0; fi
  done
  die "no free port found in 200 tries"
}

# start_server CASE: starts the server for CASE on a free port, waits until it accepts, and
# records NAME_PORT and the pid.
start_server() {
  local name=$1 attempt port pid extra=() deadline
  [ "$name" = tls12 ] && extra=(-tls1_2)
  for attempt in $(seq 1 10); do
    free_port
    port=$PORT
    # -www: answer an HTTP GET so a probe that sends a request gets a response.
    # stdin from /dev/null and every output into the log: the server must never hold the
    # caller's terminal or a command-substitution pipe open.
    openssl s_server -accept "127.0.0.1:$port" \
      -cert "$DIR/pki/$name.pem" -key "$DIR/pki/$name.key" -www "${extra[@]}" \
      </dev/null >>"$DIR/$name.log" 2>&1 &
    pid=$!
    deadline=$((SECONDS + READY_TIMEOUT_S))
    while [ $SECONDS -le $deadline ]; do
      if ! alive "$pid"; then break; fi      # bind failed: port was taken
      if port_busy "$port"; then
        # Accepting, and still alive: it is our server that answers, not a race winner.
        if alive "$pid"; then
          echo "$pid" >>"$DIR/pids"
          echo "${name^^}_PORT=$port" >>"$DIR/targets.env"
          return 0
        fi
        break
      fi
      sleep 0.05
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo "$PROG: server $name did not come up on port $port (attempt $attempt), retrying" >&2
  done
  die "server $name failed to start; see $DIR/$name.log"
}

# hold_refused_port: sets PORT to a port a holder process has bound but never listens on:
# a connect is refused (RST), as on a closed port, and no other process can take the port
# meanwhile (the holder does not set SO_REUSEADDR, so even a server that does cannot bind
# it). A merely free port could be taken by a parallel test's server, and the "refused"
# target would then answer TLS. The holder's argv names it for do_stop.
HOLDER_MARK=tlsprobe-refused-port-holder
hold_refused_port() {
  local pid deadline
  : >"$DIR/refused.port"
  python3 -c 'import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
time.sleep(10 ** 7)' "$HOLDER_MARK" </dev/null >"$DIR/refused.port" 2>"$DIR/refused.log" &
  pid=$!
  deadline=$((SECONDS + READY_TIMEOUT_S))
  while [ ! -s "$DIR/refused.port" ] && alive "$pid" && [ $SECONDS -le $deadline ]; do
    sleep 0.05
  done
  PORT=$(head -n 1 "$DIR/refused.port")
  [ -n "$PORT" ] || die "the refused-port holder did not start; see $DIR/refused.log"
  echo "$pid" >>"$DIR/pids"
}

do_start() {
  command -v certtool >/dev/null || die "certtool missing: run deploy/scripts/install-deps.sh"
  command -v openssl >/dev/null || die "openssl missing: run deploy/scripts/install-deps.sh"
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  if [ -s "$DIR/pids" ]; then
    die "$DIR/pids exists: servers may still run; '$PROG stop $DIR' first"
  fi
  : >"$DIR/pids"
  : >"$DIR/targets.env"
  # If anything below fails, do not leave half a set of servers running.
  trap 'do_stop >/dev/null 2>&1 || true' EXIT
  make_pki
  local c
  for c in "${CASES[@]}"; do start_server "$c"; done
  hold_refused_port
  echo "REFUSED_PORT=$PORT" >>"$DIR/targets.env"
  trap - EXIT
  echo "$PROG: started ${#CASES[@]} servers in $DIR: $(tr "\n" " " <"$DIR/targets.env")"
}

# A pid from the file is signalled only while it still is an openssl process: pids are reused.
is_our_server() {
  [ -r "/proc/$1/cmdline" ] &&
    tr '\0' ' ' <"/proc/$1/cmdline" | grep -qE "^openssl s_server | $HOLDER_MARK ?\$"
}

do_stop() {
  [ -d "$DIR" ] || die "no such directory: $DIR"
  [ -f "$DIR/pids" ] || return 0
  local pid pids=()
  while read -r pid; do
    [ -n "$pid" ] || continue
    if is_our_server "$pid"; then pids+=("$pid"); kill "$pid" 2>/dev/null || true; fi
  done <"$DIR/pids"
  # Not our children (the starting shell is gone), so poll instead of `wait`; 5 s then KILL.
  for _ in $(seq 1 100); do
    local left=()
    for pid in "${pids[@]}"; do alive "$pid" && left+=("$pid"); done
    pids=("${left[@]}")
    [ ${#pids[@]} -eq 0 ] && break
    sleep 0.05
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -f "$DIR/pids"
}

[ $# -eq 2 ] || usage
DIR=$2
case $1 in
  start) do_start ;;
  stop) do_stop ;;
  *) usage ;;
esac
