#!/usr/bin/env python3
"""Raw-socket recording upstream for Edge's request-smuggling probes
(SmugglingTests.swift). Python 3 stdlib only.

    recorder.py --port P --dir D

Every TCP connection gets a number N (1, 2, ...). All bytes received on it are
appended, unmodified and in order, to D/conn-NNNNN.bin (flushed after every
recv). When the peer closes (or the connection fails) an empty marker file
D/conn-NNNNN.closed is created. D/ready appears once the socket listens.

The recorder answers every request it can frame by a *strict* reading of RFC
9112 with a fixed small keep-alive response:

    HTTP/1.1 200 OK
    Content-Length: <n>
    X-Recorder: conn=N req=K

    rec conn=N req=K

Strict means: CRLF line endings only, `method SP target SP HTTP/1.x`, header
names made of tchars followed directly by ":", no obs-fold, at most one
Content-Length field whose value is 1*DIGIT, Transfer-Encoding (at most one
field) exactly "chunked", never both. Anything else is not guessed at: the
recorder stops answering on that connection and only keeps recording, so the
test (which re-parses the recorded bytes itself) sees exactly what arrived.
"""

import argparse
import os
import socket
import sys
import threading

TCHAR = set(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
HEX = set(b"0123456789abcdefABCDEF")
MAX_HEAD = 256 * 1024


class Unframeable(Exception):
    pass


def _line(buf, pos):
    """(line, next) for a CRLF-terminated line at pos; None if incomplete."""
    i = buf.find(b"\n", pos)
    if i < 0:
        if len(buf) - pos > MAX_HEAD:
            raise Unframeable("line too long")
        return None
    if i == pos or buf[i - 1] != 0x0D:
        raise Unframeable("bare LF")
    line = buf[pos:i - 1]
    if b"\r" in line:
        raise Unframeable("bare CR")
    return line, i + 1


def _is_token(b):
    return len(b) > 0 and all(c in TCHAR for c in b)


def frame(buf):
    """Length of the first complete request in buf, None if incomplete.
    Raises Unframeable if it cannot be framed strictly."""
    r = _line(buf, 0)
    if r is None:
        return None
    start, pos = r
    parts = start.split(b" ")
    if len(parts) != 3 or not _is_token(parts[0]) or not parts[1] or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise Unframeable("bad request line %r" % start[:100])
    cls, tes = [], []
    while True:
        r = _line(buf, pos)
        if r is None:
            return None
        line, pos = r
        if line == b"":
            break
        colon = line.find(b":")
        if colon <= 0 or not _is_token(line[:colon]):
            raise Unframeable("bad field line %r" % line[:100])
        name = line[:colon].lower()
        value = line[colon + 1:].strip(b" \t")
        if name == b"content-length":
            cls.append(value)
        elif name == b"transfer-encoding":
            tes.append(value)
    if cls and tes:
        raise Unframeable("both Content-Length and Transfer-Encoding")
    if len(cls) > 1 or len(tes) > 1:
        raise Unframeable("repeated framing header")
    if tes:
        if tes[0].lower() != b"chunked":
            raise Unframeable("Transfer-Encoding %r" % tes[0])
        return _chunked(buf, pos)
    if cls:
        v = cls[0]
        if not v or not v.isdigit() or len(v) > 18:
            raise Unframeable("Content-Length %r" % v)
        n = int(v)
        return pos + n if len(buf) >= pos + n else None
    return pos


def _chunked(buf, pos):
    while True:
        r = _line(buf, pos)
        if r is None:
            return None
        line, pos = r
        size_part = line.split(b";", 1)[0]
        if not size_part or len(size_part) > 16 or not all(c in HEX for c in size_part):
            raise Unframeable("chunk size line %r" % line[:100])
        size = int(size_part, 16)
        if size == 0:
            break
        if len(buf) < pos + size + 2:
            return None
        if buf[pos + size:pos + size + 2] != b"\r\n":
            raise Unframeable("chunk data not followed by CRLF")
        pos += size + 2
    while True:  # trailer section
        r = _line(buf, pos)
        if r is None:
            return None
        line, pos = r
        if line == b"":
            return pos
        colon = line.find(b":")
        if colon <= 0 or not _is_token(line[:colon]):
            raise Unframeable("bad trailer line %r" % line[:100])


class Recorder:
    def __init__(self, directory):
        self.dir = directory
        self.lock = threading.Lock()
        self.next_id = 0

    def handle(self, sock):
        with self.lock:
            self.next_id += 1
            cid = self.next_id
        base = os.path.join(self.dir, "conn-%05d" % cid)
        buf = b""
        answered = 0
        broken = False
        try:
            with open(base + ".bin", "wb") as f:
                while True:
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        break
                    if not data:
                        break
                    f.write(data)
                    f.flush()
                    if broken:
                        continue
                    buf += data
                    while True:
                        try:
                            n = frame(buf)
                        except Unframeable as e:
                            sys.stderr.write("conn %d: not framing further: %s\n" % (cid, e))
                            broken = True
                            break
                        if n is None:
                            break
                        buf = buf[n:]
                        answered += 1
                        body = b"rec conn=%d req=%d\n" % (cid, answered)
                        head = (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Recorder: conn=%d req=%d\r\n\r\n"
                                % (len(body), cid, answered))
                        try:
                            sock.sendall(head + body)
                        except OSError:
                            broken = True
                            break
        finally:
            try:
                sock.close()
            except OSError:
                pass
            open(base + ".closed", "wb").close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    rec = Recorder(a.dir)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.host, a.port))
    ls.listen(128)
    with open(os.path.join(a.dir, "ready"), "w") as f:
        f.write(str(a.port))
    while True:
        s, _ = ls.accept()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=rec.handle, args=(s,), daemon=True).start()


if __name__ == "__main__":
    main()
