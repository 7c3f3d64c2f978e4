#!/usr/bin/env bash
# test_report_html.sh - `report --format html` from a real database, rendered by a real
# browser:
#   tls-targets.sh servers  <-  tlsprobe-agent (2 profiles, every 1s, --run-for 6s; one more
#   target named <script>alert(1)</script>)  -> HTTP protobuf -> tlsprobe-collector -> SQLite
# then the HTML report of that database (the CLI's own defaults: 24 buckets, chains) is
# rendered in headless Chromium (tests/tools/html_render.py, DevTools over a pipe, no network)
# and checked from the laid-out DOM: every chart exists and has a size, and the numbers it
# plots equal what `report --format json` says of the same database and window; the page
# ran no script, made no request but for its own file, logged no CSP violation, and shows
# the hostile name as text. A screenshot is taken too (kept with the evidence on failure).
# Needs TP_AGENT, TP_COLLECTOR (set by ctest), chromium, python3 and sqlite3.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${TP_AGENT:?set TP_AGENT to the tlsprobe-agent binary}"
: "${TP_COLLECTOR:?set TP_COLLECTOR to the tlsprobe-collector binary}"
[ -x "$TP_AGENT" ] || tp_die "TP_AGENT=$TP_AGENT is not an executable"
[ -x "$TP_COLLECTOR" ] || tp_die "TP_COLLECTOR=$TP_COLLECTOR is not an executable"
for tool in chromium python3 sqlite3; do
  command -v "$tool" >/dev/null || tp_die "$tool missing: run deploy/scripts/install-deps.sh"
done
RENDER=$TP_ROOT/tests/tools/html_render.py
RUN_FOR_S=6
EVIL='<script>alert(1)</script>'

tp_install_traps
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsprobe-html.XXXXXX")
tp_on_exit "rm -rf '$WORK'"
tp_on_exit "[ \$TP_EXIT_STATUS -eq 0 ] || tp__keep_evidence"
tp__keep_evidence() {
  local keep=${TP_BUILD_DIR:-${TMPDIR:-/tmp}}/report-html-failed
  rm -rf "$keep" && cp -r "$WORK" "$keep" && tp_say "HTML, JSON, screenshot, logs and database kept in $keep"
}

# --- 1. a real database ---------------------------------------------------------------------

tp_start_targets "$WORK/targets"
tp_start_collector "$TP_COLLECTOR" "$WORK"
tp_write_agent_config "$WORK/agent.yaml" "$WORK/targets" "$TP_COLLECTOR_URL" 1s html-agent
# One more target, the good server under a name that is markup: agents send names over the
# network, and the page must show this one as text.
python3 - "$WORK/agent.yaml" "$EVIL" "$GOOD_PORT" <<'EOF'
import sys
path, evil, port = sys.argv[1:4]
text = open(path).read()
text = text.replace("targets:\n", "targets:\n  - name: \"%s\"\n    host: 127.0.0.1\n"
                    "    port: %s\n    sni: good.test\n" % (evil, port), 1)
text = text.replace("refused]", "refused, \"%s\"]" % evil, 1)
open(path, "w").write(text)
EOF
grep -qF "name: \"$EVIL\"" "$WORK/agent.yaml" || tp_die "could not add the hostile target to agent.yaml"

rc=0
timeout $((RUN_FOR_S + 60)) "$TP_AGENT" --config "$WORK/agent.yaml" --run-for "${RUN_FOR_S}s" \
  </dev/null >"$WORK/agent.log" 2>&1 &
agent_pid=$!
tp_on_exit "tp_stop $agent_pid agent >/dev/null 2>&1"
wait "$agent_pid" || rc=$?
tp_expect_eq "agent --run-for ${RUN_FOR_S}s exits 0" 0 "$rc"
[ $rc -eq 0 ] || { tail -n 20 "$WORK/agent.log" | sed 's/^/  | /' >&2; tp_die "no data to report"; }
rc=0
tp_stop "$TP_COLLECTOR_PID" collector || rc=$?
tp_expect_eq "collector exits 0 on SIGTERM" 0 "$rc"
DB=$TP_DB
tp_expect_ge "results stored" 60 "$(tp_sql "$DB" "SELECT count(*) FROM results;")"
tp_expect_ge "results of the hostile target" 3 \
  "$(tp_sql "$DB" "SELECT count(*) FROM results WHERE target = '$EVIL' AND ok = 1;")"

# --- 2. the HTML and the JSON of one fixed window -------------------------------------------
# Two runs of `report` must see the same window (and so the same buckets): from the first
# probe's second to one second past the last, in RFC 3339.
first=$(tp_sql "$DB" "SELECT min(started_unix_ns) / 1000000000 FROM results;")
last=$(tp_sql "$DB" "SELECT max(started_unix_ns) / 1000000000 + 1 FROM results;")
since=$(date -u -d "@$first" +%Y-%m-%dT%H:%M:%SZ)
until=$(date -u -d "@$last" +%Y-%m-%dT%H:%M:%SZ)
window=(--since "$since" --until "$until")

rc=0
"$TP_COLLECTOR" report --db "$DB" "${window[@]}" --format html >"$WORK/report.html" \
  2>"$WORK/report-html.err" || rc=$?
tp_expect_eq "report --format html exits 0" 0 "$rc"
[ $rc -eq 0 ] || sed 's/^/  | /' "$WORK/report-html.err" >&2
# The CLI's defaults for HTML: 24 buckets, the chains; the JSON is asked for the same.
rc=0
"$TP_COLLECTOR" report --db "$DB" "${window[@]}" --format json --buckets 24 >"$WORK/report.json" \
  2>&1 || rc=$?
tp_expect_eq "report --format json --buckets 24 exits 0" 0 "$rc"
rc=0
"$TP_COLLECTOR" report expiry --db "$DB" "${window[@]}" --format json >"$WORK/expiry.json" \
  2>&1 || rc=$?
tp_expect_eq "report expiry --format json exits 0" 0 "$rc"
rc=0
"$TP_COLLECTOR" report --db "$DB" --format pdf >/dev/null 2>"$WORK/format.err" || rc=$?
tp_expect_eq "report --format pdf is a usage error" 2 "$rc"
tp_expect_match "... naming html among the formats" 'text, json, csv, html' "$(cat "$WORK/format.err")"
rc=0
"$TP_COLLECTOR" report --help >"$WORK/help.out" 2>&1 || rc=$?
tp_expect_match "report --help shows --format ...|html" 'text\|json\|csv\|html' "$(cat "$WORK/help.out")"

# --- 3. rendered by Chromium ----------------------------------------------------------------

started=$(date +%s.%N)
rc=0
python3 "$RENDER" --width 1280 --height 2000 --screenshot "$WORK/report.png" "$WORK/report.html" \
  >"$WORK/rendered.json" 2>"$WORK/render.err" || rc=$?
tp_expect_eq "Chromium renders the page (html_render.py exits 0)" 0 "$rc"
[ $rc -eq 0 ] || { sed 's/^/  | /' "$WORK/render.err" >&2; tp_finish; }
tp_say "rendered in $(python3 -c "import sys; print(round($(date +%s.%N) - $started, 1))") s," \
  "$(wc -c <"$WORK/report.html") bytes of HTML"

# Every check prints "ok   ..." or "FAIL ..." (as lib.sh's do); the exit status is the count.
rc=0
python3 - "$WORK/rendered.json" "$WORK/report.json" "$WORK/expiry.json" "$WORK/report.html" \
  "$WORK/report.png" "$EVIL" <<'EOF' || rc=$?
import json, struct, sys
rendered, report, expiry = (json.load(open(p)) for p in sys.argv[1:4])
html_path, png_path, evil = sys.argv[4], sys.argv[5], sys.argv[6]
failures = 0

def check(what, ok, detail=""):
    global failures
    print(("ok   " if ok else "FAIL ") + what + ("" if ok else ": " + detail), file=sys.stderr)
    failures += 0 if ok else 1

def group(s):
    return "/".join(s[d] for d in report["by"] if s.get(d))

svgs = {s["id"]: s for s in rendered["svgs"]}
series = report["series"]

# The page did nothing but show itself.
check("no script element, none ran", rendered["scripts"] == 0 and rendered["script_elements"] == 0,
      "%d scripts" % rendered["scripts"])
check("the only request is the file itself", rendered["requests"] == ["file://" + html_path],
      repr(rendered["requests"]))
csp = [e for e in rendered["log"] + rendered["console"] if "Content Security Policy" in json.dumps(e)]
check("no Content-Security-Policy violation logged", not csp, repr(csp)[:300])
check("the hostile target name is shown as text", evil in rendered["text"], "not in the page text")
check("the title names the window", rendered["title"].startswith("tlsprobe report: window "),
      rendered["title"])

# Header and tables agree with the JSON.
check("header: total probes", rendered["totals"].get("total-probes") == str(report["total_probes"]),
      "%s vs %s" % (rendered["totals"].get("total-probes"), report["total_probes"]))
check("header: groups", rendered["totals"].get("total-series") == str(len(series)),
      "%s vs %d" % (rendered["totals"].get("total-series"), len(series)))
levels = [w["level"] for k in ("warnings", "slo_warnings", "agent_warnings") for w in report[k]]
for level in ("CRIT", "WARN"):
    got = rendered["totals"].get("total-" + level.lower())
    check("header: %s lines as the JSON's (%d)" % (level, levels.count(level)),
          got == str(levels.count(level)), repr(got))
slo_rows = sum(1 + (s.get("latency") is not None) for s in report["slo"])
for table, want in (("summary-table", len(series)), ("agents-table", len(report["agents"])),
                    ("slo-table", slo_rows)):
    t = rendered["tables"].get(table, {"rows": -1, "box": {"width": 0, "height": 0}})
    check("table %s: %d rows, laid out" % (table, want),
          t["rows"] == want and t["box"]["width"] > 0 and t["box"]["height"] > 0, repr(t))

# Each chart exists, is laid out at its declared size and holds drawn elements.
for cid in ("chart-success", "chart-p99", "chart-versions", "chart-expiry", "chart-matrix"):
    s = svgs.get(cid)
    if s is None:
        check(cid + " exists", False, "not in the DOM")
        continue
    w, h = float(s["attrs"].get("width", 0)), float(s["attrs"].get("height", 0))
    check("%s is sized (%gx%g, rendered %.0fx%.0f)" % (cid, w, h, s["box"]["width"], s["box"]["height"]),
          w > 0 and h > 0 and s["attrs"].get("viewBox") == "0 0 %g %g" % (w, h)
          and abs(s["box"]["width"] - w) < 1 and abs(s["box"]["height"] - h) < 1, repr(s["box"]))

def items(cid, cls):
    return [i for i in svgs.get(cid, {"items": []})["items"] if cls in i["class"].split()]

# Lines over time: one path per group, its values the JSON timeline's.
def fmt(v, spec):
    return "-" if v is None else format(v, spec)

for cid, key, spec in (("chart-success", "success_rate", ".6f"), ("chart-p99", "handshake_p99_ms", ".3f")):
    paths = {p["data"]["group"]: p for p in items(cid, "series")}
    check("%s: one line per group (%d)" % (cid, len(series)), len(paths) == len(series),
          "%d lines" % len(paths))
    check(cid + ": 24 buckets", svgs[cid]["attrs"].get("data-buckets") == "24",
          svgs[cid]["attrs"].get("data-buckets"))
    starts = ",".join(str(b["start_unix"]) for b in series[0]["timeline"])
    check(cid + ": bucket starts equal the JSON's", svgs[cid]["attrs"].get("data-bucket-starts") == starts)
    bad = []
    for s in series:
        want = ",".join(fmt(b[key], spec) for b in s["timeline"])
        got = paths.get(group(s), {"data": {}})["data"].get("values")
        if got != want:
            bad.append("%s: %s != %s" % (group(s), got, want))
    check(cid + ": every group's values equal the JSON timeline", not bad, "; ".join(bad[:3]))
    drawn = [p for p in paths.values() if p["bbox"] and p["bbox"]["width"] > 0]
    check(cid + ": lines are drawn (a path with a width)", len(drawn) > 0, "none")

# Versions: per group the JSON's distribution.
bad = []
for s in series:
    want = {v["name"]: v["count"] for v in s["versions"]}
    got = {r["data"]["version"]: int(r["data"]["count"]) for r in items("chart-versions", "version")
           if r["data"]["group"] == group(s)}
    if got != want:
        bad.append("%s: %s != %s" % (group(s), got, want))
check("chart-versions: every group's counts equal the JSON's", not bad, "; ".join(bad[:3]))
rects = items("chart-versions", "version")
check("chart-versions: %d bars drawn" % len(rects),
      len(rects) > 0 and all(r["box"]["width"] > 0 and r["box"]["height"] > 0 for r in rects))

# Expiry: the certificates of `report expiry`, with their days and severity.
want = sorted((c["target"], c["position"], c["days_left"], c["severity"]) for c in expiry["certificates"])
got = sorted((r["data"]["target"], int(r["data"]["position"]), int(r["data"]["days"]), r["data"]["severity"])
             for r in items("chart-expiry", "expiry"))
check("chart-expiry: the JSON's %d certificates, days and severity" % len(want), got == want and want,
      "%s != %s" % (got[:3], want[:3]))
check("chart-expiry: an expired (CRIT) certificate is there", any(c[2] < 0 and c[3] == "CRIT" for c in got))
marks = sorted(int(i["data"]["days"]) for i in svgs["chart-expiry"]["items"] if i["class"] == "mark")
check("chart-expiry: the 3/7/14/30-day marks", marks == [3, 7, 14, 30], repr(marks))

# Client matrix: one cell per group, its rate and top error the JSON's.
cells = {c["data"]["group"]: c for c in items("chart-matrix", "cell") if c["tag"] == "g"}
bad = []
for s in series:
    c = cells.get(group(s))
    top = s["top_error"]["class"] if s["top_error"] else ""
    if c is None or c["data"]["successRate"] != format(s["success_rate"], ".6f") \
            or c["data"]["topError"] != top or int(c["data"]["probes"]) != s["probes"]:
        bad.append("%s: %s" % (group(s), c and c["data"]))
check("chart-matrix: every group's cell equals the JSON (rate, top error, probes)", not bad,
      "; ".join(bad[:3]))
check("chart-matrix: a row for the hostile target",
      any(g.startswith(evil + "/") for g in cells), repr(list(cells)[:3]))

# The screenshot is a PNG of the page's width.
with open(png_path, "rb") as f:
    head = f.read(24)
ok = head[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", head[16:24])[0] == 1280
check("screenshot is a 1280-pixel-wide PNG", ok, repr(head[:24]))
sys.exit(min(failures, 100))
EOF
tp_expect_eq "rendered DOM checks (failures)" 0 "$rc"

tp_finish
