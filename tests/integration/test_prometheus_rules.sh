#!/usr/bin/env bash
# test_prometheus_rules.sh - what ships for Prometheus and Grafana is valid and speaks of
# metrics that exist: deploy/prometheus/alerts.yml passes `promtool check rules` and its
# unit tests (alerts_test.yml: series that must fire and must not); deploy/grafana/
# tlsprobe.json is valid JSON (python3 -m json.tool) whose every PromQL query parses (each
# becomes a recording rule for promtool, with Grafana's variables filled in); and every
# tlsprobe_* metric either file names is a family the collector renders (collector/metrics.c).
# Needs promtool (Debian package prometheus) and python3.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

for tool in promtool python3; do
  command -v "$tool" >/dev/null || tp_die "$tool missing: run deploy/scripts/install-deps.sh"
done
RULES=$TP_ROOT/deploy/prometheus/alerts.yml
DASHBOARD=$TP_ROOT/deploy/grafana/tlsprobe.json

tp_install_traps
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsprobe-rules.XXXXXX")
tp_on_exit "rm -rf '$WORK'"

# run DESC CMD...: exit status 0, output shown otherwise.
run() {
  local desc=$1 rc=0
  shift
  "$@" >"$WORK/out" 2>&1 || rc=$?
  tp_expect_eq "$desc (exit status)" 0 "$rc"
  [ $rc -eq 0 ] || sed 's/^/  | /' "$WORK/out" | head -n 40 >&2
}

run "promtool check rules alerts.yml" promtool check rules "$RULES"
tp_expect_match "alerts.yml: every rule counted" 'SUCCESS: [0-9]+ rules found' "$(cat "$WORK/out")"
run "promtool test rules alerts_test.yml" promtool test rules "$TP_ROOT/deploy/prometheus/alerts_test.yml"
# A rule test that cannot fail proves nothing: a wrong expectation must be reported.
cp "$RULES" "$WORK/alerts.yml"
sed 's/agent alive lost 40 results/agent alive lost 41 results/' \
  "$TP_ROOT/deploy/prometheus/alerts_test.yml" >"$WORK/alerts_wrong_test.yml"
rc=0
promtool test rules "$WORK/alerts_wrong_test.yml" >"$WORK/out" 2>&1 || rc=$?
tp_expect_eq "promtool test rules fails on a wrong expectation" 1 "$rc"

run "tlsprobe.json is valid JSON" python3 -m json.tool "$DASHBOARD"
python3 - "$DASHBOARD" "$WORK/dashboard_rules.yml" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
exprs = []
def walk(panels):
    for p in panels:
        walk(p.get("panels", []))
        for t in p.get("targets", []):
            exprs.append((p["title"], t["expr"]))
walk(dash["panels"])
for v in dash["templating"]["list"]:
    if v["type"] == "query":
        q = v["query"]["query"]
        exprs.append(("variable " + v["name"], q[q.index("(") + 1:q.rindex(",")]))
out = ["groups:", "  - name: dashboard", "    rules:"]
for i, (title, e) in enumerate(exprs):
    for var, value in (("$__rate_interval", "5m"), ("$region", ".*"), ("$target", ".*")):
        e = e.replace(var, value)
    out.append("      - record: dashboard:query_%d" % i)
    out.append("        expr: %s" % json.dumps(e))
assert len(exprs) >= 10, "too few queries found: %d" % len(exprs)
open(sys.argv[2], "w").write("\n".join(out) + "\n")
PY
run "every dashboard query parses as PromQL" promtool check rules "$WORK/dashboard_rules.yml"

# Metric names used by the rules and the dashboard, against the families the collector
# renders (histogram series carry _bucket/_sum/_count).
exported=$(grep -o '"tlsprobe_[a-z_]*"' "$TP_ROOT/collector/metrics.c" | tr -d '"' | sort -u)
used=$(cat "$RULES" "$DASHBOARD" | grep -o 'tlsprobe_[a-z_]*' | sed -E 's/_(bucket|sum|count)$//' | sort -u)
unknown=$(comm -13 <(echo "$exported") <(echo "$used"))
tp_expect_eq "every tlsprobe_* metric in alerts.yml and tlsprobe.json is exported" "" "$unknown"
tp_expect_ge "metric names checked" 8 "$(echo "$used" | wc -l)"
tp_finish
