#!/usr/bin/env python3
"""Test upstream for Edge's integration tests (Python 3 stdlib only).

A small HTTP/1.1 origin server with precise control over the bytes it sends,
plus client helpers that stream large bodies without holding them in memory.

Server:
    upstream.py serve --port 9000 [--host 127.0.0.1] [--name N] [--delay-ms MS]

    GET  /_stats        {"connections": N, "requests": M, "completed": K}
                        (connections/requests that carried /_stats or /_reset
                        themselves are not counted)
    POST /_reset        zero the counters
    *    /echo          JSON: method, path, query, target, version, headers
                        (list of [name, value] pairs, original case and order),
                        body_length, body_sha256, conn (connection id),
                        expect (value of Expect or null)
    *    /status/N      respond with status N (no body for HEAD/1xx/204/304,
                        otherwise a short text body)
    GET|HEAD /bytes?n=N[&chunked=1]
                        N bytes of the deterministic pattern (see pattern()),
                        streamed in 64 KiB pieces; Content-Length unless chunked
    *    /upload        consume the body streaming; JSON {"length", "sha256"}
    *    /slow?ms=N     sleep N ms, then 200 "slow done\n"
    *    /close-early[?mode=head|nohead|body]
                        head (default): send a partial response head then close
                        nohead: close without sending anything
                        body: full head announcing 100000 bytes, send 1000, close
    *    /garbage       send non-HTTP bytes, then close
    *    /conn          text body: the id of this TCP connection (1, 2, ...)
    *    /continue      honours Expect: 100-continue (sends 100, then reads the
                        body, then 200 JSON {"length","sha256","sent_100"})

Any request carrying "Expect: 100-continue" gets an interim 100 before its body
is read (like most origin servers). Request bodies may be Content-Length or
chunked.

Client helpers (print one JSON object on stdout):
    upstream.py pattern-sha256 N
    upstream.py download --port P --path /bytes?n=N [--host 127.0.0.1]
        -> {"status", "headers", "length", "sha256", "pattern_ok"}
    upstream.py upload --port P --path /upload --size N [--chunked]
        -> {"status", "headers", "body"}  (body = response body text)
"""

import argparse
import hashlib
import json
import socket
import sys
import threading
import time
import urllib.parse

PIECE = 64 * 1024
PERIOD = 251  # prime: any lost or duplicated run of bytes shows up

_BASE = bytes(i % PERIOD for i in range(PERIOD)) * (PIECE // PERIOD + 2)


def pattern(offset, length):
    """Bytes [offset, offset+length) of the infinite pattern byte[i] = i % 251.
    length must be <= PIECE."""
    start = offset % PERIOD
    return _BASE[start:start + length]


def pattern_sha256(n):
    h = hashlib.sha256()
    off = 0
    while off < n:
        k = min(PIECE, n - off)
        h.update(pattern(off, k))
        off += k
    return h.hexdigest()


REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
    301: "Moved Permanently", 302: "Found", 304: "Not Modified", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 413: "Content Too Large",
    418: "I'm a teapot", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}


class ProtocolError(Exception):
    pass


class Conn:
    """Buffered reader over a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def _fill(self):
        data = self.sock.recv(PIECE)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_until(self, delim, limit):
        while True:
            i = self.buf.find(delim)
            if i >= 0:
                out = bytes(self.buf[:i + len(delim)])
                del self.buf[:i + len(delim)]
                return out
            if len(self.buf) > limit:
                raise ProtocolError("line/head too long")
            if not self._fill():
                return None

    def read_some(self, maxn):
        if not self.buf:
            if not self._fill():
                return b""
        n = min(maxn, len(self.buf))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_exact_into_hash(self, n, h):
        got = 0
        while got < n:
            piece = self.read_some(min(PIECE, n - got))
            if not piece:
                raise ProtocolError("eof in body")
            h.update(piece)
            got += len(piece)
        return got


def parse_head(raw):
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise ProtocolError("bad request line: %r" % lines[0])
    method, target, version = parts
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        if ":" not in line:
            raise ProtocolError("bad header line: %r" % line)
        name, value = line.split(":", 1)
        headers.append([name, value.strip(" \t")])
    return method, target, version, headers


def hget(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def read_body(conn, headers, h):
    """Consume the request body into hash h; return its length."""
    te = hget(headers, "transfer-encoding")
    if te is not None and te.lower().strip() == "chunked":
        total = 0
        while True:
            line = conn.read_until(b"\r\n", 4096)
            if line is None:
                raise ProtocolError("eof in chunk size")
            size_text = line[:-2].split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError("bad chunk size %r" % size_text)
            if size > (1 << 40):
                raise ProtocolError("chunk too large")
            if size == 0:
                # trailers until empty line
                while True:
                    t = conn.read_until(b"\r\n", 8192)
                    if t is None:
                        raise ProtocolError("eof in trailers")
                    if t == b"\r\n":
                        return total
            total += conn.read_exact_into_hash(size, h)
            crlf = conn.read_until(b"\r\n", 2)
            if crlf != b"\r\n":
                raise ProtocolError("missing CRLF after chunk")
    cl = hget(headers, "content-length")
    if cl is not None:
        n = int(cl)
        return conn.read_exact_into_hash(n, h)
    return 0


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = 0
        self.completed = 0
        self.next_conn_id = 0

    def snapshot(self):
        with self.lock:
            return {"connections": self.connections, "requests": self.requests,
                    "completed": self.completed}

    def reset(self):
        with self.lock:
            self.connections = self.requests = self.completed = 0


STATS = Stats()


# Set by `serve --name`: every response carries X-Upstream-Name so balancing
# tests can tell which upstream answered.
SERVER_NAME = None
# --delay-ms: every final response waits this long first (a slowed endpoint).
DELAY_MS = 0


def send_response(sock, status, headers, body=b"", head_only=False):
    reason = REASONS.get(status, "Status")
    if DELAY_MS and 200 <= status:
        time.sleep(DELAY_MS / 1000.0)
    if SERVER_NAME is not None and 200 <= status:
        headers = headers + [("X-Upstream-Name", SERVER_NAME)]
    out = ["HTTP/1.1 %d %s" % (status, reason)]
    no_body = head_only or status in (204, 304) or 100 <= status < 200
    have_cl = any(k.lower() == "content-length" for k, _ in headers)
    if status not in (204, 304) and not (100 <= status < 200) and not have_cl:
        headers = headers + [("Content-Length", str(len(body)))]
    for k, v in headers:
        out.append("%s: %s" % (k, v))
    data = ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
    if not no_body:
        data += body
    sock.sendall(data)


def json_body(obj):
    return json.dumps(obj, sort_keys=True).encode() + b"\n"


def handle_connection(sock, addr):
    conn = Conn(sock)
    with STATS.lock:
        STATS.next_conn_id += 1
        conn_id = STATS.next_conn_id
    counted = False
    try:
        while True:
            raw = conn.read_until(b"\r\n\r\n", 256 * 1024)
            if raw is None:
                return
            method, target, version, headers = parse_head(raw[:-4])
            url = urllib.parse.urlsplit(target)
            path = url.path
            query = urllib.parse.parse_qs(url.query)
            internal = path in ("/_stats", "/_reset")
            if not internal:
                with STATS.lock:
                    STATS.requests += 1
                    if not counted:
                        STATS.connections += 1
                        counted = True
            expect = hget(headers, "expect")
            sent_100 = False
            if expect is not None and expect.lower() == "100-continue" and version == "HTTP/1.1":
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                sent_100 = True
            h = hashlib.sha256()
            try:
                body_len = read_body(conn, headers, h)
            except ProtocolError:
                return  # incomplete request: never counted as completed
            if not internal:
                with STATS.lock:
                    STATS.completed += 1
            head_only = method == "HEAD"
            close_after = False
            conn_hdr = (hget(headers, "connection") or "").lower()
            if "close" in [t.strip() for t in conn_hdr.split(",")]:
                close_after = True
            if version == "HTTP/1.0" and "keep-alive" not in conn_hdr:
                close_after = True
            extra = [("Connection", "close")] if close_after else []

            if path == "/_stats":
                send_response(sock, 200, [("Content-Type", "application/json")] + extra,
                              json_body(STATS.snapshot()), head_only)
            elif path == "/_reset":
                STATS.reset()
                send_response(sock, 200, extra, b"reset\n", head_only)
            elif path == "/echo":
                obj = {"method": method, "path": path, "query": url.query, "target": target,
                       "version": version, "headers": headers, "body_length": body_len,
                       "body_sha256": h.hexdigest(), "conn": conn_id, "expect": expect}
                send_response(sock, 200, [("Content-Type", "application/json")] + extra,
                              json_body(obj), head_only)
            elif path.startswith("/status/"):
                try:
                    status = int(path[len("/status/"):])
                except ValueError:
                    status = 400
                send_response(sock, status, [("X-Upstream-Status", str(status))] + extra,
                              b"status %d\n" % status, head_only)
            elif path == "/bytes":
                n = int(query.get("n", ["0"])[0])
                chunked = query.get("chunked", ["0"])[0] == "1"
                hdrs = [("Content-Type", "application/octet-stream")]
                if chunked:
                    hdrs.append(("Transfer-Encoding", "chunked"))
                else:
                    hdrs.append(("Content-Length", str(n)))
                send_response(sock, 200, hdrs + extra, b"", True)
                if not head_only:
                    off = 0
                    while off < n:
                        k = min(PIECE, n - off)
                        piece = pattern(off, k)
                        if chunked:
                            sock.sendall(b"%x\r\n" % k + piece + b"\r\n")
                        else:
                            sock.sendall(piece)
                        off += k
                    if chunked:
                        sock.sendall(b"0\r\n\r\n")
            elif path == "/upload":
                send_response(sock, 200, [("Content-Type", "application/json")] + extra,
                              json_body({"length": body_len, "sha256": h.hexdigest()}), head_only)
            elif path == "/continue":
                send_response(sock, 200, [("Content-Type", "application/json")] + extra,
                              json_body({"length": body_len, "sha256": h.hexdigest(),
                                         "sent_100": sent_100}), head_only)
            elif path == "/slow":
                ms = int(query.get("ms", ["1000"])[0])
                time.sleep(ms / 1000.0)
                send_response(sock, 200, [("Content-Type", "text/plain")] + extra,
                              b"slow done\n", head_only)
            elif path == "/close-early":
                mode = query.get("mode", ["head"])[0]
                if mode == "head":
                    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Le")
                elif mode == "body":
                    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n"
                                 b"Content-Type: application/octet-stream\r\n\r\n")
                    sock.sendall(pattern(0, 1000))
                    time.sleep(0.05)
                # nohead: nothing
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            elif path == "/garbage":
                sock.sendall(b"THIS IS NOT HTTP \x00\x01\x02 AT ALL\r\n\r\n")
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            elif path == "/conn":
                send_response(sock, 200, [("Content-Type", "text/plain")] + extra,
                              b"%d" % conn_id, head_only)
            else:
                send_response(sock, 404, [("Content-Type", "text/plain")] + extra,
                              b"upstream: no such path\n", head_only)
            if close_after:
                return
    except (ProtocolError, ConnectionError, OSError, ValueError) as e:
        sys.stderr.write("upstream: connection %d: %s\n" % (conn_id, e))
    finally:
        try:
            sock.close()
        except OSError:
            pass


def serve(host, port):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(1024)
    sys.stderr.write("upstream: listening on %s:%d\n" % (host, port))
    sys.stderr.flush()
    while True:
        try:
            s, addr = ls.accept()
        except InterruptedError:
            continue
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t = threading.Thread(target=handle_connection, args=(s, addr), daemon=True)
        t.start()


# ---------------------------------------------------------------- clients

def read_response_head(conn):
    while True:
        raw = conn.read_until(b"\r\n\r\n", 256 * 1024)
        if raw is None:
            raise ProtocolError("eof before response head")
        lines = raw[:-4].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = []
        for line in lines[1:]:
            name, value = line.split(":", 1)
            headers.append([name, value.strip()])
        if 100 <= status < 200:
            continue
        return status, headers


def read_response_body(conn, headers, sink):
    te = hget(headers, "transfer-encoding")
    if te is not None and te.lower() == "chunked":
        class H:
            def update(self, b):
                sink(b)
        return read_body(conn, headers, H())
    cl = hget(headers, "content-length")
    if cl is not None:
        n = int(cl)
        got = 0
        while got < n:
            piece = conn.read_some(min(PIECE, n - got))
            if not piece:
                break
            sink(piece)
            got += len(piece)
        return got
    got = 0
    while True:
        piece = conn.read_some(PIECE)
        if not piece:
            return got
        sink(piece)
        got += len(piece)


def client_download(host, port, path, timeout):
    s = socket.create_connection((host, port), timeout=timeout)
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n"
               % (path, host, port)).encode())
    conn = Conn(s)
    status, headers = read_response_head(conn)
    h = hashlib.sha256()
    state = {"off": 0, "ok": True}

    def sink(b):
        h.update(b)
        if state["ok"]:
            # verify the pattern in place (cheap: compare against a slice)
            off = state["off"]
            i = 0
            while i < len(b):
                k = min(PIECE, len(b) - i)
                if b[i:i + k] != pattern(off + i, k):
                    state["ok"] = False
                    break
                i += k
        state["off"] += len(b)

    n = read_response_body(conn, headers, sink)
    s.close()
    return {"status": status, "headers": headers, "length": n, "sha256": h.hexdigest(),
            "pattern_ok": state["ok"]}


def client_upload(host, port, path, size, chunked, timeout):
    s = socket.create_connection((host, port), timeout=timeout)
    head = "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/octet-stream\r\n" % (
        path, host, port)
    if chunked:
        head += "Transfer-Encoding: chunked\r\n"
    else:
        head += "Content-Length: %d\r\n" % size
    head += "Connection: close\r\n\r\n"
    s.sendall(head.encode())
    off = 0
    while off < size:
        k = min(PIECE, size - off)
        piece = pattern(off, k)
        if chunked:
            s.sendall(b"%x\r\n" % k + piece + b"\r\n")
        else:
            s.sendall(piece)
        off += k
    if chunked:
        s.sendall(b"0\r\n\r\n")
    conn = Conn(s)
    status, headers = read_response_head(conn)
    body = bytearray()
    read_response_body(conn, headers, body.extend)
    s.close()
    return {"status": status, "headers": headers, "body": body.decode("latin-1")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    p = sub.add_parser("serve")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9000)
    p.add_argument("--name", default=None, help="sent back as X-Upstream-Name")
    p.add_argument("--delay-ms", type=int, default=0, help="delay before every final response")
    p = sub.add_parser("pattern-sha256")
    p.add_argument("n", type=int)
    for name in ("download", "upload"):
        p = sub.add_parser(name)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--path", required=True)
        p.add_argument("--timeout", type=float, default=60.0)
        if name == "upload":
            p.add_argument("--size", type=int, required=True)
            p.add_argument("--chunked", action="store_true")
    args = ap.parse_args()
    if args.cmd in (None, "serve"):
        host = getattr(args, "host", "127.0.0.1")
        port = getattr(args, "port", 9000)
        global SERVER_NAME
        SERVER_NAME = getattr(args, "name", None)
        global DELAY_MS
        DELAY_MS = getattr(args, "delay_ms", 0) or 0
        try:
            serve(host, port)
        except KeyboardInterrupt:
            pass
    elif args.cmd == "pattern-sha256":
        print(pattern_sha256(args.n))
    elif args.cmd == "download":
        print(json.dumps(client_download(args.host, args.port, args.path, args.timeout)))
    elif args.cmd == "upload":
        print(json.dumps(client_upload(args.host, args.port, args.path, args.size,
                                       args.chunked, args.timeout)))


if __name__ == "__main__":
    main()
