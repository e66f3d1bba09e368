#!/usr/bin/env python3
"""Trickles request heads: K connections each send one HEAD_BYTES request head
one byte per send() (TCP_NODELAY, so one segment per byte), round-robin: one
byte to every connection, then sleep until the next round (--round-us), so the
proxy reads each byte on its own instead of finding several queued. Then reads
every response (must be 200). Prints one line:
  ok=<n> bad=<n> wall_s=<s> late_rounds=<n> head_bytes=<n>

  trickle_client.py PORT [--conns 10] [--head-bytes 32768] [--round-us 1000]
"""
import argparse
import socket
import sys
import time


def build_head(size):
    """A request head of exactly `size` bytes: request line, Host, then
    ~200-byte fields (like cookies / tracing headers) padded to the size."""
    start = b"GET /trickle HTTP/1.1\r\nHost: bench.local\r\n"
    end = b"\r\n"
    fields = []
    room = size - len(start) - len(end)
    n = 0
    while room > 0:
        name = b"X-Trickle-%03d: " % n
        line_len = min(room, 200)
        if room - line_len < 24 and room - line_len > 0:
            line_len = room  # no tiny last field
        value_len = line_len - len(name) - 2
        if value_len < 1:
            # Too short for a field of its own: lengthen the previous one.
            prev = fields.pop()
            fields.append(prev[:-2] + b"v" * room + b"\r\n")
            break
        fields.append(name + b"v" * value_len + b"\r\n")
        room -= line_len
        n += 1
    head = start + b"".join(fields) + end
    assert len(head) == size, (len(head), size)
    return head


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--conns", type=int, default=10)
    ap.add_argument("--head-bytes", type=int, default=32768)
    ap.add_argument("--round-us", type=int, default=1000)
    a = ap.parse_args()
    head = build_head(a.head_bytes)
    socks = []
    for _ in range(a.conns):
        s = socket.create_connection(("127.0.0.1", a.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(s)
    period = a.round_us / 1e6
    late = 0
    t0 = time.monotonic()
    deadline = t0
    for b in range(len(head)):
        one = head[b:b + 1]
        for s in socks:
            s.send(one)
        deadline += period
        d = deadline - time.monotonic()
        if d > 0:
            time.sleep(d)
        else:
            late += 1
    ok = bad = 0
    for s in socks:
        s.settimeout(30)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except OSError:
            pass
        if buf.startswith(b"HTTP/1.1 200"):
            ok += 1
        else:
            bad += 1
            sys.stderr.write("bad response: %r\n" % buf[:120])
        s.close()
    wall = time.monotonic() - t0
    print("ok=%d bad=%d wall_s=%.2f late_rounds=%d head_bytes=%d" % (ok, bad, wall, late, len(head)))
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
