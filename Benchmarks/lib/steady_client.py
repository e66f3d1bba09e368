"""Established-connection latency for Benchmarks/shedding: 10 keep-alive
connections opened first, then GET /cheap round-robin at 200 req/s for N
seconds. Prints "p50_ms p99_ms max_ms errors". Usage: steady_client.py PORT SECONDS"""
import socket
import sys
import time

port, seconds = int(sys.argv[1]), float(sys.argv[2])
conns = []
for _ in range(10):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conns.append(s)
request = b"GET /cheap HTTP/1.1\r\nHost: bench\r\n\r\n"
latencies, errors = [], 0
start = time.monotonic()
k = 0
while time.monotonic() - start < seconds:
    due = start + k / 200.0
    now = time.monotonic()
    if due > now:
        time.sleep(due - now)
    s = conns[k % len(conns)]
    k += 1
    t0 = time.monotonic()
    try:
        s.sendall(request)
        data = b""
        while b"cheap\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        if not data.startswith(b"HTTP/1.1 200"):
            raise ConnectionError(data[:40])
        latencies.append((time.monotonic() - t0) * 1000)
    except (OSError, ConnectionError):
        errors += 1
        try:
            conns[(k - 1) % len(conns)] = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            pass
latencies.sort()


def q(p):
    return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0.0


print(f"{q(0.5):.2f} {q(0.99):.2f} {(latencies[-1] if latencies else 0):.2f} {errors}")
