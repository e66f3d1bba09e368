#!/usr/bin/env python3
"""Mixed, rate-limited load for Benchmarks/soak (Python 3 stdlib only).

    soak_load.py --port P --tcp-port T --duration S [--rate 150] [--threads 8]
                 --status FILE --errors FILE --summary FILE [--seed 1]

THREADS workers share RATE requests/s (each paces itself at RATE/THREADS; a
worker that falls behind does not burst to catch up). Each request is one of
(weights in parentheses), every answer checked byte for byte:

    get_echo      (40) GET /api/echo, keep-alive; JSON path == /echo
    get_direct    (12) GET /direct; body "soak-A\\n" or "soak-B\\n" (config variant)
    get_chunked   (10) GET /api/bytes?n=65536&chunked=1; the upstream pattern
    get_cl         (5) GET /api/bytes?n=1048576; sha256 of the pattern
    post_cl       (10) POST /api/upload, 32 KiB Content-Length body; length + sha256
    post_chunked   (5) POST /api/upload, 100,000 bytes chunked; length + sha256
    close         (10) GET /api/echo with Connection: close on a new connection
    tcp            (5) raw HTTP/1.1 request through the TCP listener (splice relay)
    head           (3) HEAD /api/bytes?n=5000; Content-Length 5000, no body

Writes: STATUS (JSON, rewritten every second: cumulative totals), ERRORS
(JSON lines {"t": epoch, "kind", "error"} as they happen) and, at the end,
SUMMARY (per-kind ok/err counts and latency p50/p99/max in ms).
"""

import argparse
import hashlib
import http.client
import json
import os
import random
import socket
import threading
import time

PERIOD = 251
_BASE = bytes(i % PERIOD for i in range(PERIOD)) * (1048576 // PERIOD + 2)


def pattern(n, offset=0):
    start = offset % PERIOD
    return _BASE[start:start + n]


PAT_64K = pattern(65536)
SHA_1M = hashlib.sha256(pattern(1048576)).hexdigest()
UP_32K = pattern(32768)
SHA_32K = hashlib.sha256(UP_32K).hexdigest()
SHA_100K = hashlib.sha256(pattern(100000)).hexdigest()

KINDS = [("get_echo", 40), ("get_direct", 12), ("get_chunked", 10), ("get_cl", 5), ("post_cl", 10),
         ("post_chunked", 5), ("close", 10), ("tcp", 5), ("head", 3)]


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


class Stats:
    def __init__(self, errors_path):
        self.lock = threading.Lock()
        self.ok = {k: 0 for k, _ in KINDS}
        self.err = {k: 0 for k, _ in KINDS}
        self.lat = {k: [] for k, _ in KINDS}
        self.errors_file = open(errors_path, "a", buffering=1)

    def record(self, kind, seconds, error=None):
        with self.lock:
            if error is None:
                self.ok[kind] += 1
                self.lat[kind].append(seconds)
            else:
                self.err[kind] += 1
                self.errors_file.write(json.dumps({"t": round(time.time(), 3), "kind": kind,
                                                   "error": error[:300]}) + "\n")

    def totals(self):
        with self.lock:
            ok = sum(self.ok.values())
            err = sum(self.err.values())
            return {"t": round(time.time(), 3), "requests": ok + err, "errors": err,
                    "by_kind": {k: [self.ok[k], self.err[k]] for k, _ in KINDS}}


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


class Worker(threading.Thread):
    def __init__(self, idx, args, stats, deadline):
        super().__init__(daemon=True)
        self.args = args
        self.stats = stats
        self.deadline = deadline
        self.rng = random.Random(args.seed * 1000 + idx)
        self.conn = None
        self.period = args.threads / float(args.rate)
        self.kinds = [k for k, _ in KINDS]
        self.weights = [w for _, w in KINDS]

    def connection(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.args.port, timeout=self.args.timeout)
        return self.conn

    def drop(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
        self.conn = None

    def request(self, method, path, body=None, headers=None, chunked=False):
        c = self.connection()
        c.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        r = c.getresponse()
        data = r.read()
        if r.will_close:
            self.drop()
        return r, data

    def run(self):
        next_t = time.time() + self.rng.random() * self.period
        while True:
            now = time.time()
            if now >= self.deadline:
                break
            if next_t > now:
                time.sleep(min(next_t - now, self.deadline - now))
                continue
            next_t = max(next_t + self.period, now - 1.0)
            kind = self.rng.choices(self.kinds, self.weights)[0]
            t0 = time.time()
            try:
                getattr(self, "do_" + kind)()
                self.stats.record(kind, time.time() - t0)
            except (CheckFailed, OSError, http.client.HTTPException, ValueError) as e:
                self.drop()
                self.stats.record(kind, time.time() - t0, "%s: %s" % (type(e).__name__, e))
        self.drop()

    # ---- request kinds

    def do_get_echo(self):
        r, data = self.request("GET", "/api/echo?k=%d" % self.rng.randrange(1 << 30))
        expect(r.status == 200, "status %d: %r" % (r.status, data[:120]))
        expect(json.loads(data)["path"] == "/echo", "echo path")

    def do_get_direct(self):
        r, data = self.request("GET", "/direct")
        expect(r.status == 200, "status %d: %r" % (r.status, data[:120]))
        expect(data in (b"soak-A\n", b"soak-B\n"), "direct body %r" % data[:60])

    def do_get_chunked(self):
        r, data = self.request("GET", "/api/bytes?n=65536&chunked=1")
        expect(r.status == 200, "status %d: %r" % (r.status, data[:120]))
        expect((r.getheader("transfer-encoding") or "").lower() == "chunked", "not chunked")
        expect(data == PAT_64K, "chunked body: %d bytes, pattern mismatch" % len(data))

    def do_get_cl(self):
        r, data = self.request("GET", "/api/bytes?n=1048576")
        expect(r.status == 200, "status %d: %r" % (r.status, data[:120]))
        expect(len(data) == 1048576 and hashlib.sha256(data).hexdigest() == SHA_1M,
               "1 MiB body: %d bytes, sha mismatch" % len(data))

    def do_post_cl(self):
        r, data = self.request("POST", "/api/upload", body=UP_32K,
                               headers={"Content-Type": "application/octet-stream"})
        expect(r.status == 200, "status %d: %r" % (r.status, data[:120]))
        j = json.loads(data)
        expect(j["length"] == 32768 and j["sha256"] == SHA_32K, "upload echo %r" % j)

    def do_post_chunked(self):
        pieces = [pattern(25000, off) for off in range(0, 100000, 25000)]
        r, data = self.request("POST", "/api/upload", body=iter(pieces), chunked=True,
                               headers={"Content-Type": "application/octet-stream"})
        expect(r.status == 200, "status %d: %r" % (r.status, data[:120]))
        j = json.loads(data)
        expect(j["length"] == 100000 and j["sha256"] == SHA_100K, "chunked upload echo %r" % j)

    def do_close(self):
        c = http.client.HTTPConnection("127.0.0.1", self.args.port, timeout=self.args.timeout)
        try:
            c.request("GET", "/api/echo?close=1", headers={"Connection": "close"})
            r = c.getresponse()
            data = r.read()
            expect(r.status == 200, "status %d: %r" % (r.status, data[:120]))
            expect(json.loads(data)["path"] == "/echo", "echo path")
        finally:
            c.close()

    def do_tcp(self):
        s = socket.create_connection(("127.0.0.1", self.args.tcp_port), timeout=self.args.timeout)
        try:
            s.sendall(b"GET /echo?tcp=1 HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
            out = bytearray()
            while True:
                d = s.recv(65536)
                if not d:
                    break
                out += d
        finally:
            s.close()
        expect(out.startswith(b"HTTP/1.1 200 "), "tcp relay answer %r" % bytes(out[:80]))
        expect(b'"path": "/echo"' in out, "tcp relay body")

    def do_head(self):
        r, data = self.request("HEAD", "/api/bytes?n=5000")
        expect(r.status == 200, "status %d" % r.status)
        expect(r.getheader("content-length") == "5000" and data == b"", "HEAD framing")


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tcp-port", type=int, required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--rate", type=float, default=150.0)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--status", required=True)
    ap.add_argument("--errors", required=True)
    ap.add_argument("--summary", required=True)
    args = ap.parse_args()

    stats = Stats(args.errors)
    start = time.time()
    deadline = start + args.duration
    workers = [Worker(i, args, stats, deadline) for i in range(args.threads)]
    for w in workers:
        w.start()
    while any(w.is_alive() for w in workers):
        write_json(args.status, stats.totals())
        time.sleep(1.0)
    end = time.time()
    for w in workers:
        w.join(args.timeout + 5)
    tot = stats.totals()
    write_json(args.status, tot)
    kinds = {}
    for k, _ in KINDS:
        lat = sorted(stats.lat[k])
        kinds[k] = {"ok": stats.ok[k], "errors": stats.err[k],
                    "p50_ms": None if not lat else round(pct(lat, 50) * 1000, 3),
                    "p99_ms": None if not lat else round(pct(lat, 99) * 1000, 3),
                    "max_ms": None if not lat else round(lat[-1] * 1000, 3)}
    write_json(args.summary, {"start": start, "end": end, "seconds": round(end - start, 3),
                              "target_rate": args.rate, "requests": tot["requests"],
                              "errors": tot["errors"], "rate": round(tot["requests"] / max(0.001, end - start), 1),
                              "kinds": kinds})


if __name__ == "__main__":
    main()
