#!/usr/bin/env bash
# test_host_policy.sh - the host's GnuTLS system policy must not decide what a profile can
# do. A restrictive policy file (TLS 1.0 and 1.1 disabled, as crypto-policies DEFAULT does)
# stands in for /etc/gnutls/config through GNUTLS_SYSTEM_PRIORITY_FILE (nothing in /etc is
# touched); the server is `openssl s_server -tls1 -cipher DEFAULT:@SECLEVEL=0`.
#   default                 the agent re-execs with GNUTLS_SYSTEM_PRIORITY_FILE=/dev/null:
#                           TLS 1.0 profiles succeed, tls_version TLS1.0
#   --honour-host-policy    the policy applies: the [TLS1.0, TLS1.2] profile can only offer
#   TLSPROBE_HOST_POLICY=   TLS 1.2 and fails against the TLS 1.0 server; a TLS1.0-only
#     honour                profile cannot even be built (exit 2) -- proving the test can fail
# Needs TP_AGENT and TP_COLLECTOR (set by ctest).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${TP_AGENT:?set TP_AGENT to the tlsprobe-agent binary}"
: "${TP_COLLECTOR:?set TP_COLLECTOR to the tlsprobe-collector binary}"
command -v sqlite3 >/dev/null || tp_die "sqlite3 CLI missing: run deploy/scripts/install-deps.sh"

tp_install_traps
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsprobe-hostpolicy.XXXXXX")
tp_on_exit "rm -rf '$WORK'"

# GnuTLS 3.7.9 syntax (doc/cha-config.texi, "System-wide configuration of the library").
POLICY=$WORK/gnutls-host-policy.conf
printf '[overrides]\ndisabled-version = tls1.0\ndisabled-version = tls1.1\n' >"$POLICY"

# Sanity: the policy really bites in this GnuTLS (else the test would prove nothing).
if GNUTLS_SYSTEM_PRIORITY_FILE=$POLICY gnutls-cli -l --priority 'NORMAL:-VERS-ALL:+VERS-TLS1.0' \
  >"$WORK/sanity.out" 2>&1; then
  tp_die "GnuTLS ignores $POLICY (gnutls-cli accepted a TLS1.0-only priority): $(cat "$WORK/sanity.out")"
fi

certtool --generate-privkey --key-type=rsa --bits=2048 --no-text --outfile "$WORK/leaf.key" \
  >/dev/null 2>&1 || tp_die "certtool: key"
printf 'cn = "legacy.test"\ndns_name = "legacy.test"\ntls_www_server\nsigning_key\nencryption_key\nexpiration_days = 30\n' \
  >"$WORK/leaf.tmpl"
certtool --generate-self-signed --no-text --load-privkey "$WORK/leaf.key" \
  --template "$WORK/leaf.tmpl" --outfile "$WORK/leaf.pem" >/dev/null 2>&1 ||
  tp_die "certtool: certificate"

tp_serve tls10 "$WORK" -cert "$WORK/leaf.pem" -key "$WORK/leaf.key" -www -tls1 \
  -cipher 'DEFAULT:@SECLEVEL=0'
PORT=$PORT_tls10

tp_start_collector "$TP_COLLECTOR" "$WORK"

# config ID PROFILE...: an agent.yaml defining and running the named profiles of
# tls10 (versions [TLS1.0]) and tls10-12 (versions [TLS1.0, TLS1.2]).
config() {
  local id=$1 name list=""
  shift
  printf 'agent: {id: %s, region: local}\n' "$id"
  printf 'collector: {url: "%s", insecure_plaintext: true, flush_interval: 200ms}\nprofiles:\n' "$TP_COLLECTOR_URL"
  for name in "$@"; do
    case $name in
      tls10) printf '  - {name: tls10, versions: [TLS1.0], trust: "%s"}\n' "$WORK/leaf.pem" ;;
      tls10-12) printf '  - {name: tls10-12, versions: [TLS1.0, TLS1.2], trust: "%s"}\n' \
        "$WORK/leaf.pem" ;;
    esac
    list+=${list:+, }$name
  done
  printf 'targets:\n  - {name: legacy, host: 127.0.0.1, port: %s, sni: legacy.test}\n' "$PORT"
  printf 'jobs:\n  - {targets: [legacy], profiles: [%s], interval: 1s}\n' "$list"
}

# run_agent NAME CONFIG [ARGS/ENV...]: runs the agent --run-for 3s under the host policy;
# sets RC and leaves its output in $WORK/NAME.log.
run_agent() {
  local name=$1 cfg=$2
  shift 2
  RC=0
  env GNUTLS_SYSTEM_PRIORITY_FILE="$POLICY" "$@" timeout 60 "$TP_AGENT" --config "$cfg" \
    --run-for 3s </dev/null >"$WORK/$name.log" 2>&1 &
  local pid=$!
  tp_on_exit "tp_stop $pid agent-$name >/dev/null 2>&1"
  wait "$pid" || RC=$?
}

q() { tp_sql "$TP_DB" "$1"; }

# --- 1. default: host policy ignored --------------------------------------------------------
config independent tls10 tls10-12 >"$WORK/independent.yaml"
run_agent independent "$WORK/independent.yaml"
tp_expect_eq "default: agent exits 0 under a policy that disables TLS 1.0" 0 "$RC"
[ "$RC" -eq 0 ] || tail -n 20 "$WORK/independent.log" | sed 's/^/  | /' >&2
tp_expect_match "default: logs that it ignores the host policy file" \
  "msg=\"host GnuTLS policy ignored\" policy_file=\"$POLICY\"" "$(cat "$WORK/independent.log")"
tp_expect_ge "default: tls10 rows" 2 \
  "$(q "SELECT count(*) FROM results WHERE agent_id='independent' AND profile='tls10';")"
tp_expect_eq "default: tls10 and tls10-12 are ok with TLS1.0 on every row" "1|ok|TLS1.0" \
  "$(q "SELECT group_concat(DISTINCT ok || '|' || error_class || '|' || tls_version)
        FROM results WHERE agent_id='independent';")"

# --- 2. opt-out: the host policy applies, and the same probes fail --------------------------
config honour tls10-12 >"$WORK/honour.yaml"
run_agent honour "$WORK/honour.yaml" TLSPROBE_HOST_POLICY=honour
tp_expect_eq "honour (env): agent exits 0" 0 "$RC"
tp_expect_match "honour (env): logs that it honours the host policy" \
  "msg=\"host GnuTLS policy honoured\" policy_file=\"$POLICY\"" "$(cat "$WORK/honour.log")"
tp_expect_ge "honour: tls10-12 rows" 2 \
  "$(q "SELECT count(*) FROM results WHERE agent_id='honour';")"
tp_expect_eq "honour: no row succeeds (TLS 1.0 removed by the policy)" 0 \
  "$(q "SELECT count(*) FROM results WHERE agent_id='honour' AND ok=1;")"
tp_say "honour: tls10-12 vs the TLS1.0 server: $(q "SELECT group_concat(DISTINCT error_class)
        FROM results WHERE agent_id='honour';")"

config honourflag tls10 >"$WORK/honourflag.yaml"
RC=0
GNUTLS_SYSTEM_PRIORITY_FILE=$POLICY "$TP_AGENT" --config "$WORK/honourflag.yaml" --check \
  --honour-host-policy >"$WORK/honourflag.log" 2>&1 || RC=$?
tp_expect_eq "honour (flag): a TLS1.0-only profile cannot be built (exit 2)" 2 "$RC"
tp_expect_match "honour (flag): the error names the profile" 'profile "tls10"' \
  "$(cat "$WORK/honourflag.log")"
RC=0
GNUTLS_SYSTEM_PRIORITY_FILE=$POLICY "$TP_AGENT" --config "$WORK/honourflag.yaml" --check \
  >"$WORK/check.log" 2>&1 || RC=$?
tp_expect_eq "default: the same config passes --check under the same policy" 0 "$RC"

tp_stop "$TP_COLLECTOR_PID" collector >/dev/null 2>&1 || true
tp_finish
