#!/usr/bin/env python3
"""Frame-level HTTP/2 client for Edge's integration tests (HTTP2Tests.swift).

    h2probe.py request --port P --headers JSON [--body TEXT] [--no-end]
        One stream with exactly these header fields (python `h2` with its own
        validation switched off, so malformed fields really go out). Prints
        JSON: {"status", "headers", "body", "reset", "goaway"}.

    h2probe.py attack --port P --kind KIND [--count N]
        Raw frames (hand-built, hpack for header blocks) for one abuse pattern:
        rapid_reset, ping_flood, settings_flood, empty_data, continuation,
        hpack_bomb, zero_window. Reads until GOAWAY or close and prints JSON:
        {"goaway": code or null, "closed": bool, "frames": n}.

Every run is bounded in time (socket timeouts, --seconds).
"""

import argparse
import json
import socket
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream & 0x7FFFFFFF) + payload


def request_mode(a):
    import h2.config
    import h2.connection
    import h2.events
    cfg = h2.config.H2Configuration(client_side=True, header_encoding=None, validate_outbound_headers=False,
                                    normalize_outbound_headers=False, validate_inbound_headers=False,
                                    normalize_inbound_headers=False)
    conn = h2.connection.H2Connection(config=cfg)
    s = socket.create_connection(("127.0.0.1", a.port), timeout=a.seconds)
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    headers = [(n.encode(), v.encode("latin-1")) for n, v in json.loads(a.headers)]
    sid = conn.get_next_available_stream_id()
    body = a.body.encode() if a.body is not None else b""
    end_on_headers = not body and not a.no_end
    conn.send_headers(sid, headers, end_stream=end_on_headers)
    if body:
        conn.send_data(sid, body, end_stream=not a.no_end)
    s.sendall(conn.data_to_send())
    out = {"status": None, "headers": [], "body": "", "reset": None, "goaway": None}
    buf = b""
    deadline = time.time() + a.seconds
    done = False
    while not done and time.time() < deadline:
        try:
            data = s.recv(65536)
        except socket.timeout:
            break
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                for n, v in ev.headers:
                    n = n.decode() if isinstance(n, bytes) else n
                    v = v.decode("latin-1") if isinstance(v, bytes) else v
                    if n == ":status":
                        out["status"] = int(v)
                    else:
                        out["headers"].append([n, v])
            elif isinstance(ev, h2.events.TrailersReceived) and ev.stream_id == sid:
                for n, v in ev.headers:
                    out["headers"].append([n.decode() if isinstance(n, bytes) else n, v.decode("latin-1") if isinstance(v, bytes) else v])
            elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                buf += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, sid)
            elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                done = True
            elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                out["reset"] = int(ev.error_code)
                done = True
            elif isinstance(ev, h2.events.ConnectionTerminated):
                out["goaway"] = int(ev.error_code)
                done = True
        pending = conn.data_to_send()
        if pending:
            s.sendall(pending)
    out["body"] = buf.decode("latin-1")
    s.close()
    print(json.dumps(out))


def slow_stream_mode(a):
    """Stream 1 asks for a large body and never opens its stream window (only
    the connection window is kept open); stream 3 must still complete."""
    import h2.config
    import h2.connection
    import h2.events
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    s = socket.create_connection(("127.0.0.1", a.port), timeout=a.seconds)
    conn.initiate_connection()
    hdr = lambda p: [(":method", "GET"), (":scheme", "http"), (":authority", "127.0.0.1"), (":path", p)]
    conn.send_headers(1, hdr("/bytes?n=2000000"), end_stream=True)
    s.sendall(conn.data_to_send())
    time.sleep(0.3)
    conn.send_headers(3, hdr("/echo"), end_stream=True)
    s.sendall(conn.data_to_send())
    out = {"slow_bytes": 0, "fast_status": None, "fast_done": False}
    deadline = time.time() + a.seconds
    while not out["fast_done"] and time.time() < deadline:
        try:
            data = s.recv(65536)
        except socket.timeout:
            break
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == 3:
                out["fast_status"] = int(dict(ev.headers)[":status"])
            elif isinstance(ev, h2.events.DataReceived):
                if ev.stream_id == 1:
                    out["slow_bytes"] += len(ev.data)
                    if ev.flow_controlled_length:
                        conn.increment_flow_control_window(ev.flow_controlled_length)  # connection only
                else:
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == 3:
                out["fast_done"] = True
        pending = conn.data_to_send()
        if pending:
            s.sendall(pending)
    s.close()
    print(json.dumps(out))


def hpack_literal(name, value):
    """Literal header field without indexing, new name (RFC 7541 §6.2.2), short strings."""
    def s(b):
        assert len(b) < 127
        return bytes([len(b)]) + b
    return b"\x00" + s(name) + s(value)


def get_block(path=b"/echo", extra=b""):
    # :method GET (2), :scheme http (6), :path literal, :authority literal
    return b"\x82\x86" + b"\x04" + bytes([len(path)]) + path + b"\x01" + bytes([9]) + b"127.0.0.1" + extra


def attack_mode(a):
    s = socket.create_connection(("127.0.0.1", a.port), timeout=a.seconds)
    kind, n = a.kind, a.count
    settings = b""
    if kind == "zero_window":
        settings = struct.pack(">HI", 4, 0)  # SETTINGS_INITIAL_WINDOW_SIZE = 0
    out = bytearray(PREFACE + frame(SETTINGS, 0, 0, settings))
    if kind == "rapid_reset":
        for k in range(n):
            sid = 1 + 2 * k
            out += frame(HEADERS, END_HEADERS | END_STREAM, sid, get_block())
            out += frame(RST_STREAM, 0, sid, struct.pack(">I", 8))  # CANCEL
    elif kind == "ping_flood":
        for k in range(n):
            out += frame(PING, 0, 0, struct.pack(">Q", k))
    elif kind == "settings_flood":
        for _ in range(n):
            out += frame(SETTINGS, 0, 0, b"")
    elif kind == "empty_data":
        out += frame(HEADERS, END_HEADERS, 1, b"\x83\x86" + b"\x04\x05/echo" + b"\x01\x09127.0.0.1")
        for _ in range(n):
            out += frame(DATA, 0, 1, b"")
    elif kind == "continuation":
        out += frame(HEADERS, 0, 1, get_block())
        for k in range(n):
            out += frame(CONTINUATION, 0, 1, hpack_literal(b"x-filler-%d" % k, b"y" * 50))
    elif kind == "hpack_bomb":
        # One 4000-byte field added to the dynamic table, then referenced by index
        # (one byte each, index 62) until the frame is full: megabytes decoded.
        big = b"x" * 4000
        name = b"x-bomb"
        def length(v):
            if v < 127:
                return bytes([v])
            v -= 127
            b = bytearray([127])
            while v >= 128:
                b.append((v & 0x7F) | 0x80)
                v >>= 7
            b.append(v)
            return bytes(b)
        lit = b"\x40" + bytes([len(name)]) + name + length(len(big)) + big
        block = get_block() + lit
        block += b"\xbe" * (16000 - len(block))  # indexed field 62
        out += frame(HEADERS, END_HEADERS | END_STREAM, 1, block)
    elif kind == "zero_window":
        out += frame(HEADERS, END_HEADERS | END_STREAM, 1, get_block(b"/bytes?n=200000"))
    s.sendall(bytes(out))
    result = {"goaway": None, "closed": False, "frames": 0, "data_frames": 0}
    buf = b""
    deadline = time.time() + a.seconds
    while time.time() < deadline:
        try:
            data = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            result["closed"] = True
            break
        if not data:
            result["closed"] = True
            break
        buf += data
        while len(buf) >= 9:
            length = int.from_bytes(buf[0:3], "big")
            if len(buf) < 9 + length:
                break
            ftype, payload = buf[3], buf[9:9 + length]
            buf = buf[9 + length:]
            result["frames"] += 1
            if ftype == DATA:
                result["data_frames"] += 1
            if ftype == SETTINGS and not (payload and False):
                pass
            if ftype == GOAWAY and result["goaway"] is None:
                result["goaway"] = int.from_bytes(payload[4:8], "big")
    s.close()
    print(json.dumps(result))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("request")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--headers", required=True)
    r.add_argument("--body")
    r.add_argument("--no-end", action="store_true")
    r.add_argument("--seconds", type=float, default=5)
    t = sub.add_parser("attack")
    t.add_argument("--port", type=int, required=True)
    t.add_argument("--kind", required=True)
    t.add_argument("--count", type=int, default=5000)
    t.add_argument("--seconds", type=float, default=10)
    w = sub.add_parser("slow_stream")
    w.add_argument("--port", type=int, required=True)
    w.add_argument("--seconds", type=float, default=10)
    a = p.parse_args()
    if a.mode == "slow_stream":
        slow_stream_mode(a)
    elif a.mode == "request":
        request_mode(a)
    else:
        attack_mode(a)


if __name__ == "__main__":
    sys.exit(main())
