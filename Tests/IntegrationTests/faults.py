#!/usr/bin/env python3
"""Misbehaving upstream for Edge's fault-injection tests (Python 3 stdlib only).

    faults.py serve --port P [--host 127.0.0.1] [--mode MODE]

--mode decides what happens on every accepted connection:

    path (default)  read one request head (and its body), then act on the path
    one-per-conn    like path, but a second request on a connection is read and
                    answered with a close (FIN): an origin that drops idle
                    keep-alive connections just as the proxy reuses them
    rst-accept      RST (SO_LINGER 0 + close) right after accept, nothing read
    close-accept    plain close right after accept, nothing read
    hang-accept     accept and never read or write (open until the peer closes)

Paths (mode `path`):

    /ok                 200 "ok\\n" (keep-alive)
    /rst                RST before any response byte
    /rst-mid?n=N        head announcing N bytes (default 1000000), 64 KiB of the
                        pattern, then RST
    /rst-mid-chunked    chunked head, two 16 KiB chunks, then RST
    /hang               read the request, never answer (until the peer closes)
    /stall-body?n=N     head announcing N bytes, 1000 pattern bytes, then silence
    /raw?b=HEX          send these bytes verbatim, then close (FIN)
    /bighead?size=N     200 with one X-Big header of N bytes, body "big\\n"
    /cl-te              Content-Length: 5 and Transfer-Encoding: chunked, chunked
                        body "hello world" (11 bytes)
    /negcl              Content-Length: -1
    /badcl              Content-Length: 12abc
    /dupcl              Content-Length: 5 and Content-Length: 6
    /listcl             Content-Length: 5, 6
    /te10               HTTP/1.0 response with Transfer-Encoding: chunked
    /te-double          Transfer-Encoding: chunked, chunked
    /bad-chunk          chunked head, then a chunk-size line "zz"
    /interim-hang       "100 Continue", then never anything more
    /interim-flood?n=N  N "100 Continue" heads in one write, then 200 "ok"
    /trickle-head?ms=N  a valid 200 head, one byte every N ms (default 100)
    /extra              200 "ok" (Content-Length: 2) followed at once by a second,
                        unrequested response ("smuggled"); the connection stays open

Errors go to stderr. GET /_stats returns {"connections": N, "requests": M,
"open": K} (connections and requests that only carried /_stats are not
counted; open = connections currently being handled, this one excluded).
"""

import argparse
import json
import select
import socket
import struct
import sys
import threading
import time
import urllib.parse

PERIOD = 251
_BASE = bytes(i % PERIOD for i in range(PERIOD)) * (65536 // PERIOD + 2)


def pattern(offset, length):
    start = offset % PERIOD
    return _BASE[start:start + length]


LOCK = threading.Lock()
STATS = {"connections": 0, "requests": 0, "open": 0}


def rst_close(sock):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def fin_close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def wait_peer_close(sock, limit=120.0):
    """Hold the connection open, discarding input, until the peer closes."""
    sock.settimeout(1.0)
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            if not sock.recv(65536):
                return
        except socket.timeout:
            continue
        except OSError:
            return


def read_request(sock, buf):
    """One request head (+ Content-Length body); returns (method, target, headers, rest) or None."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            return None
        buf += data
    i = buf.index(b"\r\n\r\n")
    head = buf[:i].decode("latin-1")
    rest = buf[i + 4:]
    lines = head.split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0") or 0)
    while len(rest) < n:
        data = sock.recv(65536)
        if not data:
            return None
        rest += data
    return method, target, headers, rest[n:]


def send(sock, data):
    sock.sendall(data)


def handle(sock, mode):
    with LOCK:
        STATS["open"] += 1
    try:
        _handle(sock, mode)
    finally:
        with LOCK:
            STATS["open"] -= 1


def _handle(sock, mode):
    if mode not in ("path", "one-per-conn"):
        with LOCK:
            STATS["connections"] += 1
    counted = False
    if mode == "rst-accept":
        rst_close(sock)
        return
    if mode == "close-accept":
        fin_close(sock)
        return
    if mode == "hang-accept":
        # Never read; wait (up to 120 s) for the peer to close or reset.
        p = select.poll()
        p.register(sock, getattr(select, "POLLRDHUP", 0x2000) | select.POLLHUP | select.POLLERR)
        p.poll(120000)
        sock.close()
        return
    buf = b""
    try:
        while True:
            req = read_request(sock, buf)
            if req is None:
                sock.close()
                return
            method, target, headers, buf = req
            url = urllib.parse.urlsplit(target)
            path = url.path
            q = urllib.parse.parse_qs(url.query)
            if mode == "one-per-conn" and counted and path != "/_stats":
                fin_close(sock)  # like an origin closing an idle keep-alive connection
                return
            if path != "/_stats":
                with LOCK:
                    STATS["requests"] += 1
                    if not counted:
                        STATS["connections"] += 1
                        counted = True
            if path == "/_stats":
                with LOCK:
                    snap = dict(STATS)
                snap["open"] -= 1  # this connection
                body = json.dumps(snap).encode() + b"\n"
                send(sock, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            elif path == "/ok":
                send(sock, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
            elif path == "/rst":
                rst_close(sock)
                return
            elif path == "/rst-mid":
                n = int(q.get("n", ["1000000"])[0])
                send(sock, b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % n)
                send(sock, pattern(0, 65536))
                time.sleep(0.2)  # let the bytes reach the proxy before the RST
                rst_close(sock)
                return
            elif path == "/rst-mid-chunked":
                send(sock, b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
                for off in (0, 16384):
                    send(sock, b"4000\r\n" + pattern(off, 16384) + b"\r\n")
                time.sleep(0.2)
                rst_close(sock)
                return
            elif path == "/hang":
                wait_peer_close(sock)
                sock.close()
                return
            elif path == "/stall-body":
                n = int(q.get("n", ["100000"])[0])
                send(sock, b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % n)
                send(sock, pattern(0, 1000))
                wait_peer_close(sock)
                sock.close()
                return
            elif path == "/raw":
                send(sock, bytes.fromhex(q.get("b", [""])[0]))
                time.sleep(0.05)
                fin_close(sock)
                return
            elif path == "/bighead":
                size = int(q.get("size", ["20000"])[0])
                send(sock, b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * size + b"\r\nContent-Length: 4\r\n\r\nbig\n")
            elif path == "/cl-te":
                send(sock, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n")
            elif path == "/negcl":
                send(sock, b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nxxxx")
                time.sleep(0.05)
                fin_close(sock)
                return
            elif path == "/badcl":
                send(sock, b"HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\nxxxx")
                time.sleep(0.05)
                fin_close(sock)
                return
            elif path == "/dupcl":
                send(sock, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
                time.sleep(0.05)
                fin_close(sock)
                return
            elif path == "/listcl":
                send(sock, b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!")
                time.sleep(0.05)
                fin_close(sock)
                return
            elif path == "/te10":
                send(sock, b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
                time.sleep(0.05)
                fin_close(sock)
                return
            elif path == "/te-double":
                send(sock, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
                time.sleep(0.05)
                fin_close(sock)
                return
            elif path == "/bad-chunk":
                send(sock, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nxxxx\r\n0\r\n\r\n")
                time.sleep(0.05)
                fin_close(sock)
                return
            elif path == "/interim-flood":
                n = int(q.get("n", ["300"])[0])
                send(sock, b"HTTP/1.1 100 Continue\r\n\r\n" * n
                     + b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                wait_peer_close(sock, 5)
                sock.close()
                return
            elif path == "/interim-hang":
                send(sock, b"HTTP/1.1 100 Continue\r\n\r\n")
                wait_peer_close(sock)
                sock.close()
                return
            elif path == "/trickle-head":
                ms = int(q.get("ms", ["100"])[0])
                for b in b"HTTP/1.1 200 OK\r\nX-Trickle: yes\r\nContent-Length: 3\r\n\r\nok\n":
                    send(sock, bytes([b]))
                    time.sleep(ms / 1000.0)
            elif path == "/extra":
                send(sock, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                           b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nsmuggled\n")
            else:
                send(sock, b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\nno such \n\n")
    except OSError as e:
        sys.stderr.write("faults: %s\n" % e)
        try:
            sock.close()
        except OSError:
            pass


def serve(host, port, mode):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(1024)
    sys.stderr.write("faults: listening on %s:%d mode %s\n" % (host, port, mode))
    sys.stderr.flush()
    while True:
        try:
            s, _ = ls.accept()
        except InterruptedError:
            continue
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handle, args=(s, mode), daemon=True).start()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    p = sub.add_parser("serve")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", default="path",
                   choices=["path", "one-per-conn", "rst-accept", "close-accept", "hang-accept"])
    args = ap.parse_args()
    if args.cmd != "serve":
        ap.error("usage: faults.py serve --port P [--mode MODE]")
    try:
        serve(args.host, args.port, args.mode)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
