#!/usr/bin/env python3
"""Parsing and reporting for Benchmarks/run and comparison/run (stdlib only).

  bench.py record --target T --scenario S --rep N --wrk FILE [--clk-tck 100]
      -> one JSON line from a wrk output file (its EDGE_RESULT line from
         Benchmarks/wrk/report.lua, else the text) and FILE.cpu
         ("<ticks delta> <wall ns> <rss KiB>" of the proxy process tree).
  bench.py table --runs runs.jsonl [--meta meta.json] [--json OUT]
      -> median table per (scenario, target) on stdout; full JSON to OUT.
"""
import argparse
import json
import re
import statistics
import sys

UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def to_us(text):
    m = re.match(r"([\d.]+)(us|ms|s|m|h)$", text)
    return float(m.group(1)) * UNITS_US[m.group(2)] if m else None


def parse_wrk(text):
    """Stats from wrk output: EDGE_RESULT JSON when present, else the text."""
    r = {}
    m = re.search(r"^EDGE_RESULT (\{.*\})$", text, re.M)
    if m:
        j = json.loads(m.group(1))
        secs = max(j["duration_us"], 1) / 1e6
        e = j["errors"]
        r.update(
            requests=j["requests"], seconds=secs, rps=j["requests"] / secs,
            mbps=j["bytes"] / secs / 1e6 * 8,
            p50_us=j["p50_us"], p90_us=j["p90_us"], p99_us=j["p99_us"], p999_us=j["p999_us"],
            max_us=j["max_us"], mean_us=j["mean_us"],
            err_connect=e["connect"], err_read=e["read"], err_write=e["write"],
            err_timeout=e["timeout"], non2xx=e["status"],
        )
    else:
        rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
        r["rps"] = float(rps.group(1)) if rps else 0.0
        for pct, key in (("50", "p50_us"), ("90", "p90_us"), ("99", "p99_us")):
            mm = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
            r[key] = to_us(mm.group(1)) if mm else None
        r["p999_us"] = None
        sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
        c, rd, w, t = map(int, sock.groups()) if sock else (0, 0, 0, 0)
        r.update(err_connect=c, err_read=rd, err_write=w, err_timeout=t)
        n2 = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
        r["non2xx"] = int(n2.group(1)) if n2 else 0
    r["errors"] = r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"] + r["non2xx"]
    if r.get("rps", 0) == 0:
        tail = [l for l in text.strip().splitlines() if l.strip()][-3:]
        r["note"] = " | ".join(tail)[:300]
    return r


def cmd_record(a):
    text = open(a.wrk, errors="replace").read()
    rec = {"target": a.target, "scenario": a.scenario, "rep": a.rep}
    rec.update(parse_wrk(text))
    try:
        ticks, wall_ns, rss = open(a.wrk + ".cpu").read().split()
        rec["cpu_pct"] = 100.0 * int(ticks) / a.clk_tck / max(int(wall_ns) / 1e9, 1e-9)
        rec["rss_kb"] = int(rss)
    except (OSError, ValueError):
        rec["cpu_pct"], rec["rss_kb"] = None, None
    print(json.dumps(rec))


def median(values):
    v = [x for x in values if x is not None]
    return statistics.median(v) if v else None


def aggregate(runs):
    """{(scenario, target): summary} with medians over repetitions."""
    groups = {}
    for r in runs:
        groups.setdefault((r["scenario"], r["target"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        s = {k: median([r.get(k) for r in rs])
             for k in ("rps", "mbps", "p50_us", "p90_us", "p99_us", "p999_us", "cpu_pct", "rss_kb")}
        s["errors"] = sum(r.get("errors", 0) for r in rs)
        s["all_rps"] = [round(r.get("rps", 0)) for r in rs]
        s["reps"] = len(rs)
        s["notes"] = [r["note"] for r in rs if r.get("note")]
        out[key] = s
    return out


def fmt_us(v):
    if v is None:
        return "-"
    return f"{v / 1000:.2f}ms" if v >= 1000 else f"{v:.0f}us"


def fmt(v, spec, dash="-"):
    return dash if v is None else format(v, spec)


def cmd_table(a):
    runs = [json.loads(l) for l in open(a.runs) if l.strip()]
    meta = json.load(open(a.meta)) if a.meta else {}
    agg = aggregate(runs)
    order = []
    for r in runs:
        k = (r["scenario"], r["target"])
        if k not in order:
            order.append(k)
    hdr = f"{'scenario':<12} {'target':<8} {'req/s':>10} {'MB/s':>8} {'p50':>8} {'p99':>8} {'p99.9':>8} {'errors':>7} {'CPU%':>6} {'RSS MiB':>8}  runs (req/s)"
    print(hdr)
    print("-" * len(hdr))
    for k in order:
        s = agg[k]
        mbs = None if s["mbps"] is None else s["mbps"] / 8
        rss = None if s["rss_kb"] is None else s["rss_kb"] / 1024
        print(f"{k[0]:<12} {k[1]:<8} {fmt(s['rps'], '10.0f'):>10} {fmt(mbs, '8.1f'):>8} {fmt_us(s['p50_us']):>8} "
              f"{fmt_us(s['p99_us']):>8} {fmt_us(s['p999_us']):>8} {s['errors']:>7} {fmt(s['cpu_pct'], '6.0f'):>6} "
              f"{fmt(rss, '8.1f'):>8}  {s['all_rps']}")
        for n in s["notes"][:1]:
            print(f"    note: {n}")
    if a.json:
        doc = dict(meta)
        doc["runs"] = runs
        doc["summary"] = [dict(scenario=k[0], target=k[1], **agg[k]) for k in order]
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--target", required=True)
    r.add_argument("--scenario", required=True)
    r.add_argument("--rep", type=int, required=True)
    r.add_argument("--wrk", required=True)
    r.add_argument("--clk-tck", type=int, default=100)
    r.set_defaults(fn=cmd_record)
    t = sub.add_parser("table")
    t.add_argument("--runs", required=True)
    t.add_argument("--meta")
    t.add_argument("--json")
    t.set_defaults(fn=cmd_table)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
