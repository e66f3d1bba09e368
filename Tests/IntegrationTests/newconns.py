#!/usr/bin/env python3
"""New-connection loop for the upgrade test: one TCP connection per request
(Connection: close), back to back on `threads` threads for `duration` s.
Prints {"ok": n, "failed": n, "errors": {"<kind>": n}} as one JSON line."""
import json, socket, sys, threading, time, collections

port, duration, threads = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
lock = threading.Lock()
ok = 0
errors = collections.Counter()

def run(stop_at):
    global ok
    mine_ok, mine_err = 0, collections.Counter()
    req = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    while time.time() < stop_at:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(req)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            s.close()
            if data.startswith(b"HTTP/1.1 200"):
                mine_ok += 1
            else:
                mine_err["status " + data[:12].decode("latin1", "replace")] += 1
        except Exception as e:
            mine_err[type(e).__name__] += 1
    with lock:
        ok += mine_ok
        errors.update(mine_err)

stop_at = time.time() + duration
ts = [threading.Thread(target=run, args=(stop_at,)) for _ in range(threads)]
for t in ts: t.start()
for t in ts: t.join()
print(json.dumps({"ok": ok, "failed": sum(errors.values()), "errors": dict(errors)}), flush=True)
