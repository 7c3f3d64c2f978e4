#!/usr/bin/env python3
"""report_golden.py - golden datasets for the report (test_report_golden.sh).

  report_golden.py lines NOW_S          dataset as make-batch lines, per agent:
                                        "### AGENT" starts an agent's block
  report_golden.py check NOW_S JSON_FILE [CSV_FILE]
                                        the report JSON (and CSV) against expectations
                                        computed here, independently of the C code

The expectations are recomputed from the same generated rows: nearest-rank
percentiles (rank = ceil(p * n)), success rates as fractions, burn rates per the
Google SRE workbook's multi-window table, expiry severities at 30/14/7/3 days.
"""
import csv
import json
import math
import random
import sys

MIN = 60
HOUR = 3600
DAY = 86400


def dataset(now):
    """[(agent, target, profile, region, outcome, handshake_ms, age_s, extra)]"""
    rows = []
    rnd = random.Random(42)
    # Rates and percentiles with ties: 1000 probes in the last 50 minutes.
    fails = set(rnd.sample(range(1000), 7))
    for i in range(1000):
        age = 30 + i * 3
        outcome = ("expired" if i % 2 else "unknown_ca") if i in fails else "ok"
        ms = int(rnd.lognormvariate(3.0, 0.6))  # ints: ties on purpose
        rows.append(("golden-a", "rates", "p1", "eu", outcome, ms, age, ""))
    # Tiny samples.
    rows.append(("golden-a", "tiny1", "p1", "eu", "ok", 7, 60, ""))
    rows.append(("golden-a", "tiny2", "p1", "eu", "ok", 20, 60, ""))
    rows.append(("golden-a", "tiny2", "p1", "eu", "ok", 10, 90, ""))
    # Version distribution.
    for i in range(10):
        v = "TLS1.3" if i < 6 else "TLS1.2"
        rows.append(("golden-a", "mix", "p1", "eu", "ok", 5, 60 + i, "version=" + v))
    # Burn rates. fast: the 12 newest of 120 probes over the hour fail.
    for region, agent in (("eu", "golden-a"), ("us", "golden-b")):
        for i in range(120):
            age = 10 + i * 30
            rows.append((agent, "fast", "p1", region, "connection_refused" if i < 12 else "ok",
                         5, age, ""))
    # slow: 3000 probes over 3 days, 6 failures, one of them in the last 6 h but not
    # the last hour: a ticket (3 d and 6 h burn >= 1), no page.
    fail_ages = {2 * HOUR, 20 * HOUR, 30 * HOUR, 40 * HOUR, 50 * HOUR, 60 * HOUR}
    for i in range(3000):
        age = 40 + i * 86
        near = min(fail_ages, key=lambda a: abs(a - age))
        outcome = "connection_refused" if abs(near - age) < 43 else "ok"
        rows.append(("golden-a", "slow", "p1", "eu", outcome, 5, age, ""))
    # quorum 2: one region burning is a WARN, two are a page.
    for target, burning in (("regional", ("eu",)), ("regional2", ("eu", "us"))):
        for region, agent in (("eu", "golden-a"), ("us", "golden-b")):
            for i in range(120):
                bad = region in burning and i < 12
                rows.append((agent, target, "p1", region, "connection_refused" if bad else "ok",
                             5, 10 + i * 30, ""))
    # Canary comparison: per profile, api-bad fails p-b far more often than api-old,
    # api-same is within noise; p-tiny has too few probes to say anything.
    canary = {"api-old": {"p-a": 2, "p-b": 2, "p-c": 2}, "api-bad": {"p-a": 2, "p-b": 30, "p-c": 3},
              "api-same": {"p-a": 3, "p-b": 3, "p-c": 1}}
    for target, failing in canary.items():
        for profile, bad in failing.items():
            for i in range(200):
                rows.append(("golden-b", target, profile, "eu",
                             "protocol_version" if i < bad else "ok", 5, 100 + i * 15, ""))
        for i in range(10):
            rows.append(("golden-b", target, "p-tiny", "eu", "ok", 5, 100 + i * 15, ""))
    # Who does this policy strand? (report clients policy)
    for profile, outcome, bad in (("modern", "ok", 0), ("ie-11", "protocol_version", 40),
                                  ("java-7", "protocol_version", 40),
                                  ("old-android", "no_shared_cipher", 40), ("flaky", "alert", 4)):
        for i in range(40):
            rows.append(("golden-a", "policy", profile, "eu", outcome if i < bad else "ok", 5,
                         100 + i * 60, ""))
    # Expiry severities.
    for days in (31, 30, 14, 8, 7, 3, 0):
        rows.append(("golden-a", "exp%d" % days, "p1", "eu", "ok", 5, 60,
                     "expiry_days=%d" % days))
    return rows


def lines(now):
    rows = dataset(now)
    for agent in sorted({r[0] for r in rows}):
        print("### " + agent)
        for a, target, profile, region, outcome, ms, age, extra in rows:
            if a == agent:
                print(f"{target} {profile} {region} {outcome} {ms} {age} {extra}".rstrip())


def nearest_rank(values, permille):
    s = sorted(values)
    rank = max(1, math.ceil(permille * len(s) / 1000))
    return s[rank - 1]


FAILURES = []


def expect(name, want, got):
    if want == got or (isinstance(want, float) and isinstance(got, (int, float))
                       and abs(want - got) < 1e-6):
        print("ok   " + name)
    else:
        print(f"FAIL {name}: expected {want!r}, got {got!r}")
        FAILURES.append(name)


SLO_PAIRS = (("1h", "5m", 14.4, "page"), ("6h", "30m", 6.0, "page"), ("3d", "6h", 1.0, "ticket"))
WINDOWS = {"5m": 5 * MIN, "30m": 30 * MIN, "1h": HOUR, "6h": 6 * HOUR, "3d": 3 * DAY}


def slo_state(rows, objective):
    budget = 1 - objective
    rate = {}
    for w, span in WINDOWS.items():
        inside = [r for r in rows if r[6] < span]
        rate[w] = (sum(r[4] != "ok" for r in inside) / len(inside) / budget) if inside else None
    fired = {level for long_w, short_w, threshold, level in SLO_PAIRS
             if rate[long_w] is not None and rate[short_w] is not None
             and rate[long_w] >= threshold and rate[short_w] >= threshold}
    return "page" if "page" in fired else "ticket" if "ticket" in fired else "ok"


def check(now, json_path, csv_path=None):
    with open(json_path) as f:
        report = json.load(f)
    rows = dataset(now)
    expect("schema_version", 2, report["schema_version"])
    series = {(s["target"], s["profile"], s["region"]): s for s in report["series"]}
    window = [r for r in rows if r[6] < HOUR]

    for key in sorted({(r[1], r[2], r[3]) for r in window}):
        mine = [r for r in window if (r[1], r[2], r[3]) == key]
        s = series.get(key)
        if s is None:
            expect(f"{key} present", True, False)
            continue
        ok = [r[5] for r in mine if r[4] == "ok"]
        expect(f"{key} probes", len(mine), s["probes"])
        expect(f"{key} successes", len(ok), s["successes"])
        expect(f"{key} success_rate", len(ok) / len(mine), s["success_rate"])
        if not ok:
            expect(f"{key} no latency without a success", None, s["handshake_ms"])
        for name, pm in (("p50", 500), ("p90", 900), ("p99", 990), ("p99_9", 999)) if ok else ():
            expect(f"{key} handshake {name}", float(nearest_rank(ok, pm)), s["handshake_ms"][name])
            connect = [v / 4 for v in ok]  # make-batch: connect = handshake / 4
            expect(f"{key} connect {name}", nearest_rank(connect, pm), s["connect_ms"][name])
        errors = {}
        for r in mine:
            if r[4] != "ok":
                errors[r[4]] = errors.get(r[4], 0) + 1
        expect(f"{key} errors", errors, {e["class"]: e["count"] for e in s["errors"]})

    mix = series[("mix", "p1", "eu")]
    expect("mix versions", [{"name": "TLS1.3", "count": 6}, {"name": "TLS1.2", "count": 4}],
           mix["versions"])
    owners = {e["class"]: e["owner"] for e in series[("rates", "p1", "eu")]["errors"]}
    expect("owners", {"expired": "server", "unknown_ca": "client"}, owners)

    # Burn rates: each target x region's state, and the target's verdict.
    slo = {(s["target"], s["region"]): s for s in report["slo"]}
    quorum = {"regional": 2, "regional2": 2}
    for key in sorted({(r[1], r[3]) for r in rows if r[6] < 3 * DAY}):
        mine = [r for r in rows if (r[1], r[3]) == key]
        expect(f"slo {key} state", slo_state(mine, 0.999), slo.get(key, {}).get("state"))
        expect(f"slo {key} quorum", quorum.get(key[0], 1), slo.get(key, {}).get("quorum"))
    levels = {}
    for w in report["slo_warnings"]:
        levels[report["slo"][w["index"]]["target"]] = w["level"]
    expect("fast pages", "CRIT", levels.get("fast"))
    expect("slow is a ticket", "WARN", levels.get("slow"))
    expect("one region of two under quorum 2 does not page", "WARN", levels.get("regional"))
    expect("two regions under quorum 2 page", "CRIT", levels.get("regional2"))
    expect("tiny1 has no SLO line", None, levels.get("tiny1"))

    # Expiry: days left and severity per certificate; the warning thresholds.
    certs = {c["target"]: c for c in report["certificates"]}
    sev = {31: "ok", 30: "WARN", 14: "WARN", 8: "WARN", 7: "CRIT", 3: "CRIT", 0: "CRIT"}
    for days, want in sev.items():
        c = certs.get("exp%d" % days, {})
        expect(f"exp{days} days_left", days, c.get("days_left"))
        expect(f"exp{days} severity", want, c.get("severity"))
    texts = {}
    for w in report["warnings"]:
        texts.setdefault(report["series"][w["index"]]["target"], []).append(w)
    thresholds = {31: None, 30: 30, 14: 14, 8: 14, 7: 7, 3: 3, 0: 3}
    for days, threshold in thresholds.items():
        got = [w for w in texts.get("exp%d" % days, []) if "certificate" in w["text"]]
        if threshold is None:
            expect(f"exp{days} no expiry warning", [], got)
        else:
            expect(f"exp{days} warning", f"certificate expires in {days} days (threshold {threshold})",
                   got[0]["text"] if got else None)
            expect(f"exp{days} level", sev[days], got[0]["level"] if got else None)

    if csv_path:
        with open(csv_path, newline="") as f:
            table = list(csv.DictReader(f))
        by_key = {(r["target"], r["profile"], r["region"]): r for r in table}
        for key, s in series.items():
            r = by_key.get(key, {})
            expect(f"csv {key} probes", str(s["probes"]), r.get("probes"))
            expect(f"csv {key} success_rate", s["success_rate"], float(r.get("success_rate", "nan")))
            if s["handshake_ms"]:
                expect(f"csv {key} p99", s["handshake_ms"]["p99"], float(r.get("handshake_p99_ms")))
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


def compare_p_value(n1, f1, n2, f2):
    """One-sided pooled two-proportion z-test: P(Z >= z) for 'rate 2 > rate 1'."""
    pooled = (f1 + f2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (f2 / n2 - f1 / n1) / se
    return 0.5 * math.erfc(z / math.sqrt(2))


def check_compare(now, candidate, json_path):
    with open(json_path) as f:
        got = json.load(f)
    rows = [r for r in dataset(now) if r[6] < HOUR]
    side = lambda t, p: [r for r in rows if r[1] == t and r[2] == p]
    profiles = sorted({r[2] for r in rows if r[1] in ("api-old", candidate)})
    tested = [p for p in profiles if len(side("api-old", p)) >= 30 and len(side(candidate, p)) >= 30]
    alpha = 0.05 / len(tested)
    groups = {g["profile"]: g for g in got["groups"]}
    overall = "not worse"
    for p in profiles:
        b, c = side("api-old", p), side(candidate, p)
        fb, fc = sum(r[4] != "ok" for r in b), sum(r[4] != "ok" for r in c)
        g = groups.get(p, {})
        expect(f"compare {candidate} {p} baseline", {"probes": len(b), "failures": fb}, g.get("baseline"))
        expect(f"compare {candidate} {p} candidate", {"probes": len(c), "failures": fc}, g.get("candidate"))
        if p not in tested:
            expect(f"compare {candidate} {p} verdict", "not enough data", g.get("verdict"))
            continue
        pv = compare_p_value(len(b), fb, len(c), fc)
        expect(f"compare {candidate} {p} p_value", round(pv, 4), round(g.get("p_value", -1), 4))
        verdict = "worse" if pv < alpha else "not worse"
        overall = "worse" if verdict == "worse" else overall
        expect(f"compare {candidate} {p} verdict", verdict, g.get("verdict"))
    expect(f"compare {candidate} overall", overall, got["verdict"])
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


def check_rollup(raw_path, rollup_path):
    """The same window from raw rows and from rollups: equal counts, percentiles within
    1 % (the sketches' guarantee)."""
    raw, rolled = json.load(open(raw_path)), json.load(open(rollup_path))
    expect("raw report is from raw rows", "raw", raw["source"])
    expect("rollup report is from rollups", "rollup", rolled["source"])
    expect("nothing left out of the rollups", 0, rolled["not_rolled_up"])
    key = lambda x: (x["target"], x["profile"], x["region"])
    got = {key(x): x for x in rolled["series"]}
    expect("same groups", sorted(key(x) for x in raw["series"]), sorted(got))
    worst = 0.0
    for x in raw["series"]:
        y = got.get(key(x), {})
        for field in ("probes", "successes", "divergent_successes", "resumption_probes", "hrr"):
            expect(f"rollup {key(x)} {field}", x[field], y.get(field))
        expect(f"rollup {key(x)} errors", {e["class"]: e["count"] for e in x["errors"]},
               {e["class"]: e["count"] for e in y.get("errors", [])})
        # The negotiated mix (schema version 7): the same counts as the raw rows'.
        for dist in ("versions", "ciphers", "groups"):
            expect(f"rollup {key(x)} {dist}", {d["name"]: d["count"] for d in x[dist]},
                   {d["name"]: d["count"] for d in y.get(dist, [])})
        for lat in ("handshake_ms", "connect_ms", "total_ms"):
            if x[lat] is None:
                expect(f"rollup {key(x)} {lat} null", None, y.get(lat))
                continue
            for p in ("p50", "p90", "p99", "p99_9"):
                exact, approx = x[lat][p], (y.get(lat) or {}).get(p, -1)
                err = abs(approx - exact) / exact if exact else abs(approx)
                worst = max(worst, err)
                if err > 0.01:
                    expect(f"rollup {key(x)} {lat} {p} within 1% of {exact}", exact, approx)
    print(f"ok   worst relative percentile error {worst * 100:.3f} %")
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    if sys.argv[1] == "lines":
        lines(int(sys.argv[2]))
    elif sys.argv[1] == "rollup":
        sys.exit(check_rollup(sys.argv[2], sys.argv[3]))
    elif sys.argv[1] == "compare":
        sys.exit(check_compare(int(sys.argv[2]), sys.argv[3], sys.argv[4]))
    elif sys.argv[1] == "check":
        sys.exit(check(int(sys.argv[2]), sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None))
    else:
        sys.exit("usage: report_golden.py lines NOW_S | check NOW_S JSON [CSV]")
