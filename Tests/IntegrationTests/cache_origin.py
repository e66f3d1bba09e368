#!/usr/bin/env python3
"""Origin for the response-cache tests (CacheTests.swift). Python 3 stdlib only.

    cache_origin.py --port P

Every GET/HEAD under any path answers 200 with a body naming the path and a
per-path request counter, shaped by query parameters:

    cc=VALUE       Cache-Control value (URL-encoded)
    etag=TAG       ETag "TAG"; a request whose If-None-Match lists it gets 304
    lm=1           Last-Modified: a fixed date; If-Modified-Since >= it gets 304
    vary=NAME      Vary: NAME, and the body echoes that request header
    size=N         body padded to N bytes
    delay=MS       wait before answering (coalescing tests)
    cookie=1       Set-Cookie: s=1
    expires=S      Expires S seconds from now (with Date)

GET /_stats (not counted) returns JSON: {"total": n, "paths": {path: n},
"inm": {path: [If-None-Match values seen]}, "ims": {path: [...]}}.
"""

import argparse
import json
import sys
import threading
import time
import urllib.parse
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
COUNTS = {}
INM = {}
IMS = {}
TOTAL = [0]
LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head=False):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        if url.path == "/_stats":
            with LOCK:
                body = json.dumps({"total": TOTAL[0], "paths": COUNTS, "inm": INM, "ims": IMS}).encode()
            return self.reply(200, {"Content-Type": "application/json"}, body, head)
        key = self.path
        with LOCK:
            TOTAL[0] += 1
            COUNTS[key] = COUNTS.get(key, 0) + 1
            n = COUNTS[key]
            inm = self.headers.get("If-None-Match")
            ims = self.headers.get("If-Modified-Since")
            if inm is not None:
                INM.setdefault(key, []).append(inm)
            if ims is not None:
                IMS.setdefault(key, []).append(ims)
        if "delay" in q:
            time.sleep(int(q["delay"]) / 1000.0)
        headers = {"Content-Type": "text/plain"}
        if "cc" in q:
            headers["Cache-Control"] = q["cc"]
        if "expires" in q:
            now = time.time()
            headers["Date"] = formatdate(now, usegmt=True)
            headers["Expires"] = formatdate(now + int(q["expires"]), usegmt=True)
        if "cookie" in q:
            headers["Set-Cookie"] = "s=1"
        etag = None
        if "etag" in q:
            etag = '"%s"' % q["etag"]
            headers["ETag"] = etag
        if "lm" in q:
            headers["Last-Modified"] = LAST_MODIFIED
        if etag is not None and inm is not None and etag in [t.strip() for t in inm.split(",")]:
            return self.reply(304, headers, b"", head)
        if "lm" in q and inm is None and ims == LAST_MODIFIED:
            return self.reply(304, headers, b"", head)
        text = "path=%s n=%d" % (key, n)
        if "vary" in q:
            headers["Vary"] = q["vary"]
            text += " %s=%s" % (q["vary"], self.headers.get(q["vary"], "-"))
        body = (text + "\n").encode()
        if "size" in q:
            size = int(q["size"])
            body = (body + b"." * size)[:size] if size >= len(body) else body[:size]
        self.reply(200, headers, body, head)

    def reply(self, status, headers, body, head):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and status != 304:
            self.wfile.write(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args()
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 256
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print("listening", a.port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
