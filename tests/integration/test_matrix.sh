#!/usr/bin/env bash
# test_matrix.sh - the server matrix: (server configuration, client profile) -> expected outcome
# class and facts, against real servers on 127.0.0.1 (deploy/scripts/tls-matrix.sh).
#
# The table is tests/integration/matrix.tsv (TP_MATRIX_TABLE overrides it; TP_MATRIX_ONLY=REGEX
# keeps only the cases whose name matches), one row per case:
#   case <TAB> server <TAB> profile <TAB> expected_class [<TAB> fact]...
# where a fact checks one column of the collector's `results` table on EVERY stored result of
# that (server, profile): `col=value`, `col!=value`, `col>=N`, `col<=N` or `col~GLOB`; a NULL
# ("not recorded") satisfies none of them, only `col=NULL`.
#
# One run: start the servers the table uses, a collector (port 0), one agent config with one
# job per row (interval 1s), the agent once with --run-for; then every row is checked (at
# least MIN_PROBES results, all of the expected class, every fact holds) and a PASS/FAIL table
# with got vs want is printed. Exit 1 if any row fails. Logs, configs and the database of a
# failed run are kept in $TP_BUILD_DIR/matrix-failed.
# Needs TP_AGENT and TP_COLLECTOR (set by ctest, see tests/CMakeLists.txt).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${TP_AGENT:?set TP_AGENT to the tlsprobe-agent binary}"
: "${TP_COLLECTOR:?set TP_COLLECTOR to the tlsprobe-collector binary}"
[ -x "$TP_AGENT" ] || tp_die "TP_AGENT=$TP_AGENT is not an executable"
[ -x "$TP_COLLECTOR" ] || tp_die "TP_COLLECTOR=$TP_COLLECTOR is not an executable"
command -v sqlite3 >/dev/null || tp_die "sqlite3 CLI missing: run deploy/scripts/install-deps.sh"

MATRIX_SCRIPT=$TP_ROOT/deploy/scripts/tls-matrix.sh
TABLE=${TP_MATRIX_TABLE:-$(dirname "$0")/matrix.tsv}
RUN_FOR_S=${TP_MATRIX_RUN_FOR_S:-10}
MIN_PROBES=2
HANDSHAKE_TIMEOUT=2s # the `hang` server must time out well within RUN_FOR_S

# --- client profiles ------------------------------------------------------------------------
# profile_yaml NAME SERVERS_DIR: the profile's entry under `profiles:`. Each trusts the matrix
# root CA. A built-in profile (`tlsprobe-agent profiles list`) is used under its own name, as
# `base:` with only the trust store replaced.
profile_yaml() {
  local name=$1 sdir=$2 ca=$2/ca.pem
  echo "  - name: $name"
  if [[ " $BUILTIN_PROFILES " == *" $name "* ]]; then
    echo "    base: $name"
    echo "    trust: $ca"
    return 0
  fi
  case $name in
    default) echo "    versions: [TLS1.2, TLS1.3]" ;;
    tls13) echo "    versions: [TLS1.3]" ;;
    tls12) echo "    versions: [TLS1.2]" ;;
    tls10) echo "    versions: [TLS1.0]" ;;
    # The group-restricted clients of the HelloRetryRequest / no-common-group cases.
    x25519) echo '    priority: "NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-X25519"' ;;
    p384) echo '    priority: "NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-SECP384R1"' ;;
    # Key shares X25519 and P-256, P-384 supported: a P-384-only server must send an HRR.
    x25519-p256-p384)
      echo '    priority: "NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1"' ;;
    # Probe modes (TLS 1.3): take the ticket and reconnect; the same with a GET as 0-RTT data.
    resumption) printf '    versions: [TLS1.3]\n    mode: resumption\n' ;;
    early-data) printf '    versions: [TLS1.3]\n    mode: early_data\n' ;;
    # Resumption with an HTTP request on both connections (each judged on its own answer).
    resumption-http) printf '    versions: [TLS1.3]\n    mode: resumption\n    http:\n      method: GET\n      path: /\n' ;;
    # 0-RTT GET of a path the ngx-early425 server refuses as early data (425 Too Early).
    early-data-get-early) printf '    versions: [TLS1.3]\n    mode: early_data\n    http:\n      method: GET\n      path: /early\n' ;;
    # A POST as 0-RTT data: servers must refuse it (425), else it is a policy violation.
    early-data-post) printf '    versions: [TLS1.3]\n    mode: early_data\n    http:\n      method: POST\n      path: /\n' ;;
    early-data-post-early) printf '    versions: [TLS1.3]\n    mode: early_data\n    http:\n      method: POST\n      path: /early\n' ;;
    # Raw 0-RTT bytes for a service that is not HTTP: acceptance from the TLS facts alone.
    early-data-raw) printf '    versions: [TLS1.3]\n    mode: early_data\n    early_data:\n      data: "PING\\r\\n"\n      expect_reply: "no"\n' ;;
    # DHE key exchange over TLS 1.2 (the dhcustom server's unnamed prime).
    tls12-dhe) printf '    versions: [TLS1.2]\n    key_exchanges: [DHE-RSA]\n' ;;
    # A client that refuses DH primes above 1024 bits (as Java 8 does above 2048).
    tls12-dhe-max1024) printf '    versions: [TLS1.2]\n    key_exchanges: [DHE-RSA]\n    max_dh_bits: 1024\n' ;;
    # Emulations of a recorded real client: one whose offer covers what is negotiated with the
    # good server (TLS 1.3, TLS_AES_*, X25519), one whose recorded offer (TLS 1.2, one ECDHE
    # suite, X25519 only) GnuTLS's emulation goes beyond (the server picks P-256).
    emul-exact) printf '    versions: [TLS1.3]\n    recorded_offer:\n      versions: [TLS1.3]\n      cipher_suites: [4865, 4866, 4867]\n      groups: [29, 23]\n' ;;
    emul-divergent) printf '    recorded_offer:\n      versions: [TLS1.2]\n      cipher_suites: [49195]\n      groups: [29]\n' ;;
    # One HTTP request over the probe's session (the nginx servers answer /status/NNN with NNN).
    http-root) printf '    http:\n      method: GET\n      path: /\n' ;;
    http-503) printf '    http:\n      method: GET\n      path: /status/503\n' ;;
    # Knows the intermediate (as evidence only, never as a trust anchor): leaf-only servers are
    # then incomplete_chain rather than unknown_ca.
    with-intermediates) printf '    intermediates: %s\n' "$sdir/intermediate.pem" ;;
    no-aia-fetch) echo '    aia_fetch: "off"' ;;
    # Client certificates for the mtls server: one from the trusted root, one from the rogue CA.
    client-cert) printf '    client_certificate: %s\n    client_key: %s\n' "$sdir/client.pem" "$sdir/client.key" ;;
    rogue-client-cert)
      printf '    client_certificate: %s\n    client_key: %s\n' "$sdir/rogue-client.pem" "$sdir/rogue-client.key" ;;
    rogue-client-cert-tls12)
      printf '    versions: [TLS1.2]\n    client_certificate: %s\n    client_key: %s\n' \
        "$sdir/rogue-client.pem" "$sdir/rogue-client.key" ;;
    *) tp_die "$TABLE: unknown profile \"$name\" (define it in profile_yaml in $0)" ;;
  esac
  echo "    trust: $ca"
}

# --- the table ------------------------------------------------------------------------------

ROW_CASE=() ROW_SERVER=() ROW_PROFILE=() ROW_CLASS=() ROW_FACTS=()
load_table() {
  local line lineno=0 f seen=" " key
  [ -r "$TABLE" ] || tp_die "no table at $TABLE"
  while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    IFS=$'\t' read -r -a f <<<"$line"
    [ ${#f[@]} -ge 4 ] || tp_die "$TABLE:$lineno: want case, server, profile, class [, facts]; got '$line'"
    [ -z "${TP_MATRIX_ONLY:-}" ] || [[ ${f[0]} =~ $TP_MATRIX_ONLY ]] || continue
    key="${f[1]}/${f[2]}"
    [[ $seen == *" $key "* ]] && tp_die "$TABLE:$lineno: second row for $key (results are keyed by server/profile)"
    [[ $seen == *" case:${f[0]} "* ]] && tp_die "$TABLE:$lineno: duplicate case ${f[0]}"
    seen+="$key case:${f[0]} "
    ROW_CASE+=("${f[0]}") ROW_SERVER+=("${f[1]}") ROW_PROFILE+=("${f[2]}") ROW_CLASS+=("${f[3]}")
    ROW_FACTS+=("$(printf '%s\t' "${f[@]:4}")")
  done <"$TABLE"
  [ ${#ROW_CASE[@]} -gt 0 ] || tp_die "$TABLE: no rows"
}

uniq_words() { printf '%s\n' "$@" | awk '!seen[$0]++'; }

write_agent_config() {
  local out=$1 sdir=$2 url=$3 name port sni p i
  {
    cat <<EOF
agent:
  id: matrix-agent
  region: local
  log_level: info
collector:
  url: $url
  insecure_plaintext: true
  # One result per batch: the collector rejects a whole batch for one invalid result, and a
  # matrix row must fail alone, with the reason, not take every other row's results along.
  batch_size: 1
  flush_interval: 1s
limits:
  loops: 2
defaults:
  connect_timeout: 2s
  handshake_timeout: $HANDSHAKE_TIMEOUT
profiles:
EOF
    while read -r p; do profile_yaml "$p" "$sdir"; done < <(uniq_words "${ROW_PROFILE[@]}")
    echo "targets:"
    while IFS=$'\t' read -r name port sni; do
      echo "  - name: $name"
      echo "    host: 127.0.0.1"
      echo "    port: $port"
      [ -z "$sni" ] || echo "    sni: $sni"
    done <"$sdir/servers.tsv"
    echo "jobs:"
    for i in "${!ROW_CASE[@]}"; do
      echo "  - name: ${ROW_CASE[i]}"
      echo "    targets: [${ROW_SERVER[i]}]"
      echo "    profiles: [${ROW_PROFILE[i]}]"
      echo "    interval: 1s"
    done
  } >"$out"
}

# --- checking one row -----------------------------------------------------------------------

sql_quote() { printf "'%s'" "${1//\'/\'\'}"; }

# check_row I: prints the row's report lines; returns 1 if it fails.
check_row() {
  local i=$1 where n got class want_ok=0 fact col op val cond bad fails=() f
  class=${ROW_CLASS[i]}
  where="target=$(sql_quote "${ROW_SERVER[i]}") AND profile=$(sql_quote "${ROW_PROFILE[i]}")"
  [ "$class" = ok ] && want_ok=1
  n=$(tp_sql "$DB" "SELECT count(*) FROM results WHERE $where;")
  [ "$n" -ge "$MIN_PROBES" ] || fails+=("probes: want >= $MIN_PROBES, got $n")
  got=$(tp_sql "$DB" "SELECT group_concat(error_class || ':' || c, ' ') FROM
      (SELECT error_class, count(*) c FROM results WHERE $where GROUP BY 1 ORDER BY 2 DESC);")
  if [ "$n" -gt 0 ] && [ "$got" != "$class:$n" ]; then
    local detail
    detail=$(tp_sql "$DB" "SELECT error_detail FROM results WHERE $where AND error_class != $(sql_quote "$class") LIMIT 1;")
    fails+=("class: want $class, got $got${detail:+ ($detail)}")
  fi
  bad=$(tp_sql "$DB" "SELECT count(*) FROM results WHERE $where AND ok != $want_ok;")
  [ "$bad" = 0 ] || fails+=("ok: want $want_ok on every result, $bad differ")
  IFS=$'\t' read -r -a f <<<"${ROW_FACTS[i]}"
  for fact in "${f[@]}"; do
    [ -n "$fact" ] || continue
    if [[ $fact =~ ^([a-z_]+)(!=|>=|<=|=|~)(.*)$ ]]; then
      col=${BASH_REMATCH[1]} op=${BASH_REMATCH[2]} val=${BASH_REMATCH[3]}
    else
      fails+=("bad fact '$fact' (want col=value, col!=value, col>=N, col<=N or col~GLOB)")
      continue
    fi
    case $op$val in
      =NULL) cond="$col IS NULL" ;;
      '!=NULL') cond="$col IS NOT NULL" ;;
      =*) cond="CAST($col AS TEXT) = $(sql_quote "$val")" ;;
      '!='*) cond="CAST($col AS TEXT) != $(sql_quote "$val")" ;;
      '>='* | '<='*) cond="$col $op $(sql_quote "$val") + 0" ;;
      '~'*) cond="CAST($col AS TEXT) GLOB $(sql_quote "$val")" ;;
    esac
    # NULL ("not recorded") satisfies no fact but col=NULL.
    if ! bad=$(tp_sql "$DB" "SELECT count(*) FROM results WHERE $where AND coalesce($cond, 0) = 0;" 2>&1); then
      fails+=("$fact: query failed: $bad")
      continue
    fi
    if [ "$bad" != 0 ]; then
      got=$(tp_sql "$DB" "SELECT group_concat(v, ', ') FROM (SELECT DISTINCT coalesce(CAST($col AS TEXT), 'NULL') v
                          FROM results WHERE $where LIMIT 5);")
      fails+=("$fact: got $col=$got ($bad of $n differ)")
    fi
  done
  local label="${ROW_CASE[i]}  ${ROW_SERVER[i]}/${ROW_PROFILE[i]}  n=$n"
  if [ ${#fails[@]} -eq 0 ]; then
    printf 'PASS  %-58s %s\n' "$label" "$class ${ROW_FACTS[i]//$'\t'/ }"
    return 0
  fi
  printf 'FAIL  %-58s want %s %s\n' "$label" "$class" "${ROW_FACTS[i]//$'\t'/ }"
  for f in "${fails[@]}"; do printf '        %s\n' "$f"; done
  return 1
}

# --- main -----------------------------------------------------------------------------------

load_table
# Names of the agent's built-in profiles: the lines of `profiles list` that are not indented.
BUILTIN_PROFILES=$("$TP_AGENT" profiles list 2>/dev/null | grep -E '^[a-z0-9]' | cut -d' ' -f1 | tr '\n' ' ') || true
tp_install_traps
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsprobe-matrix.XXXXXX")
tp_on_exit "rm -rf '$WORK'"
tp_on_exit "[ \$TP_EXIT_STATUS -eq 0 ] || tp__keep_evidence"
tp__keep_evidence() {
  local keep=${TP_BUILD_DIR:-${TMPDIR:-/tmp}}/matrix-failed
  rm -rf "$keep" && cp -r "$WORK" "$keep" 2>/dev/null && tp_say "logs, configs and database kept in $keep"
}

SDIR=$WORK/servers
mapfile -t SERVERS < <(uniq_words "${ROW_SERVER[@]}")
tp_on_exit "'$MATRIX_SCRIPT' stop '$SDIR' >/dev/null 2>&1"
tp_say "starting ${#SERVERS[@]} servers for ${#ROW_CASE[@]} rows"
"$MATRIX_SCRIPT" start "$SDIR" "${SERVERS[@]}" 2>"$WORK/servers.log" ||
  { sed 's/^/  | /' "$WORK/servers.log" >&2; tp_die "could not start the matrix servers"; }

tp_start_collector "$TP_COLLECTOR" "$WORK" || tp_die "could not start the collector"
write_agent_config "$WORK/agent.yaml" "$SDIR" "$TP_COLLECTOR_URL"

rc=0
"$TP_AGENT" --config "$WORK/agent.yaml" --check >"$WORK/check.out" 2>&1 || rc=$?
if [ $rc -ne 0 ]; then
  sed 's/^/  | /' "$WORK/check.out" >&2
  tp_die "the generated agent config ($WORK/agent.yaml) does not pass --check"
fi

tp_say "running the agent for ${RUN_FOR_S}s"
rc=0
timeout $((RUN_FOR_S + 60)) "$TP_AGENT" --config "$WORK/agent.yaml" --run-for "${RUN_FOR_S}s" \
  </dev/null >"$WORK/agent.log" 2>&1 &
agent_pid=$!
tp_on_exit "tp_stop $agent_pid agent >/dev/null 2>&1"
wait "$agent_pid" || rc=$?
tp_expect_eq "agent --run-for ${RUN_FOR_S}s exits 0" 0 "$rc"
[ $rc -eq 0 ] || tail -n 30 "$WORK/agent.log" | sed 's/^/  | /' >&2

# Every acknowledged batch is durable; stop the collector so nothing is being written.
rc=0
tp_stop "$TP_COLLECTOR_PID" collector || rc=$?
tp_expect_eq "collector exits 0 on SIGTERM" 0 "$rc"
DB=$TP_DB
[ -f "$DB" ] || tp_die "no database at $DB"

produced=$(tp_log_field "$WORK/agent.log" "agent stopped" produced)
rejected=$(tp_log_field "$WORK/agent.log" "agent stopped" rejected)
invalid=$(tp_log_field "$WORK/agent.log" "agent stopped" invalid)
rejected=${rejected:-0} invalid=${invalid:-0}
tp_expect_eq "results rejected by the collector (agent's rejected=)" 0 "$rejected"
tp_expect_eq "results the agent found invalid and dropped (agent's invalid=)" 0 "$invalid"
# Each rejected or invalid result is missing from its row; say why, once per distinct reason.
if [ "$rejected" != 0 ]; then
  sed -n 's/.*msg="rejected".* reason="\(.*\)"$/\1/p' "$TP_COLLECTOR_LOG" |
    sed 's/^results\[[0-9]*\]/result/; s/[0-9]\{7,\}/N/g' | sort | uniq -c | sed 's/^/  | /' >&2
fi
if [ "$invalid" != 0 ]; then
  grep -F 'msg="dropping an invalid result' "$WORK/agent.log" | sed 's/^[^ ]* //; s/[0-9]\{7,\}/N/g' |
    sort | uniq -c | sed 's/^/  | /' >&2
fi
tp_expect_eq "rows in results == agent's produced= - rejected= - invalid=" \
  "$((produced - rejected - invalid))" "$(tp_sql "$DB" "SELECT count(*) FROM results;")"

# AIA issuers are cached per URL per probe loop (1 h): however many probes ran, each of the
# agent's loops fetched inter.der at most once.
if [[ " ${SERVERS[*]} " == *" leafonly-aia "* ]]; then
  fetches=$(cat "$SDIR"/logs/aia.log.* 2>/dev/null | grep -c '^GET inter.der$' || true)
  probes=$(tp_sql "$DB" "SELECT count(*) FROM results WHERE target='leafonly-aia';")
  tp_expect_ge "AIA: the issuer was fetched" 1 "$fetches"
  tp_expect_eq "AIA: cached -- at most one fetch per loop (2) for $probes probes" yes \
    "$([ "$fetches" -le 2 ] && echo yes || echo "no, $fetches fetches")"
fi

passed=0 failed=0
echo "server matrix: ${#ROW_CASE[@]} rows from $TABLE"
for i in "${!ROW_CASE[@]}"; do
  if check_row "$i"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "matrix: $passed passed, $failed failed"

# The checker itself must be able to fail: wrong expectations on the first ok row must FAIL.
self_check() {
  local i j=-1 n=${#ROW_CASE[@]} want
  for i in "${!ROW_CASE[@]}"; do [ "${ROW_CLASS[i]}" = ok ] && { j=$i; break; }; done
  [ "$j" -ge 0 ] || return 0
  for want in "expired|" "ok|tls_version=SSL2.0" "ok|cipher=NULL" "ok|days_to_earliest_expiry<=-100000"; do
    ROW_CASE[n]=self-check ROW_SERVER[n]=${ROW_SERVER[j]} ROW_PROFILE[n]=${ROW_PROFILE[j]}
    ROW_CLASS[n]=${want%%|*} ROW_FACTS[n]=${want#*|}
    if check_row "$n" >/dev/null; then
      tp_fail "self-check: ${ROW_SERVER[j]}/${ROW_PROFILE[j]} passed with the wrong expectation '${want/|/ }'"
    else
      tp_pass "self-check: a wrong expectation (${want/|/ }) fails"
    fi
  done
}
self_check
[ $failed -eq 0 ] || TP_FAILURES=$((TP_FAILURES + failed))
tp_finish
