#!/usr/bin/env python3
"""Evaluates a Benchmarks/soak run (Python 3 stdlib only).

    soak_eval.py --out DIR --duration S [--warmup-frac 0.2] [--fd-slack 8] [--rss-pct 5]
                 [--restart-before 1] [--restart-after 3] [--min-rate-frac 0.5]

Reads DIR/samples.csv, DIR/events.csv, DIR/load-errors.jsonl,
DIR/load-summary.json and DIR/final.json (written by Benchmarks/soak); prints a
summary table, writes DIR/summary.txt and DIR/summary.json, and exits 1 when a
check fails:

  fds        median FD count of the last 3 samples <= reference + slack, where the
             reference is the median of the samples in the second half of the
             warm-up (first warmup-frac of the run)
  rss        max RSS after the warm-up <= (1 + rss-pct/100) x max RSS during it
  errors     no load errors outside the windows around upstream restarts
             ([stop - restart-before, started + restart-after] seconds)
  probes     every latency probe request answered 200
  reloads    every reload accepted
  rate       achieved load >= min-rate-frac x target (the load really ran)
  alive      edge still running at the end
"""

import argparse
import csv
import json
import os
import statistics
import sys


def load_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--warmup-frac", type=float, default=0.2)
    ap.add_argument("--fd-slack", type=int, default=8)
    ap.add_argument("--rss-pct", type=float, default=5.0)
    ap.add_argument("--restart-before", type=float, default=1.0)
    ap.add_argument("--restart-after", type=float, default=3.0)
    ap.add_argument("--min-rate-frac", type=float, default=0.5)
    a = ap.parse_args()
    d = a.out

    samples = load_csv(os.path.join(d, "samples.csv"))
    events = load_csv(os.path.join(d, "events.csv"))
    errors = []
    ep = os.path.join(d, "load-errors.jsonl")
    if os.path.exists(ep):
        with open(ep) as f:
            errors = [json.loads(l) for l in f if l.strip()]
    summary_path = os.path.join(d, "load-summary.json")
    load = json.load(open(summary_path)) if os.path.exists(summary_path) else {}
    final = json.load(open(os.path.join(d, "final.json")))

    warmup = a.duration * a.warmup_frac
    for s in samples:
        s["t"] = float(s["t_s"])
    warm = [s for s in samples if s["t"] <= warmup]
    after = [s for s in samples if s["t"] > warmup]
    checks = []  # (name, ok, detail)

    # FDs.
    ref_pool = [s for s in warm if s["t"] >= warmup / 2] or warm[-1:]
    if ref_pool and len(after) >= 1:
        fd_ref = statistics.median(int(s["fds"]) for s in ref_pool)
        tail = samples[-3:]
        fd_end = statistics.median(int(s["fds"]) for s in tail)
        fd_max = max(int(s["fds"]) for s in after)
        checks.append(("fds", fd_end <= fd_ref + a.fd_slack,
                       "end %g vs warm-up %g (slack +%d; max after warm-up %d)" % (fd_end, fd_ref, a.fd_slack, fd_max)))
    else:
        checks.append(("fds", False, "not enough samples (%d in warm-up, %d after)" % (len(warm), len(after))))

    # RSS.
    if warm and after:
        rss_ref = max(int(s["rss_kib"]) for s in warm)
        rss_max = max(int(s["rss_kib"]) for s in after)
        rss_end = int(samples[-1]["rss_kib"])
        limit = rss_ref * (1 + a.rss_pct / 100.0)
        checks.append(("rss", rss_max <= limit,
                       "max after warm-up %d KiB vs warm-up max %d KiB (+%.1f%%, limit +%g%%); end %d KiB"
                       % (rss_max, rss_ref, 100.0 * (rss_max - rss_ref) / max(1, rss_ref), a.rss_pct, rss_end)))
    else:
        checks.append(("rss", False, "not enough samples"))

    # Errors vs upstream restart windows.
    windows = []
    stop_t = None
    for e in events:
        if e["event"] == "restart_stop":
            stop_t = float(e["epoch"])
        elif e["event"] == "restart_started" and stop_t is not None:
            windows.append((stop_t - a.restart_before, float(e["epoch"]) + a.restart_after, e["detail"]))
            stop_t = None
    if stop_t is not None:
        windows.append((stop_t - a.restart_before, float("inf"), "unfinished"))
    expected, unexpected = [], []
    for err in errors:
        (expected if any(lo <= err["t"] <= hi for lo, hi, _ in windows) else unexpected).append(err)
    by_kind = {}
    for err in errors:
        by_kind.setdefault(err["kind"], 0)
        by_kind[err["kind"]] += 1
    checks.append(("errors", not unexpected,
                   "%d load errors: %d around %d upstream restarts (expected), %d elsewhere"
                   % (len(errors), len(expected), len(windows), len(unexpected))))

    probe_errors = sum(int(s["probe_errors"]) for s in samples)
    checks.append(("probes", probe_errors == 0, "%d failed probe requests over %d samples" % (probe_errors, len(samples))))

    reloads = [e for e in events if e["event"] in ("reload_ok", "reload_failed")]
    failed = [e for e in reloads if e["event"] == "reload_failed"]
    checks.append(("reloads", not failed and len(reloads) > 0,
                   "%d reloads, %d rejected%s" % (len(reloads), len(failed),
                                                   "" if not failed else ": " + failed[0]["detail"][:200])))

    rate = load.get("rate", 0)
    target = load.get("target_rate", 0)
    checks.append(("rate", bool(load) and rate >= a.min_rate_frac * target,
                   "%s req/s achieved of %s target (%s requests)" % (rate, target, load.get("requests", 0))))

    checks.append(("alive", bool(final.get("edge_alive")),
                   "edge %s at the end; snapshots live %s; generation %s"
                   % ("running" if final.get("edge_alive") else "NOT running",
                      final.get("snapshots_live", "?"), final.get("generation", "?"))))

    # Report.
    lines = []
    lines.append("Soak: %.0f s, warm-up %.0f s, %d samples, %d reloads, %d upstream restarts"
                 % (a.duration, warmup, len(samples), len(reloads), len(windows)))
    lines.append("")
    lines.append("%7s %9s %5s %6s %9s %9s %8s %8s" % ("t(s)", "RSS KiB", "FDs", "CPU%", "p50 ms", "p99 ms", "req/s", "errors"))
    for s in samples:
        lines.append("%7.0f %9s %5s %6s %9s %9s %8s %8s" % (s["t"], s["rss_kib"], s["fds"], s["edge_cpu_pct"],
                                                             s["probe_p50_ms"], s["probe_p99_ms"], s["rps"], s["errors"]))
    lines.append("")
    if load.get("kinds"):
        lines.append("%-13s %8s %7s %9s %9s %9s" % ("load kind", "ok", "errors", "p50 ms", "p99 ms", "max ms"))
        for k, v in load["kinds"].items():
            lines.append("%-13s %8d %7d %9s %9s %9s" % (k, v["ok"], v["errors"], v["p50_ms"], v["p99_ms"], v["max_ms"]))
        lines.append("")
    if errors:
        lines.append("errors by kind: " + ", ".join("%s=%d" % kv for kv in sorted(by_kind.items())))
        for err in unexpected[:10]:
            lines.append("  UNEXPECTED t=%.3f %s: %s" % (err["t"], err["kind"], err["error"]))
        lines.append("")
    ok_all = all(ok for _, ok, _ in checks)
    for name, ok, detail in checks:
        lines.append("%-8s %s  %s" % (name, "PASS" if ok else "FAIL", detail))
    lines.append("")
    lines.append("soak: %s" % ("PASS" if ok_all else "FAIL"))
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(d, "summary.txt"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(d, "summary.json"), "w") as f:
        json.dump({"pass": ok_all, "checks": [{"name": n, "pass": ok, "detail": dt} for n, ok, dt in checks],
                   "errors_total": len(errors), "errors_expected": len(expected),
                   "errors_unexpected": len(unexpected), "errors_by_kind": by_kind,
                   "restart_windows": len(windows), "load": load}, f, indent=1)
    sys.exit(0 if ok_all else 1)


if __name__ == "__main__":
    main()
