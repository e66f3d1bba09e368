#!/usr/bin/env python3
"""Writes RESULTS.md, results.json and results.png for comparison/run.

  report.py --runs runs.jsonl --meta meta.json --targets targets.json --out DIR
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Benchmarks", "lib"))
from bench import aggregate, fmt_us  # noqa: E402

NAMES = {"edge": "Edge", "edge-base": "Edge (baseline binary)", "nginx": "nginx", "haproxy": "HAProxy", "h2o": "h2o", "caddy": "Caddy"}
SCEN = {"keepalive": "HTTP/1.1 keep-alive (GET /, 64 B, 64 conns)",
        "close": "HTTP/1.1 new connection per request (Connection: close, 64 conns)"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--targets")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    runs = [json.loads(l) for l in open(a.runs) if l.strip()]
    meta = json.load(open(a.meta))
    targets = json.load(open(a.targets)) if a.targets and os.path.exists(a.targets) else {}
    agg = aggregate(runs)
    proxies = [p for p in meta["proxies"]]
    scenarios = [s for s in ("keepalive", "close") if any(k[0] == s for k in agg)]

    md = []
    w = md.append
    quick = meta["mode"] == "quick"
    w("# Edge vs nginx, HAProxy, h2o, Caddy" + (" (QUICK RUN: smoke numbers, not results)" if quick else ""))
    w("")
    w(f"- Date: {meta['date']}")
    w(f"- Host: {meta['host']['cpu']}, {meta['host']['cpus']} CPUs, Linux {meta['host']['kernel']}")
    w(f"- Layout: {meta['layout']}; machine {meta['idle_check_busy_pct']}% busy before the run"
      + (" (WARNING: >10%, numbers are noisy)" if meta["idle_check_busy_pct"] > 10 else ""))
    w("- Versions: " + "; ".join(f"{NAMES.get(k, k)} `{v}`" for k, v in meta["versions"].items()
                                 if k in proxies or k in ("edge", "wrk")))
    if meta.get("skipped"):
        w("- Skipped: " + "; ".join(meta["skipped"]))
    w("")
    w("## Method")
    w("")
    w(f"`comparison/run{' --quick' if quick else ''}`: every proxy runs with one worker/thread (Caddy: "
      "GOMAXPROCS=1) pinned to one CPU, in front of the same nginx upstream (one worker, 64-byte `return 200`), "
      "with access logs off and upstream keep-alive on (configs in `comparison/configs/`). wrk (1 thread, "
      f"64 connections, {meta['duration']} per run, after a {meta['warmup']} warm-up per proxy) and the upstream "
      "share the other CPU. Each repetition runs every proxy once per scenario, in an order rotated per "
      f"repetition (interleaved, so drift hits all alike); {meta['reps']} repetition(s), medians shown. "
      "Latency percentiles come from wrk (p99.9 via `Benchmarks/wrk/report.lua`). CPU% is the proxy's "
      "utime+stime over the run (100% = the whole pinned CPU): below ~95% the proxy is not the bottleneck "
      "(the upstream + wrk CPU is), which compresses the ratios. Edge/peer = Edge req/s ÷ peer req/s. "
      "Edge adds X-Forwarded-For/-Proto/-Host, Via and X-Request-Id; the nginx and HAProxy configs add "
      "X-Forwarded-For; h2o and Caddy add their defaults.")
    w("")
    for s in scenarios:
        edge = agg.get((s, "edge"))
        w(f"## {SCEN.get(s, s)}")
        w("")
        w("| proxy | req/s | p50 | p99 | p99.9 | errors | proxy CPU% | CPU µs/req | Edge/peer |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for p in proxies:
            r = agg.get((s, p))
            if not r:
                continue
            ratio = "—" if p == "edge" or not edge or not r["rps"] else f"{edge['rps'] / r['rps']:.2f}x"
            cpu = "-" if r["cpu_pct"] is None else f"{r['cpu_pct']:.0f}"
            # CPU per request: the proxy's utime+stime share of one CPU over its request rate.
            per = "-" if r["cpu_pct"] is None or not r["rps"] else f"{r['cpu_pct'] / 100 / r['rps'] * 1e6:.1f}"
            w(f"| {NAMES.get(p, p)} | {r['rps']:.0f} | {fmt_us(r['p50_us'])} | {fmt_us(r['p99_us'])} | "
              f"{fmt_us(r['p999_us'])} | {r['errors']} | {cpu} | {per} | {ratio} |")
        w("")
        w("Runs (req/s): " + "; ".join(f"{NAMES.get(p, p)} {agg[(s, p)]['all_rps']}" for p in proxies if (s, p) in agg))
        w("")

    # Targets from issue 5.
    w("## Targets")
    w("")
    w("| target | measured | status |")
    w("|---|---|---|")
    ka = {p: agg.get(("keepalive", p)) for p in proxies}
    peers = {p: r for p, r in ka.items() if p in ("nginx", "haproxy", "h2o") and r and r["rps"]}
    e = ka.get("edge")
    if e and peers:
        best = max(peers, key=lambda p: peers[p]["rps"])
        ratio = e["rps"] / peers[best]["rps"]
        w(f"| HTTP/1.1 keep-alive req/s >= 1.5x best of nginx/HAProxy/h2o | {ratio:.2f}x "
          f"({e['rps']:.0f} vs {NAMES[best]} {peers[best]['rps']:.0f}) | {'PASS' if ratio >= 1.5 else 'MISS'} |")
        p99 = e["p99_us"]
        w(f"| p99 <= 1.5 ms at that load | {fmt_us(p99)} | {'PASS' if p99 is not None and p99 <= 1500 else 'MISS'} |")
    else:
        w("| HTTP/1.1 keep-alive req/s >= 1.5x best of nginx/HAProxy/h2o | no peer measured | N/A |")
    if targets.get("alloc_requests"):
        per = targets["alloc_count"] / targets["alloc_requests"]
        w(f"| 0 heap allocations per proxied request | {per:.3f} per request ({targets['alloc_count']} over "
          f"{targets['alloc_requests']} requests, LD_PRELOAD counter) | {'PASS' if per < 0.01 else 'MISS'} |")
    else:
        w("| 0 heap allocations per proxied request | not measured | N/A |")
    if targets.get("idle_conns"):
        n = targets["idle_conns"]
        per = (targets["idle_rss_after_kb"] - targets["idle_rss_before_kb"]) * 1024 / n
        w(f"| RSS per idle client connection <= 2 KiB ({n} idle keep-alive connections"
          f"{'' if n >= 10000 else '; target is 10,000'}) | {per:.0f} bytes "
          f"({targets['idle_rss_before_kb'] / 1024:.1f} → {targets['idle_rss_after_kb'] / 1024:.1f} MiB) | "
          f"{'PASS' if per <= 2048 else 'MISS'} |")
    else:
        w("| RSS per idle client connection <= 2 KiB | not measured | N/A |")
    w("| h2c req/s >= 1.3x best peer | measured by comparison/h2c (h2load, same-run peers) | see there |")
    w("| TLS HTTP/1.1 req/s >= 1.5x best peer | measured by comparison/tls (same-run peers) | see there |")
    w("| TCP relay Gbps >= 1.5x HAProxy | see TCP-RESULTS.md (Benchmarks/tcp-relay): 1.27x HAProxy, 0.95x HAProxy+splice; load-bound | MISS |")
    w("")
    w("![req/s and p99 per proxy](results.png)")
    w("")
    w(f"Reproduce: `comparison/run{' --quick' if quick else ''}` (installs what it needs; "
      f"{'< 2 min' if quick else '< 15 min on 2 cores'}). Raw data: `results.json`.")

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "RESULTS.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({**meta, "targets": targets, "runs": runs,
                   "summary": [dict(scenario=k[0], target=k[1], **v) for k, v in agg.items()]}, f, indent=1)
        f.write("\n")
    chart(agg, proxies, scenarios, os.path.join(a.out, "results.png"), meta)
    print("\n".join(md))
    print(f"\nwrote {a.out}/RESULTS.md, {a.out}/results.json, {a.out}/results.png")


def chart(agg, proxies, scenarios, path, meta):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not available: no chart", file=sys.stderr)
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / max(1, len(proxies))
    colors = {"edge": "#d62728", "edge-base": "#ff9896", "nginx": "#2ca02c", "haproxy": "#1f77b4", "h2o": "#9467bd", "caddy": "#8c564b"}
    for ax, key, title in ((axes[0], "rps", "requests/s (higher is better)"),
                           (axes[1], "p99_us", "p99 latency, ms (lower is better)")):
        for i, p in enumerate(proxies):
            vals = []
            for s in scenarios:
                r = agg.get((s, p))
                v = r[key] if r and r[key] is not None else 0
                vals.append(v / 1000 if key == "p99_us" else v)
            xs = [j + (i - (len(proxies) - 1) / 2) * width for j in range(len(scenarios))]
            ax.bar(xs, vals, width, label=NAMES.get(p, p), color=colors.get(p))
        ax.set_xticks(range(len(scenarios)))
        ax.set_xticklabels(["keep-alive" if s == "keepalive" else "new conn/request" for s in scenarios])
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"HTTP/1.1 proxy, 1 worker each, {meta['host']['cpu']} ({meta['date'][:10]})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
