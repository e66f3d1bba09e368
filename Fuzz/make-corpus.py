#!/usr/bin/env python3
"""Writes the seed corpora in Fuzz/corpus/<target>/ (committed; rerun after
changing the input layouts below). Input layouts, as the targets read them:

  request   byte 0 limits (0 = defaults, 1 = tiny), byte 1 header-table capacity
            (>= 0xF0 -> 128), then the bytes received so far.
  response  byte 0 request method (HTTPMethod raw value: 0 GET, 1 HEAD, 5 CONNECT),
            byte 1 limits, byte 2 capacity, then the bytes.
  chunked   byte 0 maxTrailerBytes choice (5 = 16384), byte 1 split count (& 15),
            one byte per split point, then the body stream.
  proxy     the bytes as received.
  config    YAML text (examples/*.yaml are copied in as well).

Usage: Fuzz/make-corpus.py   (from anywhere; rewrites only the files it names)
"""
import os, struct, shutil

ROOT = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(ROOT, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("latin-1")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


DEFAULT, TINY = b"\x00", b"\x01"
CAP = b"\xf0"

requests = {
    "get": "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "get-curl": "GET /api/echo?x=1&y=%20 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
    "post-cl": "POST /submit?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"a\": \"body\"}",
    "post-chunked": "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "post-gzip-chunked": "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    "pipelined": "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "leading-crlf-absolute": "\r\n\r\nGET http://a.com/x?q HTTP/1.1\r\nHost: a.com\r\nConnection: keep-alive, Upgrade\r\nUpgrade: h2c\r\n\r\n",
    "absolute-https-no-path": "GET https://[::1]:8443?q=1 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n",
    "http10": "GET / HTTP/1.0\r\n\r\n",
    "http10-keepalive": "GET /a HTTP/1.0\r\nConnection: keep-alive\r\nHost: a\r\n\r\n",
    "options-star": "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "connect": "CONNECT a.com:443 HTTP/1.1\r\nHost: a.com:443\r\n\r\n",
    "websocket": "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    "expect-continue": "PUT /big HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1073741824\r\n\r\n",
    "hop-by-hop": "GET / HTTP/1.1\r\nHost: a\r\nConnection: close, x-secret, keep-alive\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: x\r\nVia: 1.1 p\r\nX-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: a\r\nX-Request-Id: abc\r\nProxy-Authorization: Basic x\r\n\r\n",
    "ows-empty": "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Spaces: \t a b \t \r\nX-Obs: \x80\xff\r\n\r\n",
    "cl-list": "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\nhello",
    "methods": "PATCH /x HTTP/1.1\r\nHost: a\r\n\r\n",
    "delete": "DELETE /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    "trace": "TRACE / HTTP/1.1\r\nHost: a\r\n\r\n",
    "custom-method": "PROPFIND /dav HTTP/1.1\r\nHost: a\r\nDepth: 1\r\n\r\n",
    # Malformed inputs the parser must refuse (smuggling shapes).
    "bad-cl-te": "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
    "bad-te-chunked-twice": "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
    "bad-obs-fold": "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
    "bad-bare-lf": "GET / HTTP/1.1\nHost: a\n\n",
    "bad-space-before-colon": "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    "bad-two-hosts": "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "bad-version": "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    "bad-cl-plus": "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
    "partial": "GET /partial HTTP/1.1\r\nHost: a\r\nX-A: b",
}
for name, raw in requests.items():
    write("request", name, DEFAULT + CAP + raw.encode("latin-1"))
write("request", "tiny-limits", TINY + b"\x03" + b"GET /aaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n")
write("request", "few-slots", DEFAULT + b"\x02" + requests["hop-by-hop"].encode())

GET, HEAD, CONNECT = b"\x00", b"\x01", b"\x05"
responses = {
    "200-cl": (GET, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 16\r\n\r\nhello from edge\n"),
    "200-chunked": (GET, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    "200-gzip-chunked": (GET, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
    "200-te-and-cl": (GET, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
    "200-until-close": (GET, "HTTP/1.1 200 OK\r\nServer: x\r\n\r\nbody until close"),
    "200-no-reason": (GET, "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"),
    "http10-keepalive": (GET, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx"),
    "204": (GET, "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"),
    "304": (GET, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"),
    "100-then-200": (GET, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    "101-websocket": (GET, "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"),
    "103": (GET, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"),
    "head-cl": (HEAD, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"),
    "connect-200": (CONNECT, "HTTP/1.1 200 Connection established\r\n\r\n"),
    "connect-407": (CONNECT, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\nContent-Length: 2\r\n\r\nno"),
    "502-close": (GET, "\r\nHTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nx-edge-error: upstream\r\nContent-Length: 0\r\n\r\n"),
    "set-cookies": (GET, "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nVary: Accept-Encoding\r\nContent-Length: 0\r\n\r\n"),
    "bad-cl-conflict": (GET, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
    "bad-status": (GET, "HTTP/1.1 20 OK\r\n\r\n"),
    "partial": (GET, "HTTP/1.1 200 OK\r\nContent-Le"),
}
for name, (method, raw) in responses.items():
    write("response", name, method + DEFAULT + CAP + raw.encode("latin-1"))

BIG_TRAILER = b"\x05"
chunked = {
    "simple": "5\r\nhello\r\n0\r\n\r\n",
    "multi-then-next": "4\r\nWiki\r\n6\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
    "hex-upper-lower": "1A\r\nabcdefghijklmnopqrstuvwxyz\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
    "extensions": "10;a=\"\\\"q\";b=tok ; c\r\n0123456789abcdef\r\n0;last\r\n\r\n",
    "trailers": "3\r\nabc\r\n0\r\nExpires: never\r\nX-Checksum: 1234\r\n\r\n",
    "leading-zeros": "0005\r\nhello\r\n000\r\n\r\n",
    "bad-size": "zz\r\n",
    "bad-bare-lf": "5\nhello\n0\n\n",
    "bad-missing-crlf": "5\r\nhelloX0\r\n\r\n",
    "bad-too-large": "ffffffffffffffffff\r\n",
    "bad-ws-before-crlf": "5 \r\nhello\r\n0\r\n\r\n",
    "partial": "8\r\nabc",
}
for name, raw in chunked.items():
    write("chunked", name, BIG_TRAILER + b"\x00" + raw.encode("latin-1"))
write("chunked", "split-3", BIG_TRAILER + b"\x03\x10\x40\xa0" + chunked["multi-then-next"].encode())
write("chunked", "tiny-trailer", b"\x01\x01\x80" + chunked["trailers"].encode())

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
def v2(cmd, fam, block):
    return SIG + bytes([0x20 | cmd, fam]) + struct.pack(">H", len(block)) + block
ip4 = bytes([192, 0, 2, 1]) + bytes([198, 51, 100, 7]) + struct.pack(">HH", 51234, 443)
ip6 = bytes.fromhex("20010db8000000000000000000000001") + bytes.fromhex("20010db8000000000000000000000002") + struct.pack(">HH", 40000, 8080)
tlv = bytes([0x01, 0x00, 0x02]) + b"h2" + bytes([0x04, 0x00, 0x00]) + bytes([0x05, 0x00, 0x04]) + b"uniq"
proxy = {
    "v1-tcp4": b"PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\nGET / HTTP/1.1\r\n",
    "v1-tcp6": b"PROXY TCP6 2001:db8::1 ::ffff:192.0.2.1 0 65535\r\n",
    "v1-tcp6-full": b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff fe80:0:0:0:0:0:0:1 65535 65535\r\n",
    "v1-unknown": b"PROXY UNKNOWN\r\n",
    "v1-unknown-rest": b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
    "v1-bad-leading-zero": b"PROXY TCP4 192.0.2.01 198.51.100.7 1 2\r\n",
    "v1-partial": b"PROXY TCP4 192.0.2.1 198.5",
    "v2-tcp4": v2(1, 0x11, ip4) + b"payload",
    "v2-udp4": v2(1, 0x12, ip4),
    "v2-tcp6": v2(1, 0x21, ip6),
    "v2-tcp4-tlvs": v2(1, 0x11, ip4 + tlv),
    "v2-local": v2(0, 0x00, b""),
    "v2-local-unix": v2(0, 0x31, b"\x00" * 216),
    "v2-proxy-unspec": v2(1, 0x00, b"\x01\x02\x03"),
    "v2-bad-tlv": v2(1, 0x11, ip4 + bytes([0x01, 0x00, 0x09]) + b"x"),
    "v2-partial": v2(1, 0x21, ip6)[:30],
}
for name, raw in proxy.items():
    write("proxy", name, raw)

configs = {
    "minimal": """listeners:
  - name: web
    address: 127.0.0.1:8080
    routes:
      - match: { path: "/" }
        direct_response: { status: 200, body: "ok" }
""",
    "cluster": """runtime: { workers: 2, log_format: json, buffer_size: 16KiB, buffer_count: 256 }
admin: { address: off }
clusters:
  - name: api
    endpoints: ["127.0.0.1:9000", "[::1]:9001", "localhost:9002"]
    balance: least_connections
listeners:
  - name: web
    address: "[::]:8080"
    routes:
      - match: { path_prefix: "/api/", methods: [GET, POST] }
        cluster: api
        strip_prefix: true
        timeout: 5s
""",
    "tcp": """listeners:
  - name: redis
    address: 0.0.0.0:6380
    protocol: tcp
    cluster: redis
clusters:
  - name: redis
    endpoints: [127.0.0.1:6379]
""",
    "invalid-port": """listeners:
  - name: web
    address: 127.0.0.1:99999
""",
    "invalid-yaml": "listeners: [ {name: web, address: \n",
    "anchors": """clusters:
  - name: a
    endpoints: ["127.0.0.1:9000", {address: "127.0.0.2:9000", weight: 2}]
    balance: consistent_hash
    hash_on: { cookie: session }
  - name: b
    endpoints: ["[2001:db8::1]:80", "127.0.0.1:1"]
    balance: random_two
    dns_refresh: 30s
    proxy_protocol: v1
listeners:
  - name: web
    address: 127.0.0.1:8080
    max_connections: 1000
    max_connections_per_ip: 10
    http: { max_body: 1MiB, min_body_rate: 1KiB, max_headers: 10 }
    routes:
      - match: &m { host: "*.Example.com.", path_regex: "^/(a|b)+$", headers: [ {name: x-a, regex: "^b"} ] }
        clusters: [ {name: a, weight: 1}, {name: b, weight: 0} ]
      - match: *m
        cluster: b
        response_headers: { set: { x-route: two }, remove: [server] }
      - match: { query: [ {name: q, exact: "1"} ], methods: [get, PROPFIND] }
        direct_response: { status: 204, headers: { x-a: b } }
""",
    "dns-name": """clusters:
  - name: db
    endpoints: ["db.internal:5432"]
listeners:
  - name: db
    address: 127.0.0.1:15432
    protocol: tcp
    cluster: db
""",
}
for name, text in configs.items():
    write("config", name + ".yaml", text)
examples = os.path.join(ROOT, "..", "examples")
for f in sorted(os.listdir(examples)):
    if f.endswith(".yaml"):
        shutil.copy(os.path.join(examples, f), os.path.join(CORPUS, "config", "example-" + f))
