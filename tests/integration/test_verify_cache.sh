#!/usr/bin/env bash
# test_verify_cache.sh - the engine's caches of verified chains and certificate facts
# (probes/engine/verify_cache.c, certinfo.c) never hide a change: one engine (probe-once
# --stdin) probes one openssl s_server on 127.0.0.1 whose configuration is swapped between
# probes, and each change is seen on the very next probe after a probe that was answered from
# the cache (cache_verify_hits went up):
#   new leaf (other key, still valid) -> ok, with the new leaf's facts
#   expired leaf -> expired; leaf without its intermediate -> incomplete_chain
#   OCSP staple "good" then "revoked" on the cached chain -> ok, then revoked
#   the same cached chain once its leaf has expired (a leaf valid for a few seconds) -> expired
#   an entry older than the maximum age -> verified again by GnuTLS
# and a chain answered from the cache reports exactly the facts its first probe parsed.
set -euo pipefail
ROOT=${TP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=lib.sh
. "$ROOT/tests/integration/lib.sh"
ONCE=${TP_PROBE_ONCE:?TP_PROBE_ONCE must point at the probe-once binary}
tp_install_traps
W=$(mktemp -d /tmp/tp-vcache.XXXXXX)
tp_on_exit "rm -rf '$W'"

utc() { date -u -d "$1" '+%Y-%m-%d %H:%M:%S UTC'; }
key() { certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --no-text --outfile "$W/$1.key" 2>/dev/null; }
# cert NAME ISSUER(or -) NOT_BEFORE NOT_AFTER TEMPLATE-LINES...
cert() {
  local name=$1 issuer=$2 nb=$3 na=$4
  shift 4
  key "$name"
  printf '%s\n' "$@" "activation_date = \"$nb\"" "expiration_date = \"$na\"" >"$W/$name.tmpl"
  if [ "$issuer" = - ]; then
    certtool --generate-self-signed --no-text --load-privkey "$W/$name.key" --template "$W/$name.tmpl" \
      --outfile "$W/$name.pem" >"$W/$name.log" 2>&1
  else
    certtool --generate-certificate --no-text --load-privkey "$W/$name.key" \
      --load-ca-certificate "$W/$issuer.pem" --load-ca-privkey "$W/$issuer.key" \
      --template "$W/$name.tmpl" --outfile "$W/$name.pem" >"$W/$name.log" 2>&1
  fi || tp_die "certtool failed for $name: $(cat "$W/$name.log")"
}
LEAF=('dns_name = "cache.test"' tls_www_server signing_key)
cert root - "$(utc '-2 days')" "$(utc '+2 years')" 'cn = "cache test root"' ca cert_signing_key
cert inter root "$(utc '-2 days')" "$(utc '+2 years')" 'cn = "cache test intermediate"' ca cert_signing_key
cert leafa inter "$(utc '-1 day')" "$(utc '+365 days')" 'cn = "cache leaf A"' "${LEAF[@]}"
cert leafb inter "$(utc '-1 day')" "$(utc '+200 days')" 'cn = "cache leaf B"' "${LEAF[@]}"
cert leafexp inter "$(utc '-10 days')" "$(utc '-1 day')" 'cn = "cache leaf expired"' "${LEAF[@]}"

# ocsp LEAF STATUS: W/LEAF.STATUS.der, a response for LEAF signed by the intermediate
# (as deploy/scripts/tls-matrix.sh makes them).
ocsp() {
  local leaf=$1 status=$2 serial exp idx=$W/$1.$2.index
  serial=$(openssl x509 -in "$W/$leaf.pem" -noout -serial | sed 's/^serial=//')
  exp=$(date -u -d "$(openssl x509 -in "$W/$leaf.pem" -noout -enddate | sed 's/^notAfter=//')" +%y%m%d%H%M%SZ)
  if [ "$status" = revoked ]; then
    printf 'R\t%s\t%s,keyCompromise\t%s\tunknown\t/CN=%s\n' "$exp" \
      "$(date -u -d '-1 day' +%y%m%d%H%M%SZ)" "$serial" "$leaf" >"$idx"
  else
    printf 'V\t%s\t\t%s\tunknown\t/CN=%s\n' "$exp" "$serial" "$leaf" >"$idx"
  fi
  { openssl ocsp -issuer "$W/inter.pem" -cert "$W/$leaf.pem" -no_nonce -reqout "$W/$leaf.$status.req" &&
    openssl ocsp -index "$idx" -CA "$W/inter.pem" -rsigner "$W/inter.pem" -rkey "$W/inter.key" \
      -reqin "$W/$leaf.$status.req" -respout "$W/$leaf.$status.der" -ndays 7; } \
    >"$W/$leaf.$status.ocsp.log" 2>&1 || tp_die "openssl ocsp failed: $(cat "$W/$leaf.$status.ocsp.log")"
}
ocsp leafa good
ocsp leafa revoked

# --- one server, one port, its configuration swapped -----------------------------------------
PORT=
SPID=
NSTART=0
# serve ARGS...: (re)starts `openssl s_server -www ARGS` on $PORT; the first start picks a
# free port below the ephemeral range (as tp_serve does), later ones keep it.
start_server() {
  NSTART=$((NSTART + 1))
  local fifo=$W/server.$NSTART.stdin
  mkfifo "$fifo"
  openssl s_server -accept "127.0.0.1:$PORT" -www "$@" <"$fifo" >"$W/server.$NSTART.log" 2>&1 &
  SPID=$!
  exec {TP__SERVE_FD}>"$fifo"
  tp_on_exit "tp_stop $SPID server >/dev/null 2>&1"
  tp_wait_for 5 "server on $PORT" bash -c "(exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null" &&
    tp_alive "$SPID"
}
serve() {
  if [ -n "$PORT" ]; then
    tp_stop "$SPID" server >/dev/null 2>&1 || true
    start_server "$@" || tp_die "server did not restart on $PORT: $(cat "$W/server.$NSTART.log")"
    return 0
  fi
  local attempt
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    PORT=$((20000 + RANDOM % 12000))
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && continue
    start_server "$@" && return 0
    tp_stop "$SPID" server >/dev/null 2>&1 || true
  done
  tp_die "server did not start: $(cat "$W/server.$NSTART.log")"
}
full() { echo -cert "$W/$1.pem" -key "$W/$1.key" -cert_chain "$W/inter.pem"; }

# --- one engine, one probe per line --------------------------------------------------------
# The profile carries the intermediate pool, so a leaf sent alone is incomplete_chain.
start_engine() {
  coproc ENGINE { exec "$ONCE" --stdin --host 127.0.0.1 --sni cache.test --trust "$W/root.pem" \
    --intermediates "$W/inter.pem" --handshake-timeout 5000 "$@" 2>"$W/engine.err"; }
  ENGINE_IN=${ENGINE[1]}
  ENGINE_OUT=${ENGINE[0]}
  ENGINE_PROC=$ENGINE_PID # bash unsets ENGINE_PID as soon as the coprocess ends
}
# stop_engine: end of input; probe-once closes its engine (caches freed, every handle
# closed: uv_loop_close must succeed) and exits 0.
stop_engine() {
  local rc=0
  exec {ENGINE_IN}>&-
  wait "$ENGINE_PROC" 2>/dev/null || rc=$?
  tp_expect_eq "engine closed cleanly$1" 0 "$rc"
}
# probe: one probe of $PORT by the running engine; its lines in $W/last.
probe() {
  local line
  echo "$PORT" >&"$ENGINE_IN"
  : >"$W/last"
  while IFS= read -r -t 30 line <&"$ENGINE_OUT"; do
    [ "$line" = end ] && return 0
    printf '%s\n' "$line" >>"$W/last"
  done
  tp_die "the engine gave no answer: $(cat "$W/engine.err")"
}
fact() { sed -n "s/^$1=//p" "$W/last" | head -n 1; }
# The certificates' facts (days_to_earliest_expiry is worked out per probe from its start
# time, so two probes may straddle a day boundary: checked on its own).
chain_facts() { grep -E '^(chain\[|chain_length)' "$W/last"; }
# hit_probe WHAT: a probe that must be answered from the cache (the warm probe of a change)
hit_probe() {
  local before
  before=$(fact cache_verify_hits)
  probe
  tp_expect_eq "$1: ok" ok "$(fact outcome)"
  tp_expect_eq "$1: answered from the cache" $((before + 1)) "$(fact cache_verify_hits)"
}

start_engine

serve $(full leafa)
probe
tp_expect_eq "leaf A, first probe: ok" ok "$(fact outcome)"
tp_expect_eq "leaf A, first probe: verified by GnuTLS (miss)" 1 "$(fact cache_verify_misses)"
tp_expect_eq "leaf A, first probe: no hit" 0 "$(fact cache_verify_hits)"
tp_expect_match "leaf A: the leaf's facts" "cache leaf A" "$(fact 'chain\[0\]')"
chain_facts >"$W/facts.a.parsed"
hit_probe "leaf A, second probe"
chain_facts >"$W/facts.a.cached"
tp_expect_eq "leaf A from the cache: the facts its first probe parsed" \
  "$(cat "$W/facts.a.parsed")" "$(cat "$W/facts.a.cached")"
days_a=$(fact days_to_earliest_expiry)
tp_expect_eq "leaf A from the cache: days to expiry worked out now (364 or 365)" 1 \
  "$([ "$days_a" -ge 364 ] && [ "$days_a" -le 365 ] && echo 1 || echo "$days_a")"
tp_expect_ge "certificate facts served from the cache" 2 "$(fact cache_facts_hits)"

# New leaf, other key, valid: a new chain, verified by GnuTLS; its own facts are reported.
serve $(full leafb)
probe
tp_expect_eq "new leaf B right after a cached probe: ok" ok "$(fact outcome)"
tp_expect_eq "new leaf B: verified by GnuTLS (miss)" 2 "$(fact cache_verify_misses)"
tp_expect_match "new leaf B: the new leaf's subject" "cache leaf B" "$(fact 'chain\[0\]')"
days_b=$(fact days_to_earliest_expiry)
tp_expect_eq "new leaf B: days to expiry are the new leaf's (199 or 200)" 1 \
  "$([ "$days_b" -ge 199 ] && [ "$days_b" -le 200 ] && echo 1 || echo "$days_b")"
hit_probe "leaf B, second probe"

# Expired leaf.
serve $(full leafexp)
probe
tp_expect_eq "expired leaf right after a cached probe: expired" expired "$(fact outcome)"

# Back to leaf A (still cached), then the same leaf without its intermediate.
serve $(full leafa)
hit_probe "leaf A again (its entry outlived the other chains)"
serve -cert "$W/leafa.pem" -key "$W/leafa.key"
probe
tp_expect_eq "intermediate removed right after a cached probe: incomplete_chain" incomplete_chain \
  "$(fact outcome)"
tp_expect_eq "intermediate removed: chain_complete" 0 "$(fact chain_complete)"

# OCSP staples are not in the chain's bytes: judged by GnuTLS on every probe.
serve $(full leafa)
hit_probe "leaf A before the staples"
rechecks=$(fact cache_verify_rechecks)
serve $(full leafa) -status_file "$W/leafa.good.der"
probe
tp_expect_eq "cached chain + staple good: ok" ok "$(fact outcome)"
tp_expect_eq "cached chain + staple good: stapled" good "$(fact ocsp_cert_status)"
tp_expect_eq "cached chain + staple: verified again by GnuTLS" $((rechecks + 1)) \
  "$(fact cache_verify_rechecks)"
serve $(full leafa) -status_file "$W/leafa.revoked.der"
probe
tp_expect_eq "cached chain + staple revoked: revoked" revoked "$(fact outcome)"
serve $(full leafa)
probe
tp_expect_eq "leaf A without the staple again: ok" ok "$(fact outcome)"

# The same bytes, but the clock passes the leaf's notAfter (a leaf valid for a few seconds).
expires=$(($(date +%s) + 8))
cert leafshort inter "$(utc '-1 day')" "$(date -u -d "@$expires" '+%Y-%m-%d %H:%M:%S UTC')" \
  'cn = "cache leaf short"' "${LEAF[@]}"
serve $(full leafshort)
probe
tp_expect_eq "short-lived leaf, first probe: ok" ok "$(fact outcome)"
hit_probe "short-lived leaf, second probe"
if [ "$(date +%s)" -ge "$expires" ]; then
  tp_fail "the short-lived leaf expired before its cached probe (machine too slow); rerun"
fi
while [ "$(date +%s)" -le $((expires + 1)) ]; do sleep 0.2; done
rechecks=$(fact cache_verify_rechecks)
probe
tp_expect_eq "same chain, past its notAfter: expired" expired "$(fact outcome)"
tp_expect_eq "same chain, past its notAfter: verified again by GnuTLS" $((rechecks + 1)) \
  "$(fact cache_verify_rechecks)"
stop_engine ""

# An entry older than the maximum age is verified again even though nothing changed.
start_engine --verify-cache-max-age 1
serve $(full leafa)
probe
hit_probe "max age 1 s: second probe at once"
sleep 1.5
probe
tp_expect_eq "max age 1 s: after 1.5 s, ok" ok "$(fact outcome)"
tp_expect_eq "max age 1 s: after 1.5 s, verified again by GnuTLS" 1 "$(fact cache_verify_rechecks)"
stop_engine " (max age 1 s)"

tp_finish
