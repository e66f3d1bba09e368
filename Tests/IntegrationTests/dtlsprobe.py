#!/usr/bin/env python3
"""Raw DTLS 1.2 probes for DTLSTests: hand-built ClientHellos (no DTLS client
library in Python's stdlib), garbage datagrams, and a client that stops after
the cookie exchange. Prints one JSON line."""
import argparse, json, os, socket, struct, time


def record(body, seq=0, version=0xFEFF, ctype=22, epoch=0):
    return struct.pack(">BHH", ctype, version, epoch) + seq.to_bytes(6, "big") + struct.pack(">H", len(body)) + body


def client_hello(cookie=b"", msg_seq=0):
    suites = [0xC02B, 0xC02F, 0xC02C, 0xC030]
    groups = struct.pack(">H", 2) + struct.pack(">H", 0x0017)
    sigalgs = struct.pack(">H", 6) + struct.pack(">HHH", 0x0403, 0x0804, 0x0401)
    ext = b""
    ext += struct.pack(">HH", 0x000A, len(groups)) + groups
    ext += struct.pack(">HH", 0x000B, 2) + b"\x01\x00"
    ext += struct.pack(">HH", 0x000D, len(sigalgs)) + sigalgs
    ext += struct.pack(">HH", 0x0017, 0)
    ext += struct.pack(">HH", 0xFF01, 1) + b"\x00"
    body = struct.pack(">H", 0xFEFD) + os.urandom(32) + b"\x00"
    body += bytes([len(cookie)]) + cookie
    body += struct.pack(">H", 2 * len(suites)) + b"".join(struct.pack(">H", s) for s in suites)
    body += b"\x01\x00" + struct.pack(">H", len(ext)) + ext
    n = len(body)
    hs = bytes([1]) + n.to_bytes(3, "big") + struct.pack(">H", msg_seq) + (0).to_bytes(3, "big") + n.to_bytes(3, "big") + body
    return record(hs, seq=msg_seq)


def parse_hvr(d):
    """Cookie of a HelloVerifyRequest datagram, or None."""
    if len(d) < 13 + 12 + 3 or d[0] != 22 or d[13] != 3:
        return None
    n = d[13 + 12 + 2]
    return d[13 + 12 + 3:13 + 12 + 3 + n]


def recv_all(s, seconds):
    out, end = [], time.time() + seconds
    while time.time() < end:
        s.settimeout(max(0.01, end - time.time()))
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        out.append((time.time(), d))
    return out


def sock():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def cmd_hello(a):
    """Cookie-less ClientHellos (and ones with a forged cookie) from `clients` ports."""
    hvr = server_hellos = 0
    cookies = set()
    for _ in range(a.clients):
        s = sock()
        s.sendto(client_hello(b"\x00" * 32 if a.forged else b""), ("127.0.0.1", a.port))
        for _, d in recv_all(s, 0.5):
            c = parse_hvr(d)
            if c is not None:
                hvr += 1
                cookies.add(c)
            elif d[:1] == b"\x16" and len(d) > 25 and d[13] == 2:
                server_hellos += 1
        s.close()
    print(json.dumps({"hvr": hvr, "server_hellos": server_hellos, "distinct_cookies": len(cookies)}), flush=True)


def cmd_garbage(a):
    """Datagrams that are not a ClientHello: random bytes, truncated and corrupt records."""
    s = sock()
    kinds = [
        lambda: os.urandom(1 + (os.urandom(1)[0] % 200)),
        lambda: b"",
        lambda: b"\x16\xfe\xfd" + os.urandom(8),
        lambda: client_hello()[:20],
        lambda: record(os.urandom(40)),
        lambda: record(b"\x01\xff\xff\xff" + os.urandom(30)),
        lambda: client_hello(os.urandom(32), msg_seq=1)[:-3],
        lambda: record(os.urandom(60), ctype=23, epoch=1),
    ]
    for i in range(a.count):
        s.sendto(kinds[i % len(kinds)](), ("127.0.0.1", a.port))
    replies = recv_all(s, 0.5)
    print(json.dumps({"sent": a.count, "replies": len(replies)}), flush=True)


def cmd_stall(a):
    """Cookie exchange, then a ClientHello with the cookie, then silence: the
    server's first flight must come again (retransmission) until it gives up."""
    s = sock()
    s.sendto(client_hello(), ("127.0.0.1", a.port))
    got = recv_all(s, 1.0)
    cookie = next((c for c in (parse_hvr(d) for _, d in got) if c is not None), None)
    if cookie is None:
        print(json.dumps({"hvr": False}), flush=True)
        return
    t0 = time.time()
    s.sendto(client_hello(cookie, msg_seq=1), ("127.0.0.1", a.port))
    got = recv_all(s, a.seconds)
    times = [round(t - t0, 2) for t, _ in got]
    first = [t for t in times if t < 0.5]
    print(json.dumps({"hvr": True, "datagrams": len(times), "first_flight": len(first),
                      "later": len(times) - len(first), "times": times}), flush=True)


def main():
    p = argparse.ArgumentParser()
    sp = p.add_subparsers(dest="cmd", required=True)
    h = sp.add_parser("hello"); h.add_argument("--port", type=int, required=True)
    h.add_argument("--clients", type=int, default=20); h.add_argument("--forged", action="store_true")
    g = sp.add_parser("garbage"); g.add_argument("--port", type=int, required=True); g.add_argument("--count", type=int, default=1000)
    st = sp.add_parser("stall"); st.add_argument("--port", type=int, required=True); st.add_argument("--seconds", type=float, default=4)
    a = p.parse_args()
    {"hello": cmd_hello, "garbage": cmd_garbage, "stall": cmd_stall}[a.cmd](a)


if __name__ == "__main__":
    main()
