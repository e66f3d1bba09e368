#!/usr/bin/env python3
"""L4 helpers for Edge's integration tests (StreamTests, ProxyProtocolIntegrationTests,
WebSocketTests). Standard library plus `websockets` only. Every server prints one
line "listening <port>" on stdout once it accepts connections, then one JSON line
per finished connection where that is useful. All sockets are on 127.0.0.1 and
every blocking call has a timeout.

  bulk-server   --port P --mode send|recv --size N
        send: writes N pattern bytes, half-closes, drains to EOF; prints
              {"sent": N, "sha256": ...}.
        recv: reads to EOF, replies "<sha256hex> <count>\\n", closes; prints
              {"received": n, "sha256": ...}.
  bulk-client   --port P --mode send|recv --size N
        send: writes N pattern bytes, shutdown(SHUT_WR), reads the server's digest.
        recv: reads to EOF.  Prints one JSON line (bytes, sha256, seconds, mb_per_s,
              peer_sha256, peer_bytes).
  halfclose-server --port P   reads to EOF, answers "got N\\n", closes.
  silent-server    --port P   never writes; reads/discards to EOF; prints
                              {"event": "eof", "after": seconds, "bytes": n}.
  pp-recorder      --port P [--keepalive]
        reads a PROXY v1/v2 header, then answers HTTP/1.1 requests with JSON
        {"version", "command", "family", "source", "dest", "conn", "request",
        "request_line", "tlvs"} (Connection: close unless --keepalive).
  ws-echo-server   --port P   websockets echo server (any path).
  ws-client        --url URL --count N [--window W]
        N messages (sizes 1..4096, text and binary alternating), each echo checked.
  upgrade-probe    --port P
        HTTP/1.1 server for Upgrade tests.  Request with an Upgrade header to
        /ws101?ms=D&expect=N : waits D ms, counts bytes that arrived after the
        request head ("early"), answers 101, collects up to N bytes for 1.5 s
        ("late"), then writes "early=<hex> late=<hex>\\n" and closes.
        /ws200?ms=D : same wait, answers 200 (keep-alive) instead; whatever
        follows is parsed as the next HTTP request.  GET /_log returns the JSON
        list of all upgrade/garbage records.  Other paths: 200 "plain\\n".
  pattern-sha256 N            sha256 of the first N pattern bytes.
"""

import argparse
import asyncio
import base64
import hashlib
import json
import random
import select
import socket
import struct
import sys
import threading
import time

BLOCK = bytes(range(251)) * 4096  # byte[i] = i % 251; a whole number of periods
IO_TIMEOUT = 60.0


def out(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def listen(port):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1024)
    return ls


def serve_threads(port, handler):
    ls = listen(port)
    sys.stdout.write("listening %d\n" % port)
    sys.stdout.flush()
    while True:
        try:
            s, addr = ls.accept()
        except InterruptedError:
            continue
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(IO_TIMEOUT)

        def run(s=s, addr=addr):
            try:
                handler(s, addr)
            except Exception as e:  # noqa: BLE001 - report and keep serving
                sys.stderr.write("l4tools: %s: %r\n" % (handler.__name__, e))
                sys.stderr.flush()
            finally:
                try:
                    s.close()
                except OSError:
                    pass

        threading.Thread(target=run, daemon=True).start()


def send_pattern(sock, n, h):
    mv = memoryview(BLOCK)
    left = n
    while left > 0:
        k = min(len(BLOCK), left)
        sock.sendall(mv[:k])
        if h is not None:
            h.update(mv[:k])
        left -= k


def recv_to_eof(sock, h):
    buf = bytearray(1 << 20)
    mv = memoryview(buf)
    total = 0
    while True:
        n = sock.recv_into(buf)
        if n == 0:
            return total
        h.update(mv[:n])
        total += n


def pattern_sha256(n):
    h = hashlib.sha256()
    mv = memoryview(BLOCK)
    while n > 0:
        k = min(len(BLOCK), n)
        h.update(mv[:k])
        n -= k
    return h.hexdigest()


# ---------------------------------------------------------------- bulk

def cmd_bulk_server(a):
    def bulk(sock, addr):
        if a.mode == "send":
            h = hashlib.sha256()
            send_pattern(sock, a.size, h)
            sock.shutdown(socket.SHUT_WR)
            extra = recv_to_eof(sock, hashlib.sha256())
            out({"sent": a.size, "sha256": h.hexdigest(), "extra_received": extra})
        else:
            h = hashlib.sha256()
            n = recv_to_eof(sock, h)
            sock.sendall(b"%s %d\n" % (h.hexdigest().encode(), n))
            sock.shutdown(socket.SHUT_WR)
            out({"received": n, "sha256": h.hexdigest()})
    serve_threads(a.port, bulk)


def cmd_bulk_client(a):
    s = socket.create_connection(("127.0.0.1", a.port), timeout=10)
    s.settimeout(IO_TIMEOUT)
    t0 = time.monotonic()
    res = {"mode": a.mode}
    if a.mode == "send":
        h = hashlib.sha256()
        send_pattern(s, a.size, h)
        s.shutdown(socket.SHUT_WR)
        reply = bytearray()
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        parts = reply.decode("ascii", "replace").split()
        res.update(bytes=a.size, sha256=h.hexdigest(),
                   peer_sha256=parts[0] if parts else None,
                   peer_bytes=int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None,
                   reply=reply.decode("ascii", "replace")[:200])
    else:
        h = hashlib.sha256()
        n = recv_to_eof(s, h)
        res.update(bytes=n, sha256=h.hexdigest())
    dt = time.monotonic() - t0
    s.close()
    res.update(seconds=round(dt, 4), mb_per_s=round(a.size / dt / 1e6, 1) if dt > 0 else None)
    out(res)


# ---------------------------------------------------------------- small servers

def cmd_halfclose_server(a):
    def halfclose(sock, addr):
        n = recv_to_eof(sock, hashlib.sha256())
        sock.sendall(b"got %d\n" % n)
        sock.shutdown(socket.SHUT_WR)
        out({"event": "halfclose", "received": n})
    serve_threads(a.port, halfclose)


def cmd_silent_server(a):
    def silent(sock, addr):
        t0 = time.monotonic()
        sock.settimeout(120)
        n = 0
        try:
            while True:
                b = sock.recv(65536)
                if not b:
                    break
                n += len(b)
            ev = "eof"
        except ConnectionResetError:
            ev = "reset"
        except socket.timeout:
            ev = "timeout"
        out({"event": ev, "after": round(time.monotonic() - t0, 3), "bytes": n})
    serve_threads(a.port, silent)


# ---------------------------------------------------------------- PROXY recorder

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.tap = None  # called with every chunk received once set

    def fill(self):
        b = self.sock.recv(65536)
        if not b:
            return False
        if self.tap is not None:
            self.tap(b)
        self.buf += b
        return True

    def need(self, n):
        while len(self.buf) < n:
            if not self.fill():
                return False
        return True

    def take(self, n):
        d = bytes(self.buf[:n])
        del self.buf[:n]
        return d

    def until(self, delim, limit):
        while True:
            i = self.buf.find(delim)
            if i >= 0:
                return self.take(i + len(delim))
            if len(self.buf) > limit or not self.fill():
                return None


def parse_proxy_header(r):
    """Returns a dict describing the header (version 0 = none / error)."""
    if not r.need(1):
        return {"version": 0, "error": "eof before any byte"}
    if r.buf[:1] == b"P":
        line = r.until(b"\r\n", 107)
        if line is None or not line.startswith(b"PROXY "):
            return {"version": 0, "error": "not a PROXY header", "prefix": bytes(r.buf[:40]).hex()}
        parts = line[:-2].decode("ascii", "replace").split(" ")
        if len(parts) >= 2 and parts[1] == "UNKNOWN":
            return {"version": 1, "command": "PROXY", "family": "UNKNOWN", "source": None, "dest": None}
        if len(parts) != 6:
            return {"version": 1, "error": "bad v1 line %r" % line}
        return {"version": 1, "command": "PROXY", "family": parts[1],
                "source": "%s:%s" % (parts[2], parts[4]), "dest": "%s:%s" % (parts[3], parts[5])}
    if r.buf[:1] == b"\r":
        if not r.need(16) or bytes(r.buf[:12]) != V2_SIG:
            return {"version": 0, "error": "not a PROXY header", "prefix": bytes(r.buf[:40]).hex()}
        hdr = r.take(16)
        ver_cmd, fam, length = hdr[12], hdr[13], struct.unpack("!H", hdr[14:16])[0]
        if not r.need(length):
            return {"version": 2, "error": "truncated v2 header"}
        body = r.take(length)
        res = {"version": ver_cmd >> 4, "command": {0: "LOCAL", 1: "PROXY"}.get(ver_cmd & 0xF, "?"),
               "family": "0x%02x" % fam, "source": None, "dest": None}
        rest = body
        if fam == 0x11 and len(body) >= 12:
            src, dst = socket.inet_ntop(socket.AF_INET, body[0:4]), socket.inet_ntop(socket.AF_INET, body[4:8])
            sp, dp = struct.unpack("!HH", body[8:12])
            res.update(source="%s:%d" % (src, sp), dest="%s:%d" % (dst, dp))
            rest = body[12:]
        elif fam == 0x21 and len(body) >= 36:
            src, dst = socket.inet_ntop(socket.AF_INET6, body[0:16]), socket.inet_ntop(socket.AF_INET6, body[16:32])
            sp, dp = struct.unpack("!HH", body[32:36])
            res.update(source="[%s]:%d" % (src, sp), dest="[%s]:%d" % (dst, dp))
            rest = body[36:]
        tlvs = []
        while len(rest) >= 3:
            t, ln = rest[0], struct.unpack("!H", rest[1:3])[0]
            tlvs.append([t, rest[3:3 + ln].hex()])
            rest = rest[3 + ln:]
        res["tlvs"] = tlvs
        return res
    return {"version": 0, "error": "not a PROXY header", "prefix": bytes(r.buf[:40]).hex()}


def read_http_request(r):
    raw = r.until(b"\r\n\r\n", 64 * 1024)
    if raw is None:
        return None
    lines = raw[:-4].decode("latin-1").split("\r\n")
    headers = []
    for ln in lines[1:]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            headers.append((k.strip(), v.strip()))
    cl = 0
    for k, v in headers:
        if k.lower() == "content-length":
            cl = int(v)
    if cl and r.need(cl):
        r.take(cl)
    return lines[0], headers


CONN_LOCK = threading.Lock()
CONN_ID = [0]


def cmd_pp_recorder(a):
    def pp(sock, addr):
        with CONN_LOCK:
            CONN_ID[0] += 1
            cid = CONN_ID[0]
        r = Reader(sock)
        info = parse_proxy_header(r)
        info["conn"] = cid
        info["tcp_peer"] = "%s:%d" % addr
        out({"event": "header", **info})
        n = 0
        while True:
            req = read_http_request(r)
            if req is None:
                return
            n += 1
            line, headers = req
            body = dict(info)
            body.update(request=n, request_line=line,
                        x_forwarded_for=[v for k, v in headers if k.lower() == "x-forwarded-for"])
            data = json.dumps(body, sort_keys=True).encode() + b"\n"
            close = not a.keepalive or info.get("version", 0) == 0
            head = ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
                    % (len(data), "Connection: close\r\n" if close else "")).encode()
            sock.sendall(head + data)
            if close:
                sock.shutdown(socket.SHUT_WR)
                return
    serve_threads(a.port, pp)


# ---------------------------------------------------------------- Upgrade probe

PROBE_LOG = []
PROBE_LOCK = threading.Lock()
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def cmd_upgrade_probe(a):
    def probe(sock, addr):
        r = Reader(sock)
        while True:
            req = read_http_request(r)
            if req is None:
                if r.buf:
                    with PROBE_LOCK:
                        PROBE_LOG.append({"event": "garbage", "line": bytes(r.buf[:200]).hex(),
                                          "peer": "%s:%d" % addr})
                return
            line, headers = req
            parts = line.split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                with PROBE_LOCK:
                    PROBE_LOG.append({"event": "garbage", "line": line[:200], "peer": "%s:%d" % addr})
                return
            target = parts[1]
            path, _, query = target.partition("?")
            q = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
            hmap = {k.lower(): v for k, v in headers}
            if path == "/_log":
                with PROBE_LOCK:
                    data = json.dumps(PROBE_LOG).encode()
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                             % len(data) + data)
                continue
            if "upgrade" not in hmap:
                with PROBE_LOCK:
                    PROBE_LOG.append({"event": "plain", "path": path})
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nplain\n")
                continue
            # Upgrade request: wait, and see what arrives before we answer.
            deadline = time.monotonic() + int(q.get("ms", "400")) / 1000.0
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                rd, _, _ = select.select([sock], [], [], left)
                if rd and not r.fill():
                    break
            early = bytes(r.buf)
            rec = {"event": "upgrade", "path": path, "early_hex": early.hex(), "early_len": len(early),
                   "upgrade": hmap.get("upgrade"), "connection": hmap.get("connection")}
            with PROBE_LOCK:
                PROBE_LOG.append(rec)
            if path.startswith("/ws101"):
                key = hmap.get("sec-websocket-key", "").encode()
                accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
                sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
                expect = int(q.get("expect", "0"))
                late = bytearray()
                del r.buf[:]
                end = time.monotonic() + 1.5
                while len(late) < expect:
                    left = end - time.monotonic()
                    if left <= 0:
                        break
                    rd, _, _ = select.select([sock], [], [], left)
                    if not rd:
                        break
                    b = sock.recv(65536)
                    if not b:
                        break
                    late += b
                rec["late_hex"] = bytes(late).hex()
                sock.sendall(b"early=%s late=%s\n" % (early.hex().encode(), bytes(late).hex().encode()))
                sock.shutdown(socket.SHUT_WR)
                time.sleep(0.1)
                return
            body = b"no upgrade\n"
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
                         % len(body) + body)

            def tap(b, rec=rec):
                with PROBE_LOCK:
                    rec["after_hex"] = rec.get("after_hex", "") + b.hex()
            r.tap = tap
            # Whatever follows (still in r.buf or arriving later) is parsed as HTTP.
    serve_threads(a.port, probe)


# ---------------------------------------------------------------- WebSocket

def cmd_ws_echo_server(a):
    from websockets.asyncio.server import serve

    async def echo(ws):
        async for m in ws:
            await ws.send(m)

    async def main():
        async with serve(echo, "127.0.0.1", a.port, compression=None, max_size=1 << 22,
                         ping_interval=None):
            sys.stdout.write("listening %d\n" % a.port)
            sys.stdout.flush()
            await asyncio.Future()

    asyncio.run(main())


def cmd_ws_client(a):
    from websockets.asyncio.client import connect

    rng = random.Random(20240601)

    def message(i):
        size = 1 if i == 0 else 4096 if i == 1 else rng.randint(1, 4096)
        raw = rng.randbytes(size)
        if i % 2 == 0:
            return raw
        return base64.b64encode(raw).decode()[:size]

    async def main():
        t0 = time.monotonic()
        total = 0
        tls = {}
        if a.url.startswith("wss:"):
            import ssl
            tls["ssl"] = ssl.create_default_context(cafile=a.cafile)
        async with connect(a.url, compression=None, max_size=1 << 22, ping_interval=None,
                           open_timeout=10, close_timeout=5, **tls) as ws:
            i = 0
            while i < a.count:
                batch = [message(j) for j in range(i, min(a.count, i + a.window))]
                for m in batch:
                    await ws.send(m)
                for k, m in enumerate(batch):
                    got = await asyncio.wait_for(ws.recv(), timeout=10)
                    if got != m:
                        out({"ok": False, "index": i + k, "sent_len": len(m), "got_len": len(got),
                             "sent_type": type(m).__name__, "got_type": type(got).__name__})
                        return 1
                    total += len(m)
                i += len(batch)
        dt = time.monotonic() - t0
        out({"ok": True, "messages": a.count, "bytes": total, "elapsed": round(dt, 3),
             "msgs_per_s": round(a.count / dt, 1)})
        return 0

    try:
        sys.exit(asyncio.run(asyncio.wait_for(main(), timeout=a.timeout)))
    except Exception as e:  # noqa: BLE001
        out({"ok": False, "error": repr(e)})
        sys.exit(1)


def cmd_udp_echo(a):
    """UDP echo server: every datagram goes back to its sender."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", a.port))
    print("listening %d" % a.port, flush=True)
    while True:
        d, addr = s.recvfrom(65536)
        s.sendto(d, addr)


def cmd_udp_client(a):
    """Sends `per` datagrams from each of `clients` sockets (distinct source ports)
    in rounds, collects the echoes, and checks each came back to its own socket."""
    import select
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(a.clients)]
    for s in socks:
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    index = {s.fileno(): k for k, s in enumerate(socks)}
    sent = got = wrong = 0
    t = time.time()
    for i in range(a.per):
        for k, s in enumerate(socks):
            s.sendto(b"%d:%d" % (k, i), ("127.0.0.1", a.port))
            sent += 1
        pending = set(range(a.clients))
        deadline = time.time() + 1.0
        while pending and time.time() < deadline:
            r, _, _ = select.select(socks, [], [], 0.2)
            for s in r:
                k = index[s.fileno()]
                while True:
                    try:
                        d = s.recv(65536)
                    except BlockingIOError:
                        break
                    got += 1
                    pending.discard(k)
                    if not d.startswith(b"%d:" % k):
                        wrong += 1
    out({"sent": sent, "received": got, "wrong_session": wrong, "seconds": round(time.time() - t, 2)})


def main():
    p = argparse.ArgumentParser()
    sp = p.add_subparsers(dest="cmd", required=True)
    for name in ("bulk-server", "bulk-client"):
        s = sp.add_parser(name)
        s.add_argument("--port", type=int, required=True)
        s.add_argument("--mode", choices=["send", "recv"], required=True)
        s.add_argument("--size", type=int, required=True)
    for name in ("halfclose-server", "silent-server", "ws-echo-server", "upgrade-probe"):
        sp.add_parser(name).add_argument("--port", type=int, required=True)
    s = sp.add_parser("pp-recorder")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--keepalive", action="store_true")
    s = sp.add_parser("ws-client")
    s.add_argument("--url", required=True)
    s.add_argument("--count", type=int, default=10000)
    s.add_argument("--window", type=int, default=8)
    s.add_argument("--timeout", type=float, default=120)
    s.add_argument("--cafile", help="CA bundle for wss:// URLs")
    s = sp.add_parser("pattern-sha256")
    s.add_argument("n", type=int)
    sp.add_parser("udp-echo").add_argument("--port", type=int, required=True)
    s = sp.add_parser("udp-client")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--clients", type=int, default=50)
    s.add_argument("--per", type=int, default=2000)
    a = p.parse_args()
    if a.cmd == "pattern-sha256":
        print(pattern_sha256(a.n))
        return
    {"bulk-server": cmd_bulk_server, "bulk-client": cmd_bulk_client,
     "halfclose-server": cmd_halfclose_server, "silent-server": cmd_silent_server,
     "pp-recorder": cmd_pp_recorder, "ws-echo-server": cmd_ws_echo_server,
     "ws-client": cmd_ws_client, "upgrade-probe": cmd_upgrade_probe,
     "udp-echo": cmd_udp_echo, "udp-client": cmd_udp_client}[a.cmd](a)


if __name__ == "__main__":
    main()
