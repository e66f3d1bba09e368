#!/usr/bin/env python3
"""Paced HTTP/1.1 load for the shared rate-limit tests.

rateload.py --ports P1,P2 --rate 125 --conns 4 --duration 12 --path /limited/

Each port gets `rate` requests per second spread over `conns` keep-alive
connections (one thread each, reconnecting on close). Prints one JSON line:
{"start": t0, "end": t1, "windows": {"<unix second>": {"<status>": n}}, "errors": n,
 "causes": {"<x-edge-error>": n}} where a request is filed under the wall-clock
second in which its response arrived.
"""
import argparse, http.client, json, threading, time, collections

def worker(port, path, interval, stop_at, out, lock):
    conn = None
    next_t = time.time()
    local = collections.Counter()
    causes = collections.Counter()
    errors = 0
    while True:
        now = time.time()
        if now >= stop_at:
            break
        if now < next_t:
            time.sleep(next_t - now)
        next_t += interval
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            sec = int(time.time())
            local[(sec, r.status)] += 1
            cause = r.getheader("x-edge-error")
            if cause:
                causes[cause] += 1
            if r.getheader("connection", "").lower() == "close":
                conn.close(); conn = None
        except Exception:
            errors += 1
            try:
                if conn: conn.close()
            except Exception:
                pass
            conn = None
    with lock:
        for (sec, st), n in local.items():
            out["windows"].setdefault(str(sec), collections.Counter())[str(st)] += n
        out["errors"] += errors
        out["causes"].update(causes)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports", required=True)
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--path", default="/")
    a = ap.parse_args()
    ports = [int(p) for p in a.ports.split(",")]
    out = {"windows": {}, "errors": 0, "causes": collections.Counter()}
    lock = threading.Lock()
    start = time.time()
    stop_at = start + a.duration
    threads = []
    for p in ports:
        for _ in range(a.conns):
            t = threading.Thread(target=worker, args=(p, a.path, a.conns / a.rate, stop_at, out, lock), daemon=True)
            t.start(); threads.append(t)
    for t in threads:
        t.join(a.duration + 15)
    out["start"] = start
    out["end"] = time.time()
    out["windows"] = {k: dict(v) for k, v in out["windows"].items()}
    out["causes"] = dict(out["causes"])
    print(json.dumps(out), flush=True)

if __name__ == "__main__":
    main()
