#!/usr/bin/env python3
"""Open N keep-alive connections, do one GET on each, then hold them idle.

  idle_conns.py PORT N READY_FILE [PATH]

Writes "<open connections>" to READY_FILE when all requests are answered,
then sleeps until killed (SIGTERM). Used to measure the proxy's RSS per idle
client connection (comparison/run: target "RSS per idle connection").
"""
import os
import selectors
import signal
import socket
import sys
import time

port, n, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
path = sys.argv[4] if len(sys.argv) > 4 else "/"
req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
sel = selectors.DefaultSelector()
socks, pending = [], {}
deadline = time.time() + 60
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(req)
    s.setblocking(False)
    socks.append(s)
    pending[s] = b""
    sel.register(s, selectors.EVENT_READ)
    # Keep the accept queue short: drain answers as we go.
    while len(pending) > 256 and time.time() < deadline:
        for key, _ in sel.select(timeout=1):
            data = key.fileobj.recv(65536)
            buf = pending[key.fileobj] + data
            if not data or (b"\r\n\r\n" in buf and len(buf.split(b"\r\n\r\n", 1)[1]) >= 64):
                sel.unregister(key.fileobj); del pending[key.fileobj]
            else:
                pending[key.fileobj] = buf
while pending and time.time() < deadline:
    for key, _ in sel.select(timeout=1):
        data = key.fileobj.recv(65536)
        buf = pending[key.fileobj] + data
        if not data or (b"\r\n\r\n" in buf and len(buf.split(b"\r\n\r\n", 1)[1]) >= 64):
            sel.unregister(key.fileobj); del pending[key.fileobj]
        else:
            pending[key.fileobj] = buf
if pending:
    print(f"idle_conns: {len(pending)} connections got no full answer", file=sys.stderr)
with open(ready + ".tmp", "w") as f:
    f.write(f"{n - len(pending)}\n")
os.rename(ready + ".tmp", ready)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    time.sleep(3600)
