#!/usr/bin/env bash
# test_report_golden.sh - the report over golden datasets pushed through a real
# collector's ingest (make-batch + curl): success rates, nearest-rank percentiles with
# ties and tiny samples, error owners, version distribution, burn-rate SLO scenarios (a
# fast burn that pages, a slow one that is a ticket, one region of two under quorum 2 that
# must not page, two that must), expiry severities at 31/30/14/8/7/3/0 days; the JSON
# against docs/report.schema.json, the CSV against the JSON, every view in every format,
# colour only on a terminal and never with NO_COLOR. Expectations are computed
# independently by report_golden.py from the same rows.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${TP_COLLECTOR:?set TP_COLLECTOR to the tlsprobe-collector binary}"
: "${TP_MAKE_BATCH:?set TP_MAKE_BATCH to the make-batch tool}"
for tool in curl python3 script; do
  command -v "$tool" >/dev/null || tp_die "$tool missing: run deploy/scripts/install-deps.sh"
done
HERE=$(cd "$(dirname "$0")" && pwd)
SCHEMA=$HERE/../../docs/report.schema.json

tp_install_traps
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsprobe-golden.XXXXXX")
tp_on_exit "rm -rf '$WORK'"

tp_start_collector "$TP_COLLECTOR" "$WORK"
# (the serving collector read its config already; what follows is for report --config)
cat >>"$WORK/collector.yaml" <<YAML
retention: {interval: 1s}
slo:
  success: 99.9
  targets:
    - target: "regional*"
      quorum: 2
YAML

NOW=$(date +%s)
UNTIL=$(date -u -d "@$NOW" +%Y-%m-%dT%H:%M:%SZ)
python3 "$HERE/report_golden.py" lines "$NOW" >"$WORK/lines"
# One batch per agent, posted as an agent would.
awk -v dir="$WORK" '/^### / { f = dir "/agent-" $2 ".lines"; next } { print > f }' "$WORK/lines"
for file in "$WORK"/agent-*.lines; do
  agent=${file##*/agent-}
  agent=${agent%.lines}
  "$TP_MAKE_BATCH" "$agent" 1 1 1 "$NOW" <"$file" >"$WORK/$agent.pb"
  code=$(curl -s -o "$WORK/$agent.ack" -w '%{http_code}' --max-time 30 \
    -H 'Content-Type: application/x-protobuf' --data-binary "@$WORK/$agent.pb" \
    "$TP_COLLECTOR_URL")
  tp_expect_eq "batch of $agent ($(wc -l <"$file") results) accepted" 200 "$code"
done

report() { "$TP_COLLECTOR" report --config "$WORK/collector.yaml" --until "$UNTIL" "$@"; }

# golden_check LABEL: the summary (with its SLOs), CSV and expiry view against
# report_golden.py's expectations.
golden_check() {
  local rc=0 label=$1
  shift
  set -- "$label" "$@"
  report "${@:2}" --format json >"$WORK/report.json" 2>"$WORK/report.err" || rc=$?
  tp_expect_eq "$1: report --format json exits 0" 0 "$rc" || cat "$WORK/report.err" >&2
  report "${@:2}" --format csv >"$WORK/report.csv" 2>>"$WORK/report.err" || rc=$?
  tp_expect_eq "$1: report --format csv exits 0" 0 "$rc"
  report expiry --format json >"$WORK/expiry.json" 2>>"$WORK/report.err" || rc=$?
  # The expiry view's certificates join the summary's JSON for one check.
  python3 - "$WORK/report.json" "$WORK/expiry.json" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
summary["certificates"] = json.load(open(sys.argv[2]))["certificates"]
json.dump(summary, open(sys.argv[1], "w"))
PY
  if python3 "$HERE/report_golden.py" check "$NOW" "$WORK/report.json" "$WORK/report.csv" \
    >"$WORK/check.out"; then
    tp_pass "$1: golden expectations ($(grep -c '^ok' "$WORK/check.out") checks)"
  else
    grep -v '^ok' "$WORK/check.out" >&2
    tp_fail "$1: golden expectations: $(grep -c '^FAIL' "$WORK/check.out") failed"
  fi
}
golden_check "raw rows" --source raw

# The JSON against its published schema (every view).
for view in summary errors versions expiry agents "target rates" "clients rates"; do
  # shellcheck disable=SC2086
  report $view --format json >"$WORK/view.json" 2>"$WORK/view.err" || rc=$?
  if out=$(python3 "$HERE/check_schema.py" "$SCHEMA" "$WORK/view.json" 2>&1); then
    tp_pass "report $view --format json matches docs/report.schema.json"
  else
    tp_fail "report $view --format json vs schema: $out"
  fi
done

# Every view in every format exits 0 and ends with a newline.
for view in summary errors versions expiry agents "target rates" "clients rates"; do
  for format in text json csv; do
    rc=0
    # shellcheck disable=SC2086
    report $view --format $format >"$WORK/out" 2>"$WORK/err" || rc=$?
    tp_expect_eq "report $view --format $format exits 0" 0 "$rc"
    tp_expect_eq "report $view --format $format ends with a newline" 1 \
      "$(tail -c1 "$WORK/out" | od -An -c | grep -c '\\n' || true)"
  done
done

# report target NAME: a time series per region (over every profile), per group with --by.
report target fast --format json >"$WORK/target.json"
tp_expect_eq "report target: one time series per region, all probes in them" \
  "eu:120:120:12 us:120:120:12" \
  "$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(" ".join("%s:%d:%d:%d" % (t["region"], t["probes"], sum(b["probes"] for b in t["timeline"]),
                                len(t["timeline"])) for t in d["region_timelines"]))' "$WORK/target.json")"
tp_expect_eq "... the newest bucket holds the failures (10 of 10 probes fail in eu)" "0 0" \
  "$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(" ".join(str(t["timeline"][-1]["successes"]) for t in d["region_timelines"]))' "$WORK/target.json")"
text=$(report target fast)
tp_expect_match "text: time series eu" 'time series eu \(12 buckets\)' "$text"
tp_expect_match "text: time series us" 'time series us \(12 buckets\)' "$text"
text=$(report target fast --by profile,region)
tp_expect_match "--by keeps a time series per group" 'time series p1/eu \(12 buckets\)' "$text"

# report --check: the fast burn pages (CRIT), whatever the other lines say.
rc=0
report --check >/dev/null 2>"$WORK/check.err" || rc=$?
tp_expect_eq "report --check exits 2 (the fast burn pages)" 2 "$rc"
rc=0
report --target tiny1 --check >/dev/null 2>&1 || rc=$?
tp_expect_eq "report --check on a healthy target exits 0" 0 "$rc"
rc=0
report --target slow --check >/dev/null 2>&1 || rc=$?
tp_expect_eq "report --check on the slow burn exits 1 (a ticket)" 1 "$rc"
text=$(report --target 'regional*' 2>&1)
tp_expect_match "text names the quorum" 'WARN slo regional: success >= 99\.9% burning its 30-day budget fast in 1 of 2 regions \(eu 1h [0-9.]+x/5m [0-9.]+x\): below the quorum, not paging' "$text"
tp_expect_match "text pages the two-region burn" 'CRIT slo regional2: success >= 99\.9% burning its 30-day budget fast in 2 of 2 regions' "$text"

# Canary comparison: one candidate significantly worse, one not.
for cand in api-bad api-same; do
  rc=0
  report compare --baseline target=api-old --candidate target=$cand --format json \
    >"$WORK/compare-$cand.json" 2>"$WORK/err" || rc=$?
  tp_expect_eq "compare $cand exits 0" 0 "$rc"
  if python3 "$HERE/report_golden.py" compare "$NOW" $cand "$WORK/compare-$cand.json" >"$WORK/check.out"; then
    tp_pass "compare $cand: per-profile tests and verdict ($(grep -c '^ok' "$WORK/check.out") checks)"
  else
    grep -v '^ok' "$WORK/check.out" >&2
    tp_fail "compare $cand expectations"
  fi
done
rc=0
report compare --baseline target=api-old --candidate target=api-bad --check >"$WORK/out" 2>&1 || rc=$?
tp_expect_eq "compare --check: a worse canary exits 2" 2 "$rc"
tp_expect_match "... and says to stop it" 'verdict: worse for 1 of 3 groups tested .*stop the canary' "$(cat "$WORK/out")"
rc=0
report compare --baseline target=api-old --candidate target=api-same --check >/dev/null 2>&1 || rc=$?
tp_expect_eq "compare --check: a canary within noise exits 0" 0 "$rc"
rc=0
report compare --baseline target=api-old --candidate target=api-same --profile p-tiny --check \
  >/dev/null 2>&1 || rc=$?
tp_expect_eq "compare --check: too few probes exits 1" 1 "$rc"
rc=0
report compare --baseline tagret=api-old --candidate target=x >/dev/null 2>"$WORK/err" || rc=$?
tp_expect_eq "compare with a bad selector exits 2" 2 "$rc"
tp_expect_match "... naming the dimension" 'unknown dimension "tagret"' "$(cat "$WORK/err")"

# Who does the policy strand? Grouped by failure class, with the owner.
text=$(report clients policy 2>&1)
tp_expect_match "clients: stranded by protocol_version" $'\nstranded by protocol_version \\(policy acts\\): 2 profiles: "ie-11", "java-7"\n' "$text"
tp_expect_match "clients: stranded by no_shared_cipher" $'\nstranded by no_shared_cipher \\(policy acts\\): 1 profile: "old-android"\n' "$text"
tp_expect_match "clients: degraded by alert" $'\ndegraded by alert \\(server acts\\): 1 profile: "flaky"\n' "$text"
tp_expect_match "clients: the rest succeed" $'\nsucceed: 1 profile: "modern"' "$text"
rc=0
report clients >/dev/null 2>"$WORK/err" || rc=$?
tp_expect_eq "clients without a target exits 2" 2 "$rc"

# Every subcommand takes --help.
for sub in "" errors "compare"; do
  rc=0
  # shellcheck disable=SC2086
  out=$("$TP_COLLECTOR" report $sub --help 2>&1) || rc=$?
  tp_expect_eq "report $sub --help exits 0" 0 "$rc"
  tp_expect_match "report $sub --help shows the usage" 'report compare --baseline SEL' "$out"
done

# Rollups: the same minute-aligned window from raw rows and from rollups -- equal
# counts, percentiles within 1 %. A collector with a maintenance pass every second
# folds the batches in; the report says how many results no rollup holds yet.
tp_stop "$TP_COLLECTOR_PID" collector >/dev/null 2>&1 || true
cp "$WORK/collector.yaml" "$WORK/serve.yaml"
"$TP_COLLECTOR" serve --config "$WORK/serve.yaml" >"$WORK/serve2.log" 2>&1 &
SERVE2=$!
tp_on_exit "kill $SERVE2 2>/dev/null || true"
FROM=$(date -u -d "@$(((NOW / 60 - 180) * 60))" +%Y-%m-%dT%H:%M:%SZ)
TO=$(date -u -d "@$(((NOW / 60 + 1) * 60))" +%Y-%m-%dT%H:%M:%SZ)
rolled() {
  "$TP_COLLECTOR" report --config "$WORK/collector.yaml" --since "$FROM" --until "$TO" \
    --source rollup --format json >"$WORK/rollup.json" 2>/dev/null &&
    grep -q '"not_rolled_up":0,' "$WORK/rollup.json"
}
if tp_wait_for 30 "every result rolled up" rolled; then
  tp_pass "the maintenance pass rolled every result up"
else
  tp_fail "results still not rolled up after 30 s: $(grep -o '"not_rolled_up":[0-9]*' "$WORK/rollup.json")"
fi
"$TP_COLLECTOR" report --config "$WORK/collector.yaml" --since "$FROM" --until "$TO" \
  --source raw --format json >"$WORK/raw.json"
if python3 "$HERE/report_golden.py" rollup "$WORK/raw.json" "$WORK/rollup.json" >"$WORK/check.out"; then
  tp_pass "rollups = raw rows: $(grep -c '^ok' "$WORK/check.out") checks, $(grep -o 'worst relative.*' "$WORK/check.out")"
else
  grep -v '^ok' "$WORK/check.out" >&2
  tp_fail "rollups against raw rows"
fi
# Four days: whole UTC days come from day rows, the hours and minutes around them from
# hour and minute rows -- still the raw rows' counts and percentiles within 1 %.
FROM4=$(date -u -d "@$(((NOW / 60 - 4 * 1440) * 60))" +%Y-%m-%dT%H:%M:%SZ)
"$TP_COLLECTOR" report --config "$WORK/collector.yaml" --since "$FROM4" --until "$TO" \
  --source rollup --format json >"$WORK/rollup4.json"
"$TP_COLLECTOR" report --config "$WORK/collector.yaml" --since "$FROM4" --until "$TO" \
  --source raw --format json >"$WORK/raw4.json"
if python3 "$HERE/report_golden.py" rollup "$WORK/raw4.json" "$WORK/rollup4.json" >"$WORK/check.out"; then
  tp_pass "4 days (day rows): rollups = raw rows: $(grep -c '^ok' "$WORK/check.out") checks, $(grep -o 'worst relative.*' "$WORK/check.out")"
else
  grep -v '^ok' "$WORK/check.out" >&2
  tp_fail "4 days (day rows): rollups against raw rows"
fi
tp_expect_eq "4 days: day rows exist for the whole days" 1 \
  "$(sqlite3 "$TP_DB" "SELECT count(*) >= 2 FROM rollups WHERE span_ns = 86400000000000 AND target = 'slow'")"
# Error details over rollups (a window that ends now): each class's latest detail per
# group, kept per series as results arrive -- the raw rows' latest.
"$TP_COLLECTOR" report errors --config "$WORK/collector.yaml" --since 4d --format json \
  >"$WORK/errors-auto.json"
"$TP_COLLECTOR" report errors --config "$WORK/collector.yaml" --since 4d --source raw \
  --format json >"$WORK/errors-raw.json"
got=$(python3 - "$WORK/errors-raw.json" "$WORK/errors-auto.json" <<'PY'
import json, sys
def details(path):
    j = json.load(open(path))
    return j["source"], {s["target"]: {e["class"]: e.get("latest_detail") for e in s["errors"]}
                         for s in j["series"]}
(_, want), (source, got) = details(sys.argv[1]), details(sys.argv[2])
n = sum(1 for t in want.values() for d in t.values() if d)
print(f"{source} {n} {'same' if got == want else 'DIFFERENT: %s vs %s' % (got, want)}")
PY
)
tp_expect_match "errors --since 4d from rollups: the raw rows' latest details" '^rollup [1-9][0-9]* same$' "$got"
# Burn rates once rollups are current: the last hour from raw rows, the rest from
# rollups -- the same states and verdicts.
golden_check "rolled up (SLO windows from rollups)" --source auto
# A window that ends now: each series' newest chain comes from the store (one lookup per
# series, whatever serves the rest: raw rows for 1 h, rollups for 7 d) -- the same
# certificates as the latest chains of the rows a past --until window scans.
for since in 1h 7d; do
  "$TP_COLLECTOR" report expiry --config "$WORK/collector.yaml" --since "$since" \
    --format json >"$WORK/latest.json"
  got=$(python3 - "$WORK/expiry.json" "$WORK/latest.json" <<'PY'
import json, sys
def certs(path):
    j = json.load(open(path))
    return j["source"], sorted(json.dumps({k: v for k, v in c.items() if k != "days_left"},
                                          sort_keys=True) for c in j["certificates"])
(_, want), (source, got) = certs(sys.argv[1]), certs(sys.argv[2])
print(f"{source} {'same' if got == want and got else 'DIFFERENT: %s vs %s' % (got, want)}")
PY
)
  want_source=raw
  [ "$since" = 7d ] && want_source=rollup
  tp_expect_eq "expiry --since $since (ends now): the store's newest chains, the raw rows' certificates" \
    "$want_source same" "$got"
done
out=$("$TP_COLLECTOR" report --config "$WORK/collector.yaml" --since 7d --until "$TO" 2>&1)
tp_expect_match "auto: a 7-day window comes from rollups and says so" $'\nfrom rollups: percentiles within 1 %' "$out"
out=$("$TP_COLLECTOR" report --config "$WORK/collector.yaml" --since 1h --until "$TO" 2>&1)
tp_expect_eq "auto: a 1-hour window comes from raw rows" 0 "$(grep -c 'from rollups' <<<"$out" || true)"

# Grouping and filters.
text=$(report --by region --region 'e*' 2>&1)
tp_expect_match "--by region: one row per region" $'\nREGION +PROBES' "$text"
tp_expect_eq "--region e*: only eu" 0 "$(grep -c '^us ' <<<"$text" || true)"
rc=0
report --by nonsense >/dev/null 2>"$WORK/err" || rc=$?
tp_expect_eq "--by nonsense exits 2" 2 "$rc"
tp_expect_match "... and says what is allowed" 'target, profile, region, agent, family' "$(cat "$WORK/err")"
rc=0
report --nice 20 >/dev/null 2>"$WORK/err" || rc=$?
tp_expect_eq "--nice 20 exits 2" 2 "$rc"
tp_expect_match "--nice 20: says the range" 'is not a number 0..19' "$(cat "$WORK/err")"
rc=0
report --since 2026-13-01T00:00:00Z >/dev/null 2>"$WORK/err" || rc=$?
tp_expect_eq "--since with a bad RFC 3339 time exits 2" 2 "$rc"
rc=0
report --since "$UNTIL" >/dev/null 2>"$WORK/err" || rc=$?
tp_expect_match "an empty window is refused" 'window is empty' "$(cat "$WORK/err")"

# Colour: on a terminal yes, with NO_COLOR no, into a pipe no.
tty_out=$(script -qec "'$TP_COLLECTOR' report --config '$WORK/collector.yaml' --until '$UNTIL' --target fast" /dev/null)
tp_expect_match "colour on a terminal" $'\033\\[1;31mCRIT' "$tty_out"
tty_out=$(NO_COLOR=1 script -qec "'$TP_COLLECTOR' report --config '$WORK/collector.yaml' --until '$UNTIL' --target fast" /dev/null)
tp_expect_eq "NO_COLOR: no escape sequence" 0 "$(grep -c $'\033' <<<"$tty_out" || true)"
tp_expect_eq "a pipe: no escape sequence" 0 "$(report --target fast | grep -c $'\033' || true)"

tp_finish
