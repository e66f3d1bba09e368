#!/usr/bin/env python3
"""gRPC peer for GRPCTests.swift and UpstreamHTTP2Tests.swift (grpcio, generic
handlers over raw bytes: messages are plain byte strings, no codegen).

  serve --port P [--max-streams N] [--cert PEM --key PEM]   the upstream behind Edge (TLS with --cert)
  call  --target HOST:PORT SCENARIO    a client in front of Edge, prints JSON
  raw   --port P --path /svc/M --timeout 300m   one h2 request with grpc-timeout
                                       and no client deadline (python h2), prints JSON

Unary requests: b"sleep:MS" sleeps and answers its connection's peer address, b"notfound" aborts NOT_FOUND with trailer
metadata.
"""
import argparse, json, socket, sys, threading, time
from concurrent import futures

SERVICE = "edge.test.Echo"
ident = lambda b: b


def serve(args):
    import grpc

    def unary(req, ctx):
        if req.startswith(b"sleep:"):
            time.sleep(int(req[6:]) / 1000.0)
            return ctx.peer().encode()
        if req == b"notfound":
            ctx.set_trailing_metadata((("x-detail", "no such thing"), ("x-bin-bin", b"\x00\x01\x02")))
            ctx.abort(grpc.StatusCode.NOT_FOUND, "thing not found")
        if req == b"peer":
            return ctx.peer().encode()
        md = dict(ctx.invocation_metadata())
        ctx.set_trailing_metadata((("x-trailer", "t-" + md.get("x-meta", "none")),))
        return b"echo:" + req

    def server_stream(req, ctx):
        for i in range(int(req or b"3")):
            yield b"msg-%d" % i

    def client_stream(it, ctx):
        return b"+".join(it)

    def bidi(it, ctx):
        for m in it:
            yield b"re:" + m

    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, ident, ident),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, ident, ident),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream, ident, ident),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi, ident, ident),
    })
    opts = []
    if args.max_streams:
        opts.append(("grpc.max_concurrent_streams", args.max_streams))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64), options=opts)
    server.add_generic_rpc_handlers((handler,))
    if args.cert:
        creds = grpc.ssl_server_credentials([(open(args.key, "rb").read(), open(args.cert, "rb").read())])
        server.add_secure_port("127.0.0.1:%d" % args.port, creds)
    else:
        server.add_insecure_port("127.0.0.1:%d" % args.port)
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


def outcome(fn):
    import grpc
    try:
        v = fn()
        return {"code": "OK", "value": v}
    except grpc.RpcError as e:
        md = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in (e.trailing_metadata() or ())}
        return {"code": e.code().name, "details": e.details(), "trailers": md}


def call(args):
    import grpc
    ch = grpc.insecure_channel(args.target)
    m = lambda kind, name: getattr(ch, kind)("/%s/%s" % (args.service, name), request_serializer=ident, response_deserializer=ident)
    out = {}
    s = args.scenario
    if s == "all":
        def unary():
            r, c = m("unary_unary", "Unary").with_call(b"hello", timeout=10, metadata=(("x-meta", "m1"),))
            return {"reply": r.decode(), "trailers": dict(c.trailing_metadata())}
        out["unary"] = outcome(unary)
        out["server_stream"] = outcome(lambda: [x.decode() for x in m("unary_stream", "ServerStream")(b"5", timeout=10)])
        out["client_stream"] = outcome(lambda: m("stream_unary", "ClientStream")(iter([b"a", b"b", b"c"]), timeout=10).decode())
        out["bidi"] = outcome(lambda: [x.decode() for x in m("stream_stream", "Bidi")(iter([b"x", b"y", b"z"]), timeout=10)])
        big = b"B" * 300_000
        out["big"] = outcome(lambda: len(m("unary_unary", "Unary")(big, timeout=20)))
        out["not_found"] = outcome(lambda: m("unary_unary", "Unary")(b"notfound", timeout=10))
        t0 = time.time()
        out["deadline"] = outcome(lambda: m("unary_unary", "Unary")(b"sleep:3000", timeout=0.5))
        out["deadline_seconds"] = time.time() - t0
    elif s == "nodeadline-sleep":
        t0 = time.time()
        out["result"] = outcome(lambda: m("unary_unary", "Unary")(b"sleep:3000"))
        out["seconds"] = time.time() - t0
    elif s == "unary":
        out["result"] = outcome(lambda: m("unary_unary", "Unary")(b"hi", timeout=10).decode())
    elif s == "peers":
        # Concurrent slow calls over several client connections: which upstream connections served them.
        chans = [grpc.insecure_channel(args.target, options=(("grpc.use_local_subchannel_pool", 1),)) for _ in range(3)]
        calls = [c.unary_unary("/%s/Unary" % args.service, request_serializer=ident, response_deserializer=ident) for c in chans]
        calls[0](b"peer", timeout=10)  # warm: Edge learns the upstream's SETTINGS
        peers = [None] * args.count

        def one(i):
            try:
                peers[i] = calls[i % 3](b"sleep:%d" % args.sleep_ms, timeout=20).decode()
            except grpc.RpcError as e:
                peers[i] = "error:%s: %s %s" % (e.code().name, e.details(), dict(e.trailing_metadata() or ()))
        # `count` streams open at once; each answer names the upstream connection that carried it.
        ths = [threading.Thread(target=one, args=(i,)) for i in range(args.count)]
        for t in ths: t.start()
        for t in ths: t.join()
        out["errors"] = [p for p in peers if p is None or p.startswith("error:")]
        out["peers"] = sorted(set(p for p in peers if p and not p.startswith("error:")))
    print(json.dumps(out))


def raw(args):
    """One gRPC-shaped request with grpc-timeout and no client-side deadline."""
    import h2.connection, h2.events, h2.config
    sock = socket.create_connection(("127.0.0.1", args.port), timeout=15)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    headers = [(":method", "POST"), (":scheme", "http"), (":authority", "127.0.0.1:%d" % args.port), (":path", args.path),
               ("content-type", "application/grpc"), ("te", "trailers")]
    if args.timeout:
        headers.append(("grpc-timeout", args.timeout))
    conn.send_headers(sid, headers)
    body = args.body.encode()
    conn.send_data(sid, b"\x00" + len(body).to_bytes(4, "big") + body, end_stream=True)
    sock.sendall(conn.data_to_send())
    print("sent", file=sys.stderr, flush=True)
    t0 = time.time()
    out = {"headers": {}, "trailers": {}, "data": 0}
    done = False
    pending = b""
    # Frames are fed one at a time: python-h2 refuses every frame after a
    # GOAWAY, which RFC 9113 allows for streams up to its last id, so those
    # are decoded here (HPACK state stays python-h2's).
    while not done:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            out["error"] = "timeout"
            break
        if not data:
            break
        pending += data
        while len(pending) >= 9 and not done:
            n = int.from_bytes(pending[:3], "big")
            if len(pending) < 9 + n:
                break
            frame, pending = pending[:9 + n], pending[9 + n:]
            ftype, flags = frame[3], frame[4]
            if "goaway" in out:
                if ftype == 1:  # HEADERS (Edge neither pads nor sends priority)
                    fields = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                              for k, v in conn.decoder.decode(frame[9:])}
                    out["trailers" if out["headers"] else "headers"] = fields
                elif ftype == 0:
                    out["data"] += n
                if flags & 0x1 and ftype in (0, 1):
                    done = True
                continue
            for ev in conn.receive_data(frame):
                if isinstance(ev, h2.events.ResponseReceived):
                    out["headers"] = dict(ev.headers)
                elif isinstance(ev, h2.events.TrailersReceived):
                    out["trailers"] = dict(ev.headers)
                elif isinstance(ev, h2.events.DataReceived):
                    out["data"] += len(ev.data)
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    out["goaway"] = {"code": int(ev.error_code), "last_stream_id": ev.last_stream_id}
                elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                    done = True
            if "goaway" not in out:
                sock.sendall(conn.data_to_send())
    out["seconds"] = time.time() - t0
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve"); s.add_argument("--port", type=int, required=True); s.add_argument("--max-streams", type=int, default=0)
    s.add_argument("--cert", default=""); s.add_argument("--key", default="")
    c = sub.add_parser("call"); c.add_argument("--target", required=True); c.add_argument("scenario")
    c.add_argument("--service", default=SERVICE); c.add_argument("--count", type=int, default=30); c.add_argument("--sleep-ms", type=int, default=600)
    r = sub.add_parser("raw"); r.add_argument("--port", type=int, required=True); r.add_argument("--path", required=True)
    r.add_argument("--timeout", default=""); r.add_argument("--body", default="sleep:3000")
    a = p.parse_args()
    {"serve": serve, "call": call, "raw": raw}[a.cmd](a)


if __name__ == "__main__":
    main()
