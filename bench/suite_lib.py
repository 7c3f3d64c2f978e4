#!/usr/bin/env python3
"""bench/suite_lib.py - the arithmetic of bench/suite.sh, which collects raw evidence
(copies of /proc/PID/stat and /proc/stat, /metrics texts, the tools' JSON, strace and
callgrind outputs) and calls this to turn it into one JSON record per measurement
(appended to the run's records.jsonl) and, at the end, into the Markdown table and the
JSON file of the run. Standard library only.

  free-port START USED...          first port >= START that binds on 127.0.0.1, not in USED
  time OUT CMD...                  runs CMD; "wall_seconds max_rss_kib" into OUT
  limit-record ...                 a bench-limit run
  agent-record ...                 an agent round (CPU, probes, RSS, lateness, report)
  blackbox-record ...              a blackbox_exporter round
  strace-record ...                syscalls per probe from strace -c
  callgrind-record ...             instructions per probe from two callgrind runs
  ingest-record ...                a bench-ingest run
  report-record ...                report wall times
  failed SECTION NAME REASON ...   a measurement that could not be made, and why
  render RECORDS MACHINE CONFIG OUT_MD OUT_JSON

A record that could not be computed says "failed": "reason" instead of numbers: the
table prints that reason, never a zero."""
import argparse
import json
import math
import os
import re
import socket
import sqlite3
import statistics
import sys

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- evidence readers -------------------------------------------------------------------


def read_sys(path):
    """A snapshot written by suite.sh's snap: time, /proc/stat's cpu line, /proc/loadavg."""
    with open(path) as f:
        lines = f.read().splitlines()
    t = float(lines[0])
    cpu = [int(x) for x in lines[1].split()[1:]]
    load = [float(x) for x in lines[2].split()[:3]]
    return {"t": t, "cpu": cpu, "load": load}


def sys_between(p0, p1):
    """Machine context of a measurement: loadavg at its end, CPU steal and busy share over it."""
    a, b = read_sys(p0), read_sys(p1)
    d = [y - x for x, y in zip(a["cpu"], b["cpu"])]
    total = sum(d[:8]) or 1  # user nice system idle iowait irq softirq steal
    idle = d[3] + (d[4] if len(d) > 4 else 0)
    steal = d[7] if len(d) > 7 else 0
    return {
        "interval_s": round(b["t"] - a["t"], 3),
        "load1": b["load"][0],
        "load5": b["load"][1],
        "busy_pct": round(100.0 * (total - idle) / total, 1),
        "steal_pct": round(100.0 * steal / total, 2),
    }


def proc_cpu_s(path):
    """utime + stime of a /proc/PID/stat copy, seconds (every thread of the process)."""
    with open(path) as f:
        text = f.read()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def proc_status_kib(path, key):
    with open(path) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise ValueError("%s: no %s" % (path, key))


PROM_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def prom_samples(path):
    out = []
    with open(path) as f:
        for line in f:
            m = PROM_LINE.match(line)
            if m:
                out.append((m.group(1), m.group(2) or "", float(m.group(3))))
    return out


def prom_sum(path, name):
    vals = [v for n, _, v in prom_samples(path) if n == name]
    if not vals:
        raise ValueError("%s: no metric %s" % (path, name))
    return sum(vals)


def prom_histogram(path, name):
    """Cumulative bucket counts summed over every label set but le: {le: count}."""
    buckets = {}
    for n, labels, v in prom_samples(path):
        if n != name + "_bucket":
            continue
        m = re.search(r'le="([^"]+)"', labels)
        le = math.inf if m.group(1) == "+Inf" else float(m.group(1))
        buckets[le] = buckets.get(le, 0) + v
    if not buckets:
        raise ValueError("%s: no histogram %s" % (path, name))
    return buckets


def histogram_quantile(b0, b1, q):
    """Prometheus's histogram_quantile over the delta of two scrapes (linear within a
    bucket): seconds, or None without observations."""
    les = sorted(b1)
    cum = [b1[le] - b0.get(le, 0) for le in les]
    total = cum[-1]
    if total <= 0:
        return None
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in zip(les, cum):
        if c >= rank:
            if le == math.inf:
                return prev_le  # above the last bound: say the bound, not a guess
            return prev_le + (le - prev_le) * (rank - prev_c) / max(c - prev_c, 1e-12)
        prev_le, prev_c = le, c
    return prev_le


def load_json(path):
    with open(path) as f:
        return json.load(f)


def nearest_rank(values, q):
    if not values:
        return None
    values = sorted(values)
    k = max(1, min(len(values), math.ceil(q * len(values))))
    return values[k - 1]


def emit(rec):
    sys.stdout.write(json.dumps(rec, sort_keys=True) + "\n")


def base(a, section, name):
    rec = {"section": section, "name": name}
    for k in ("round", "rate"):
        v = getattr(a, k, None)
        if v is not None:
            rec[k] = v
    if getattr(a, "sys0", None) and getattr(a, "sys1", None):
        rec["machine"] = sys_between(a.sys0, a.sys1)
    return rec


# ---- commands ---------------------------------------------------------------------------


def cmd_free_port(a):
    used = set(int(x) for x in a.used)
    for port in range(a.start, min(a.start + 2000, 65536)):
        if port in used:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        print(port)
        return 0
    print("no free port in %d..%d" % (a.start, a.start + 2000), file=sys.stderr)
    return 1


def cmd_limit(a):
    rec = base(a, "limit", a.name)
    d = load_json(a.json)
    rec["data"] = d
    if d.get("ok", 0) == 0:
        rec["failed"] = "no probe succeeded: %s" % d.get("first_error")
    elif d.get("failed", 0) > 0:
        rec["warning"] = "%d of %d probes failed: %s" % (d["failed"], d["probes"], d["first_error"])
    emit(rec)
    return 0


def report_series(path, region):
    doc = load_json(path)
    for s in doc.get("series", []):
        if s.get("region") == region:
            return doc, s
    return doc, None


def db_lateness(db, region, t0, t1):
    """Exact lateness percentiles from stored results, if the store keeps them."""
    if not db or not os.path.exists(db):
        return None
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        cols = [r[1] for r in con.execute("PRAGMA table_info(results)")]
        if "schedule_lateness_ns" not in cols:
            return None
        rows = [
            r[0]
            for r in con.execute(
                "SELECT schedule_lateness_ns FROM results WHERE region = ? AND "
                "started_unix_ns >= ? AND started_unix_ns < ?",
                (region, int(t0 * 1e9), int(t1 * 1e9)),
            )
        ]
    finally:
        con.close()
    if not rows:
        return None
    return {
        "source": "stored results (schedule_lateness_ns)",
        "p50_ms": nearest_rank(rows, 0.5) / 1e6,
        "p99_ms": nearest_rank(rows, 0.99) / 1e6,
        "n": len(rows),
    }


def saturation_of(series, series_all):
    """What the report says about results the agent marked saturated."""
    sat = (series or {}).get("saturated") or {}
    out = {"results": sat.get("results"), "excluded_from_latency": sat.get("excluded_from_latency")}
    hs = (series_all or {}).get("handshake_ms") or {}
    out["handshake_p50_ms_with_saturated"] = hs.get("p50")
    out["handshake_p99_ms_with_saturated"] = hs.get("p99")
    return out


def cmd_agent(a):
    rec = base(a, a.section, a.section)
    try:
        s0, s1 = read_sys(a.sys0), read_sys(a.sys1)
        wall = s1["t"] - s0["t"]
        cpu = proc_cpu_s(a.stat1) - proc_cpu_s(a.stat0)
        res = prom_sum(a.metrics1, "tlsprobe_agent_results_total") - prom_sum(
            a.metrics0, "tlsprobe_agent_results_total"
        )
        started = prom_sum(a.metrics1, "tlsprobe_agent_probes_started_total") - prom_sum(
            a.metrics0, "tlsprobe_agent_probes_started_total"
        )
        skipped = prom_sum(a.metrics1, "tlsprobe_agent_probes_skipped_total") - prom_sum(
            a.metrics0, "tlsprobe_agent_probes_skipped_total"
        )
        d = {
            "series": a.series,
            "interval_s": a.interval,
            "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3),
            "probes": int(res),
            "started": int(started),
            "skipped": int(skipped),
            "achieved_per_s": round(res / wall, 1) if wall > 0 else None,
            "vmrss_mib": round(proc_status_kib(a.status1, "VmRSS") / 1024, 1),
            "vmhwm_mib": round(proc_status_kib(a.status1, "VmHWM") / 1024, 1),
        }
        if res <= 0:
            raise ValueError("the agent finished no probe in the interval")
        d["cpu_ms_per_probe"] = round(cpu * 1e3 / res, 4)
        d["probes_per_cpu_s"] = round(res / cpu, 1) if cpu > 0 else None
        if a.cstat0 and a.cstat1:
            ccpu = proc_cpu_s(a.cstat1) - proc_cpu_s(a.cstat0)
            d["collector_cpu_ms_per_result"] = round(ccpu * 1e3 / res, 4)
        lat = db_lateness(a.db, a.region, s0["t"], s1["t"])
        if lat is None:
            name = "tlsprobe_agent_schedule_lateness_seconds"
            h0, h1 = prom_histogram(a.metrics0, name), prom_histogram(a.metrics1, name)
            p50, p99 = histogram_quantile(h0, h1, 0.5), histogram_quantile(h0, h1, 0.99)
            lat = {
                "source": "agent /metrics histogram (interpolated within buckets 1, 5, 10, 50 ms...)",
                "p50_ms": None if p50 is None else round(p50 * 1e3, 3),
                "p99_ms": None if p99 is None else round(p99 * 1e3, 3),
            }
        d["lateness"] = lat
        doc, series = report_series(a.report, a.region)
        if series is None:
            d["report"] = {"failed": "no series for region %s in the report" % a.region}
        else:
            hs = series.get("handshake_ms") or {}
            d["report"] = {
                "window_s": doc["window"]["seconds"],
                "probes": series["probes"],
                "successes": series["successes"],
                "success_rate": series["success_rate"],
                "handshake_p50_ms": hs.get("p50"),
                "handshake_p99_ms": hs.get("p99"),
                "top_error": series.get("top_error"),
            }
            series_all = None
            if a.report_all and os.path.exists(a.report_all):
                _, series_all = report_series(a.report_all, a.region)
            d["report"]["saturated"] = saturation_of(series, series_all)
        name = "tlsprobe_agent_in_flight_limit"
        d["in_flight_limit_at_end"] = [v for n, _, v in prom_samples(a.metrics1) if n == name]
        if a.paced:
            p = load_json(a.paced)
            d["limit_paced"] = paced_summary(p)
        rec["data"] = d
        warn = []
        if d["report"].get("successes") is not None and d["report"]["successes"] < d["report"]["probes"]:
            warn.append(
                "%d of %d reported probes failed (top error %s)"
                % (d["report"]["probes"] - d["report"]["successes"], d["report"]["probes"], d["report"]["top_error"])
            )
        if a.rate and d["achieved_per_s"] is not None and d["achieved_per_s"] < 0.9 * a.rate:
            warn.append(
                "achieved %.0f of %d probes/s (%d skipped): the machine could not keep up"
                % (d["achieved_per_s"], a.rate, d["skipped"])
            )
        if warn:
            rec["warning"] = "; ".join(warn)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        rec["failed"] = "agent round: %s" % e
    emit(rec)
    return 0


def paced_summary(p):
    hs = p.get("handshake_ms") or {}
    tot = p.get("total_ms") or {}
    return {
        "probes": p.get("probes"),
        "ok": p.get("ok"),
        "handshake_p50_ms": hs.get("p50"),
        "handshake_p99_ms": hs.get("p99"),
        "total_p50_ms": tot.get("p50"),
        "total_p99_ms": tot.get("p99"),
        "first_error": p.get("first_error"),
    }


def cmd_blackbox(a):
    rec = base(a, "blackbox", "blackbox")
    try:
        s0, s1 = read_sys(a.sys0), read_sys(a.sys1)
        cpu = proc_cpu_s(a.stat1) - proc_cpu_s(a.stat0)
        drv = load_json(a.drive)
        n = drv["completed"]
        if drv["ok"] == 0:
            raise ValueError("no probe succeeded: %s" % drv.get("first_error"))
        d = {
            "wall_s": round(s1["t"] - s0["t"], 3),
            "cpu_s": round(cpu, 3),
            "probes": n,
            "ok": drv["ok"],
            "failed": drv["failed"],
            "skipped": drv["skipped"],
            "achieved_per_s": drv["achieved_per_s"],
            "cpu_ms_per_probe": round(cpu * 1e3 / n, 4),
            "probes_per_cpu_s": round(n / cpu, 1) if cpu > 0 else None,
            "probe_duration_ms": drv.get("probe_duration_ms"),
            "request_ms": drv.get("request_ms"),
            "vmrss_mib": round(proc_status_kib(a.status1, "VmRSS") / 1024, 1),
            "vmhwm_mib": round(proc_status_kib(a.status1, "VmHWM") / 1024, 1),
        }
        if a.paced:
            d["limit_paced"] = paced_summary(load_json(a.paced))
        rec["data"] = d
        if drv["failed"] or drv["skipped"]:
            rec["warning"] = "%d failed, %d not sent (all %d requests in flight: the exporter fell behind)%s" % (
                drv["failed"],
                drv["skipped"],
                drv["max_in_flight"],
                "; first error: %s" % drv["first_error"] if drv.get("first_error") else "",
            )
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        rec["failed"] = "blackbox round: %s" % e
    emit(rec)
    return 0


def strace_calls(path):
    """Total calls of an `strace -c` summary (its "total" line)."""
    with open(path) as f:
        for line in f:
            parts = line.split()
            if parts and parts[-1] == "total":
                # % time, seconds, usecs/call, calls, [errors], total
                nums = [p for p in parts[:-1]]
                return int(nums[3])
    raise ValueError("%s: no total line (did strace attach?)" % path)


def strace_top(path, n=5):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and re.match(r"^\d+\.\d+$", parts[0]) and parts[-1] != "total":
                rows.append((int(parts[3]), parts[-1]))
    rows.sort(reverse=True)
    return rows[:n]


def cmd_strace(a):
    rec = base(a, "strace", a.name)
    try:
        if a.probes0 is not None:  # two runs of different length: startup cancels out
            c0, c1 = strace_calls(a.file0), strace_calls(a.file1)
            probes = a.probes1 - a.probes0
            calls = c1 - c0
        else:
            calls = strace_calls(a.file1)
            probes = a.probes1
        if probes <= 0:
            raise ValueError("no probe in the traced interval")
        top = strace_top(a.file1)
        rec["data"] = {
            "syscalls": calls,
            "probes": probes,
            "syscalls_per_probe": round(calls / probes, 2),
            "top": [{"syscall": s, "calls": c} for c, s in top],
        }
    except (OSError, ValueError, IndexError) as e:
        rec["failed"] = "strace: %s" % e
    emit(rec)
    return 0


def callgrind_total(path):
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise ValueError("%s: no summary line" % path)


def cmd_callgrind(a):
    rec = base(a, "callgrind", a.name)
    try:
        i0, i1 = callgrind_total(a.file0), callgrind_total(a.file1)
        probes = a.probes1 - a.probes0
        if probes <= 0:
            raise ValueError("the two runs did not differ in probes (%s, %s)" % (a.probes0, a.probes1))
        rec["data"] = {
            "instructions": [i0, i1],
            "probes": [a.probes0, a.probes1],
            "instructions_per_probe": int((i1 - i0) / probes),
            "method": a.method,
        }
    except (OSError, ValueError) as e:
        rec["failed"] = "callgrind: %s" % e
    emit(rec)
    return 0


INGEST_KEYS = {
    "results_per_s": ("results_per_s", "results_per_second", "results_s", "rate"),
    "ack_p50_ms": ("ack_p50_ms", "ack_ms.p50", "ack.p50_ms", "ack_ms_p50"),
    "ack_p99_ms": ("ack_p99_ms", "ack_ms.p99", "ack.p99_ms", "ack_ms_p99"),
    "bytes_per_result": ("db.bytes_per_result", "bytes_per_result", "db_bytes_per_result"),
}


def dig(d, dotted):
    for k in dotted.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def cmd_ingest(a):
    rec = base(a, "ingest", a.name)
    rec["pushers"], rec["rows_before"] = a.pushers, a.rows
    try:
        with open(a.json) as f:
            text = f.read().strip()
        doc = json.loads(text.splitlines()[-1]) if text else None
        if not isinstance(doc, dict):
            raise ValueError("bench-ingest printed no JSON object")
        d = {"raw": doc}
        for key, names in INGEST_KEYS.items():
            for n in names:
                v = dig(doc, n)
                if isinstance(v, (int, float)):
                    d[key] = v
                    break
        if "results_per_s" not in d:
            raise ValueError("bench-ingest JSON without a results/s figure (keys: %s)" % ", ".join(sorted(doc)))
        rec["data"] = d
    except (OSError, ValueError, json.JSONDecodeError) as e:
        rec["failed"] = "ingest: %s" % e
    emit(rec)
    return 0


def cmd_report(a):
    rec = base(a, "report", a.name)
    rec["rows"] = a.rows
    try:
        runs = []
        for p in a.time:
            with open(p) as f:
                line = f.read().split()
            runs.append((float(line[0]), int(line[1])))
        doc = load_json(a.output) if a.output else {}
        rec["data"] = {
            "seconds": [r[0] for r in runs],
            "seconds_median": statistics.median(r[0] for r in runs),
            "max_rss_mib": round(max(r[1] for r in runs) / 1024, 1),
            "source": doc.get("source"),
            "total_probes": doc.get("total_probes"),
        }
    except (OSError, ValueError, IndexError, json.JSONDecodeError) as e:
        rec["failed"] = "report: %s" % e
    emit(rec)
    return 0


def cmd_time(a):
    """Runs a command; writes "wall_seconds max_rss_kib" of it to OUT; its exit status."""
    import subprocess
    import time as _time

    t0 = _time.monotonic()
    proc = subprocess.Popen(a.command)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = _time.monotonic() - t0
    with open(a.out, "w") as f:
        f.write("%.3f %d\n" % (wall, ru.ru_maxrss))
    return os.waitstatus_to_exitcode(status)


def cmd_failed(a):
    rec = {"section": a.section, "name": a.name, "failed": a.reason}
    if a.round is not None:
        rec["round"] = a.round
    if a.rate is not None:
        rec["rate"] = a.rate
    for kv in a.extra:
        k, _, v = kv.partition("=")
        rec[k] = int(v) if v.isdigit() else v
    emit(rec)
    return 0


# ---- rendering --------------------------------------------------------------------------


def load_records(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


def med(vals):
    vals = [v for v in vals if isinstance(v, (int, float))]
    return statistics.median(vals) if vals else None


def fmt(v, digits=3):
    if v is None:
        return "-"
    if isinstance(v, float):
        if abs(v) >= 100:
            return "%.0f" % v
        return ("%." + str(digits) + "f") % v
    return str(v)


def spread(vals, digits=3):
    """median, with the range over rounds when there is more than one."""
    vals = [v for v in vals if isinstance(v, (int, float))]
    if not vals:
        return "-"
    m = statistics.median(vals)
    if len(vals) == 1:
        return fmt(float(m), digits)
    return "%s (%s–%s)" % (fmt(float(m), digits), fmt(float(min(vals)), digits), fmt(float(max(vals)), digits))


class Side:
    """Per rate: the rounds' records of the agent, the blackbox exporter and the limit."""

    def __init__(self, recs):
        self.recs = recs
        self.rates = sorted({r["rate"] for r in recs if r.get("section") in ("agent", "blackbox") and "rate" in r})
        self.rounds = sorted({r["round"] for r in recs if "round" in r})

    def get(self, section, name=None, rate=None, rnd=None):
        out = []
        for r in self.recs:
            if r.get("section") != section:
                continue
            if name is not None and r.get("name") != name:
                continue
            if rate is not None and r.get("rate") != rate:
                continue
            if rnd is not None and r.get("round") != rnd:
                continue
            out.append(r)
        return out

    def one(self, section, name=None, rate=None, rnd=None):
        got = [r for r in self.get(section, name, rate, rnd) if "failed" not in r]
        return got[0] if got else None

    def failure(self, section, name=None, rate=None):
        for r in self.get(section, name, rate):
            if "failed" in r:
                return "failed: " + r["failed"]
        return None

    def values(self, section, path, name=None, rate=None):
        out = []
        for r in self.get(section, name, rate):
            if "failed" in r:
                continue
            v = dig(r.get("data", {}), path)
            if isinstance(v, (int, float)):
                out.append(v)
        return out

    def ratio(self, num, den, rate, den_rate=False):
        """Per round num/den, median over rounds: num and den are (section, name, path)."""
        out = []
        for rnd in self.rounds:
            a = self.one(num[0], num[1], rate, rnd)
            b = self.one(den[0], den[1], rate if den_rate else None, rnd)
            if a is None or b is None:
                continue
            x, y = dig(a["data"], num[2]), dig(b["data"], den[2])
            if isinstance(x, (int, float)) and isinstance(y, (int, float)) and y:
                out.append(x / y)
        return out

    def cell(self, section, path, rate, name=None, digits=3):
        vals = self.values(section, path, name, rate)
        if not vals:
            return self.failure(section, name, rate) or "-"
        return spread(vals, digits)

    def ratio_cell(self, num, den, rate, den_rate=False, digits=2):
        vals = self.ratio(num, den, rate, den_rate)
        if not vals:
            return self.failure(num[0], num[1], rate) or self.failure(den[0], den[1]) or "-"
        return spread(vals, digits)


def contention_rows(s):
    rows = []
    for r in s.get("contention"):
        d = r.get("data")
        if not d:
            rows.append([str(r.get("rate")), "failed: %s" % r.get("failed", "?")] + ["-"] * 7)
            continue
        rep, lim = d.get("report", {}), d.get("limit_paced", {})
        sat = rep.get("saturated", {})
        p50, lp50 = rep.get("handshake_p50_ms"), lim.get("handshake_p50_ms")
        m = r.get("machine") or {}
        rows.append([
            str(r.get("rate")),
            "%s / %s" % (fmt(p50), fmt(rep.get("handshake_p99_ms"))),
            "%s / %s" % (fmt(sat.get("handshake_p50_ms_with_saturated")),
                         fmt(sat.get("handshake_p99_ms_with_saturated"))),
            "%s / %s" % (fmt(lp50), fmt(lim.get("handshake_p99_ms"))),
            fmt(p50 / lp50, 2) if p50 and lp50 else "-",
            "%s / %s" % (sat.get("results"), rep.get("probes")),
            " ".join(str(int(v)) for v in d.get("in_flight_limit_at_end", [])) or "-",
            fmt(d.get("achieved_per_s"), 0),
            "%s / %s / %s" % (fmt(m.get("load1"), 2), fmt(m.get("steal_pct"), 1), fmt(m.get("busy_pct"), 0)),
        ])
    return rows


def side_by_side(s):
    rows = []
    lim_seq = ("limit", "sequential", "cpu_ms_per_probe")
    lim_con = ("limit", "concurrent", "cpu_ms_per_probe")
    ag = ("agent", None, "cpu_ms_per_probe")
    bb = ("blackbox", None, "cpu_ms_per_probe")

    def row(label, fn):
        rows.append([label] + [fn(rate) for rate in s.rates])

    row("agent CPU ms per probe", lambda r: s.cell("agent", "cpu_ms_per_probe", r))
    row("**agent ÷ limit (sequential)**, CPU per probe", lambda r: s.ratio_cell(ag, lim_seq, r))
    row("agent ÷ limit (concurrent)", lambda r: s.ratio_cell(ag, lim_con, r))
    row("blackbox_exporter CPU ms per probe", lambda r: s.cell("blackbox", "cpu_ms_per_probe", r))
    row(
        "**blackbox ÷ agent**, CPU per probe (= agent ÷ blackbox probes per CPU-second)",
        lambda r: s.ratio_cell(bb, ag, r, den_rate=True),
    )
    row("probes per CPU-second: agent", lambda r: s.cell("agent", "probes_per_cpu_s", r, digits=0))
    row("probes per CPU-second: blackbox_exporter", lambda r: s.cell("blackbox", "probes_per_cpu_s", r, digits=0))
    row("syscalls per probe: agent", lambda r: s.cell("strace", "syscalls_per_probe", r, name="agent", digits=1))
    row("agent VmRSS / VmHWM MiB", lambda r: pair(s, "agent", "vmrss_mib", "vmhwm_mib", r, 1))
    row("agent series scheduled", lambda r: s.cell("agent", "series", r, digits=0))
    row("scheduler lateness p50 / p99 ms", lambda r: pair(s, "agent", "lateness.p50_ms", "lateness.p99_ms", r))
    row(
        "reported handshake p50 / p99 ms (collector report)",
        lambda r: pair(s, "agent", "report.handshake_p50_ms", "report.handshake_p99_ms", r),
    )
    row(
        "limit paced handshake p50 / p99 ms, same interval",
        lambda r: pair(s, "agent", "limit_paced.handshake_p50_ms", "limit_paced.handshake_p99_ms", r),
    )
    row(
        "reported p50 ÷ limit paced p50",
        lambda r: s.ratio_cell(
            ("agent", None, "report.handshake_p50_ms"), ("agent", None, "limit_paced.handshake_p50_ms"), r, True
        ),
    )
    row(
        "blackbox probe_duration p50 / p99 ms",
        lambda r: pair(s, "blackbox", "probe_duration_ms.p50", "probe_duration_ms.p99", r),
    )
    row(
        "limit paced connect+handshake p50 / p99 ms, same interval",
        lambda r: pair(s, "blackbox", "limit_paced.total_p50_ms", "limit_paced.total_p99_ms", r),
    )
    row("achieved probes/s: agent / blackbox", lambda r: pair(s, "agent", "achieved_per_s", None, r, 0, other=("blackbox", "achieved_per_s")))
    row("agent probes skipped; reported failures", lambda r: skipped_failures(s, r))
    row("collector CPU ms per result (agent rounds)", lambda r: s.cell("agent", "collector_cpu_ms_per_result", r))
    row("load1 / steal % / busy %: agent rounds", lambda r: machine(s, "agent", r))
    row("load1 / steal % / busy %: blackbox rounds", lambda r: machine(s, "blackbox", r))
    return rows


def pair(s, section, p1, p2, rate, digits=3, other=None):
    a = med(s.values(section, p1, None, rate))
    if other:
        b = med(s.values(other[0], other[1], None, rate))
    else:
        b = med(s.values(section, p2, None, rate))
    if a is None and b is None:
        return s.failure(section, None, rate) or "-"
    return "%s / %s" % (fmt(a, digits), fmt(b, digits))


def skipped_failures(s, rate):
    sk = s.values("agent", "skipped", None, rate)
    pr = s.values("agent", "report.probes", None, rate)
    ok = s.values("agent", "report.successes", None, rate)
    if not sk:
        return s.failure("agent", None, rate) or "-"
    return "%d; %d of %d" % (sum(sk), sum(pr) - sum(ok), sum(pr))


def machine(s, section, rate):
    recs = [r for r in s.get(section, None, rate) if "machine" in r]
    if not recs:
        return "-"
    l1 = [r["machine"]["load1"] for r in recs]
    st = [r["machine"]["steal_pct"] for r in recs]
    bz = [r["machine"]["busy_pct"] for r in recs]
    return "%s / %s / %s" % (rng(l1, 2), rng(st, 1), rng(bz, 0))


def rng(vals, digits):
    f = "%." + str(digits) + "f"
    if min(vals) == max(vals):
        return f % vals[0]
    return (f + "–" + f) % (min(vals), max(vals))


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        out.append("| " + " | ".join(str(c).replace("|", "/") for c in r) + " |")
    return "\n".join(out)


def limit_rows(s):
    rows = []
    names = []
    for r in s.recs:
        if r.get("section") == "limit" and r["name"] not in names:
            names.append(r["name"])
    for n in names:
        if n.startswith("paced"):
            continue
        recs = s.get("limit", n)
        good = [r for r in recs if "failed" not in r]
        if not good:
            rows.append([n] + ["failed: " + recs[0]["failed"]] + [""] * 5)
            continue
        d0 = good[0]["data"]
        sc = s.one("strace", "limit-" + n)
        rows.append(
            [
                n,
                "%s, %s, %s" % (d0.get("version"), d0.get("group"), "%d×%d" % (d0["threads"], d0["in_flight"])),
                spread(s.values("limit", "cpu_ms_per_probe", n)),
                spread(s.values("limit", "probes_per_s", n), 0),
                "%s / %s" % (fmt(med(s.values("limit", "handshake_ms.p50", n))), fmt(med(s.values("limit", "handshake_ms.p99", n)))),
                fmt(sc["data"]["syscalls_per_probe"], 1) if sc else (s.failure("strace", "limit-" + n) or "-"),
                machine_any(good),
            ]
        )
    return rows


def machine_any(recs):
    recs = [r for r in recs if "machine" in r]
    if not recs:
        return "-"
    return "%s / %s / %s" % (
        rng([r["machine"]["load1"] for r in recs], 2),
        rng([r["machine"]["steal_pct"] for r in recs], 1),
        rng([r["machine"]["busy_pct"] for r in recs], 0),
    )


def ingest_rows(s):
    rows = []
    for r in s.get("ingest"):
        if "failed" in r:
            rows.append([r["name"], r.get("rows_before", "-"), r.get("pushers", "-"), r["failed"], "", "", "", ""])
            continue
        d = r["data"]
        rows.append(
            [
                r["name"],
                r["rows_before"],
                r["pushers"],
                fmt(d.get("results_per_s"), 0),
                fmt(d.get("ack_p50_ms")),
                fmt(d.get("ack_p99_ms")),
                fmt(d.get("bytes_per_result"), 0),
                machine_any([r]),
            ]
        )
    return rows


def ingest_ratio(s):
    out = []
    for r in s.get("ingest"):
        if r["name"] != "while reports run" or "failed" in r:
            continue
        base_ = [
            x
            for x in s.get("ingest", "alone")
            if "failed" not in x and x["pushers"] == r["pushers"] and x["rows_before"] == r["rows_before"]
        ]
        if base_:
            a, b = r["data"]["results_per_s"], base_[0]["data"]["results_per_s"]
            out.append((r["rows_before"], r["pushers"], a / b if b else None))
    return out


def report_rows(s):
    rows = []
    for r in s.get("report"):
        if "failed" in r:
            rows.append([r.get("rows", "-"), r["name"], r["failed"], "", "", ""])
            continue
        d = r["data"]
        rows.append(
            [
                r["rows"],
                r["name"],
                fmt(d["seconds_median"]),
                fmt(d["max_rss_mib"], 1),
                d.get("source") or "-",
                machine_any([r]),
            ]
        )
    return rows


def callgrind_rows(s):
    rows = []
    for r in s.get("callgrind"):
        if "failed" in r:
            rows.append([r["name"], "failed: " + r["failed"], ""])
        else:
            d = r["data"]
            rows.append([r["name"], "{:,}".format(d["instructions_per_probe"]), d["method"]])
    return rows


def summary(s):
    out = {}
    for rate in s.rates:
        out[str(rate)] = {
            "agent_cpu_ms_per_probe": med(s.values("agent", "cpu_ms_per_probe", None, rate)),
            "agent_over_limit_sequential": med(s.ratio(("agent", None, "cpu_ms_per_probe"), ("limit", "sequential", "cpu_ms_per_probe"), rate)),
            "agent_over_limit_concurrent": med(s.ratio(("agent", None, "cpu_ms_per_probe"), ("limit", "concurrent", "cpu_ms_per_probe"), rate)),
            "blackbox_cpu_ms_per_probe": med(s.values("blackbox", "cpu_ms_per_probe", None, rate)),
            "blackbox_over_agent": med(s.ratio(("blackbox", None, "cpu_ms_per_probe"), ("agent", None, "cpu_ms_per_probe"), rate, True)),
            "agent_probes_per_cpu_s": med(s.values("agent", "probes_per_cpu_s", None, rate)),
            "blackbox_probes_per_cpu_s": med(s.values("blackbox", "probes_per_cpu_s", None, rate)),
            "agent_syscalls_per_probe": med(s.values("strace", "syscalls_per_probe", "agent", rate)),
            "agent_vmrss_mib": med(s.values("agent", "vmrss_mib", None, rate)),
            "agent_vmhwm_mib": med(s.values("agent", "vmhwm_mib", None, rate)),
            "lateness_p50_ms": med(s.values("agent", "lateness.p50_ms", None, rate)),
            "lateness_p99_ms": med(s.values("agent", "lateness.p99_ms", None, rate)),
            "reported_handshake_p50_ms": med(s.values("agent", "report.handshake_p50_ms", None, rate)),
            "reported_handshake_p99_ms": med(s.values("agent", "report.handshake_p99_ms", None, rate)),
            "limit_paced_handshake_p50_ms": med(s.values("agent", "limit_paced.handshake_p50_ms", None, rate)),
            "limit_paced_handshake_p99_ms": med(s.values("agent", "limit_paced.handshake_p99_ms", None, rate)),
        }
    out["limit_sequential_cpu_ms_per_probe"] = med(s.values("limit", "cpu_ms_per_probe", "sequential"))
    out["limit_concurrent_cpu_ms_per_probe"] = med(s.values("limit", "cpu_ms_per_probe", "concurrent"))
    return out


def cmd_render(a):
    recs = load_records(a.records)
    machine_ = load_json(a.machine)
    config = load_json(a.config)
    s = Side(recs)
    md = []
    md.append("# bench/suite.sh, %s (%s mode)" % (machine_.get("date"), config.get("mode")))
    md.append("")
    md.append(
        "Machine: %s CPUs (%s), %s, %s, kernel %s, GnuTLS %s; load at start %s; %s build of %s. "
        % (
            machine_.get("nproc"),
            machine_.get("model"),
            machine_.get("memory"),
            machine_.get("os"),
            machine_.get("kernel"),
            machine_.get("gnutls"),
            " ".join(machine_.get("load_start") or []),
            machine_.get("build_type"),
            machine_.get("commit"),
        )
        + "Each figure is the median over %d interleaved round(s) (range in brackets); load1 / steal %% / busy %% "
        "of the whole machine were logged next to every measurement. How each figure is measured: "
        "docs/benchmarks.md." % config.get("rounds", 1)
    )
    md.append("")
    md.append(
        "Setup: nginx %s on 127.0.0.1 (%s), ECDSA P-256 and RSA-2048 leaf + intermediate, chain and name "
        "verified; agent %d loop(s) × %d in flight, profile `%s`, %ss interval; limit = bench-limit "
        "(priority `%s`); blackbox_exporter %s, `tcp` prober with TLS; paced limit loop at %s/s during every "
        "agent and blackbox round."
        % (
            machine_.get("nginx"),
            config.get("nginx_note"),
            config.get("agent_loops"),
            config.get("agent_in_flight"),
            config.get("agent_profile"),
            config.get("interval_s"),
            config.get("priority"),
            machine_.get("blackbox"),
            config.get("paced_rate"),
        )
    )
    md.append("")
    md.append("## Side by side: the limit, tlsprobe-agent, blackbox_exporter")
    md.append("")
    md.append(md_table(["figure"] + ["%d probes/s" % r for r in s.rates], side_by_side(s)))
    md.append("")
    cr_rows = contention_rows(s)
    if cr_rows:
        md.append("## Under contention: one CPU hog per core beside the agent")
        md.append("")
        md.append(
            md_table(
                ["rate", "reported p50 / p99 ms", "with saturated p50 / p99 ms", "limit paced p50 / p99 ms",
                 "reported p50 ÷ limit p50", "saturated / results", "in-flight limit at end",
                 "achieved probes/s", "load1 / steal % / busy %"],
                cr_rows,
            )
        )
        md.append("")
    md.append("## The limit (bench-limit), flat out")
    md.append("")
    md.append(
        md_table(
            ["loop", "negotiated, threads×in flight", "CPU ms/probe", "probes/s", "handshake p50 / p99 ms", "syscalls/probe", "load1 / steal % / busy %"],
            limit_rows(s),
        )
    )
    md.append("")
    md.append("## Collector ingest (bench-ingest)")
    md.append("")
    ir = ingest_rows(s)
    if ir:
        md.append(
            md_table(
                ["run", "rows stored before", "pushers", "results/s", "ack p50 ms", "ack p99 ms", "bytes/result", "load1 / steal % / busy %"],
                ir,
            )
        )
        for rows, p, ratio in ingest_ratio(s):
            md.append("")
            md.append(
                "Ingest while `report --since 1h` / `24h` run in a loop against the same database (%s rows, %d pushers): "
                "%s of ingest alone (issue #8: not slower by more than 10 %%)." % (rows, p, fmt(ratio, 2))
            )
    else:
        md.append("-")
    md.append("")
    md.append("## report")
    md.append("")
    rr = report_rows(s)
    md.append(md_table(["rows", "query", "seconds (median)", "max RSS MiB", "source", "load1 / steal % / busy %"], rr) if rr else "-")
    md.append("")
    md.append("## Instructions per probe (callgrind)")
    md.append("")
    cr = callgrind_rows(s)
    md.append(md_table(["what", "instructions per probe", "method"], cr) if cr else "-")
    warnings = [r for r in recs if "warning" in r]
    failures = [r for r in recs if "failed" in r]
    if warnings or failures:
        md.append("")
        md.append("## Failures and warnings")
        md.append("")
        for r in failures:
            md.append("- %s %s%s: failed: %s" % (r["section"], r["name"], where(r), r["failed"]))
        for r in warnings:
            md.append("- %s %s%s: %s" % (r["section"], r["name"], where(r), r["warning"]))
    md.append("")
    with open(a.out_md, "w") as f:
        f.write("\n".join(md))
    doc = {
        "schema": "tlsprobe-bench-suite",
        "schema_version": 1,
        "machine": machine_,
        "config": config,
        "summary": summary(s),
        "records": recs,
    }
    with open(a.out_json, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    return 0


def where(r):
    parts = []
    if "round" in r:
        parts.append("round %s" % r["round"])
    if "rate" in r:
        parts.append("%s/s" % r["rate"])
    return " (" + ", ".join(parts) + ")" if parts else ""


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp):
        sp.add_argument("--round", type=int)
        sp.add_argument("--rate", type=int)
        sp.add_argument("--sys0")
        sp.add_argument("--sys1")

    sp = sub.add_parser("free-port")
    sp.add_argument("start", type=int)
    sp.add_argument("used", nargs="*")
    sp.set_defaults(fn=cmd_free_port)

    sp = sub.add_parser("limit-record")
    common(sp)
    sp.add_argument("--name", required=True)
    sp.add_argument("--json", required=True)
    sp.set_defaults(fn=cmd_limit)

    sp = sub.add_parser("agent-record")
    common(sp)
    for k in ("stat0", "stat1", "status1", "metrics0", "metrics1", "report", "region"):
        sp.add_argument("--" + k, required=True)
    for k in ("paced", "cstat0", "cstat1", "db", "report-all"):
        sp.add_argument("--" + k)
    sp.add_argument("--section", default="agent")
    sp.add_argument("--series", type=int, required=True)
    sp.add_argument("--interval", type=float, required=True)
    sp.set_defaults(fn=cmd_agent)

    sp = sub.add_parser("blackbox-record")
    common(sp)
    for k in ("stat0", "stat1", "status1", "drive"):
        sp.add_argument("--" + k, required=True)
    sp.add_argument("--paced")
    sp.set_defaults(fn=cmd_blackbox)

    sp = sub.add_parser("strace-record")
    common(sp)
    sp.add_argument("--name", required=True)
    sp.add_argument("--file0")
    sp.add_argument("--file1", required=True)
    sp.add_argument("--probes0", type=float)
    sp.add_argument("--probes1", type=float, required=True)
    sp.set_defaults(fn=cmd_strace)

    sp = sub.add_parser("callgrind-record")
    common(sp)
    sp.add_argument("--name", required=True)
    sp.add_argument("--file0", required=True)
    sp.add_argument("--file1", required=True)
    sp.add_argument("--probes0", type=float, required=True)
    sp.add_argument("--probes1", type=float, required=True)
    sp.add_argument("--method", required=True)
    sp.set_defaults(fn=cmd_callgrind)

    sp = sub.add_parser("ingest-record")
    common(sp)
    sp.add_argument("--name", required=True)
    sp.add_argument("--json", required=True)
    sp.add_argument("--pushers", type=int, required=True)
    sp.add_argument("--rows", type=int, required=True)
    sp.set_defaults(fn=cmd_ingest)

    sp = sub.add_parser("report-record")
    common(sp)
    sp.add_argument("--name", required=True)
    sp.add_argument("--rows", type=int, required=True)
    sp.add_argument("--output")
    sp.add_argument("time", nargs="+")
    sp.set_defaults(fn=cmd_report)

    sp = sub.add_parser("time")
    sp.add_argument("out")
    sp.add_argument("command", nargs=argparse.REMAINDER)
    sp.set_defaults(fn=cmd_time)

    sp = sub.add_parser("failed")
    sp.add_argument("section")
    sp.add_argument("name")
    sp.add_argument("reason")
    sp.add_argument("--round", type=int)
    sp.add_argument("--rate", type=int)
    sp.add_argument("extra", nargs="*")
    sp.set_defaults(fn=cmd_failed)

    sp = sub.add_parser("render")
    sp.add_argument("records")
    sp.add_argument("machine")
    sp.add_argument("config")
    sp.add_argument("out_md")
    sp.add_argument("out_json")
    sp.set_defaults(fn=cmd_render)

    a = p.parse_args()
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
