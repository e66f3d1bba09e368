#!/usr/bin/env python3
"""Origin and decoder for CompressionTests (stdlib + pip brotli, zstandard).

Server:
    compress_origin.py serve --port P
    GET|HEAD /text?n=N[&kind=text|hex][&chunked=1][&type=T][&etag=E][&vary=V][&cc=C][&ce=E][&status=S][&range=1]
        N bytes of a deterministic, compressible text (see body()), Content-Type T
        (default text/plain; charset=utf-8), in 16 KiB writes; Content-Length
        unless chunked. Optional ETag, Vary, Cache-Control, Content-Encoding,
        status S (304/204: no body); range=1 answers 206 with Content-Range;
        die=1 sends a third of the body, then closes.
    Prints "listening P" once bound. HTTP/1.1 keep-alive.

Decoder (prints one JSON object):
    compress_origin.py decode --alg gzip|br|zstd|identity FILE
        -> {"length": L, "sha256": H, "ok": bool, "error": str|null}
    compress_origin.py expect N [--kind hex] -> {"length": N, "sha256": H}
"""

import argparse
import gzip
import hashlib
import json
import socketserver
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler

LINE = 64


def body(n, kind="text"):
    """kind text: very compressible lines; hex: sha256 hex lines (compresses
    to about half, so compressed output spans many buffers)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        if kind == "hex":
            out += hashlib.sha256(b"%d" % i).hexdigest().encode() + b"\n"
        else:
            out += b"%08d the quick brown fox jumps over the lazy dog, line of text\n" % i
        i += 1
    return bytes(out[:n])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.answer(head=True)

    def do_GET(self):
        self.answer(head=False)

    def answer(self, head):
        u = urllib.parse.urlparse(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()}
        n = int(q.get("n", "0"))
        status = int(q.get("status", "200"))
        chunked = q.get("chunked") == "1"
        data = body(n, q.get("kind", "text"))
        if q.get("range") == "1":
            status = 206
            data = data[: max(1, n // 2)]
        if status in (204, 304):
            data = b""
        self.send_response(status)
        self.send_header("Content-Type", q.get("type", "text/plain; charset=utf-8"))
        for key, name in (("etag", "ETag"), ("vary", "Vary"), ("cc", "Cache-Control"), ("ce", "Content-Encoding")):
            if key in q:
                self.send_header(name, q[key])
        if status == 206:
            self.send_header("Content-Range", "bytes 0-%d/%d" % (len(data) - 1, n))
        if status in (204, 304):
            self.end_headers()
            return
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if head:
            return
        if q.get("die") == "1":
            # Announce the whole body, send part of it, then close.
            self.wfile.write(data[: len(data) // 3])
            self.wfile.flush()
            self.close_connection = True
            return
        for off in range(0, len(data), 16384):
            piece = data[off:off + 16384]
            if chunked:
                self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
            else:
                self.wfile.write(piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    request_queue_size = 256  # h2load opens many upstream connections at once
    allow_reuse_address = True


def decode(alg, data):
    if alg == "gzip":
        return gzip.decompress(data)
    if alg == "br":
        import brotli
        return brotli.decompress(data)
    if alg == "zstd":
        import zstandard
        # Streaming frames carry no content size: read the stream to its end.
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, required=True)
    d = sub.add_parser("decode")
    d.add_argument("--alg", required=True)
    d.add_argument("file")
    e = sub.add_parser("expect")
    e.add_argument("n", type=int)
    e.add_argument("--kind", default="text")
    a = ap.parse_args()
    if a.cmd == "serve":
        srv = Server(("127.0.0.1", a.port), Handler)
        print("listening %d" % a.port, flush=True)
        srv.serve_forever()
    elif a.cmd == "decode":
        raw = open(a.file, "rb").read()
        try:
            out = decode(a.alg, raw)
            print(json.dumps({"length": len(out), "sha256": hashlib.sha256(out).hexdigest(), "ok": True, "error": None}))
        except Exception as ex:  # report, the test fails on ok=false
            print(json.dumps({"length": 0, "sha256": "", "ok": False, "error": str(ex)}))
    else:
        out = body(a.n, a.kind)
        print(json.dumps({"length": len(out), "sha256": hashlib.sha256(out).hexdigest()}))


if __name__ == "__main__":
    sys.exit(main())
