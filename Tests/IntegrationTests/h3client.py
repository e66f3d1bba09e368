#!/usr/bin/env python3
"""HTTP/3 test client over aioquic (PyPI) for HTTP3Tests.

    h3client.py --port P [--path /x] [--method POST --body-size N]
                [--requests N] [--connections N] [--timeout S]

Opens --connections QUIC connections at once; each sends --requests requests
one after another on its connection. Prints one JSON object: every response's
status, body length and sha256, the first response's headers, and errors.
Exit code 0 when every request got a response.
"""
import argparse
import asyncio
import hashlib
import json
import ssl
import sys

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration


class H3Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.http = H3Connection(self._quic)
        self.waiters = {}

    def quic_event_received(self, event):
        for ev in self.http.handle_event(event):
            w = self.waiters.get(ev.stream_id)
            if w is None:
                continue
            if isinstance(ev, HeadersReceived):
                w["headers"] = [(k.decode(), v.decode()) for k, v in ev.headers]
            elif isinstance(ev, DataReceived):
                w["body"].extend(ev.data)
            if getattr(ev, "stream_ended", False) and not w["future"].done():
                w["future"].set_result(True)

    async def request(self, method, authority, path, body):
        sid = self._quic.get_next_available_stream_id()
        headers = [(b":method", method.encode()), (b":scheme", b"https"),
                   (b":authority", authority.encode()), (b":path", path.encode())]
        if body is not None:
            headers.append((b"content-length", str(len(body)).encode()))
        fut = asyncio.get_running_loop().create_future()
        self.waiters[sid] = {"headers": [], "body": bytearray(), "future": fut}
        self.http.send_headers(sid, headers, end_stream=body is None)
        if body is not None:
            self.http.send_data(sid, body, end_stream=True)
        self.transmit()
        await fut
        w = self.waiters.pop(sid)
        status = next((int(v) for k, v in w["headers"] if k == ":status"), 0)
        return status, bytes(w["body"]), w["headers"]


async def one_connection(args, body, results):
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN)
    config.verify_mode = ssl.CERT_NONE
    config.server_name = args.server_name
    async with connect(args.host, args.port, configuration=config, create_protocol=H3Client,
                       wait_connected=True) as client:
        for _ in range(args.requests):
            status, data, headers = await client.request(args.method, f"{args.server_name}:{args.port}", args.path, body)
            results.append({"status": status, "length": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                            "headers": headers if not results else None})


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--server-name", default="localhost")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/")
    p.add_argument("--method", default="GET")
    p.add_argument("--body-size", type=int, default=-1)
    p.add_argument("--requests", type=int, default=1)
    p.add_argument("--connections", type=int, default=1)
    p.add_argument("--timeout", type=float, default=60)
    args = p.parse_args()
    body = None
    if args.body_size >= 0:
        body = bytes((i * 7 + 3) & 0xFF for i in range(args.body_size))
    results, errors = [], []

    async def guarded():
        try:
            await one_connection(args, body, results)
        except Exception as e:  # reported, not raised: the test reads the JSON
            errors.append(repr(e))

    try:
        await asyncio.wait_for(asyncio.gather(*[guarded() for _ in range(args.connections)]), args.timeout)
    except asyncio.TimeoutError:
        errors.append("timeout")
    out = {"responses": len(results), "errors": errors,
           "statuses": sorted({r["status"] for r in results}),
           "sha256": sorted({r["sha256"] for r in results}),
           "lengths": sorted({r["length"] for r in results}),
           "headers": results[0]["headers"] if results else [],
           "request_sha256": hashlib.sha256(body).hexdigest() if body is not None else None}
    print(json.dumps(out))
    return 0 if not errors and len(results) == args.requests * args.connections else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
