#!/usr/bin/env python3
"""HTTP/3 load for comparison/h3 (aioquic): --connections C, --streams M in
flight on each, for --duration S against https://127.0.0.1:PORT/PATH.
Prints JSON: requests, errors, req_per_s, p50_ms, p99_ms. aioquic is pure
Python, so one process is client-bound long before Edge is: the numbers that
matter are Edge's CPU per request (measured by the caller) and errors."""
import argparse, asyncio, json, ssl, sys, time

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration


class Client(QuicConnectionProtocol):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.http = H3Connection(self._quic)
        self.waiting = {}

    def quic_event_received(self, event):
        for ev in self.http.handle_event(event):
            f = self.waiting.get(ev.stream_id)
            if f is not None and isinstance(ev, (HeadersReceived, DataReceived)) and ev.stream_ended:
                self.waiting.pop(ev.stream_id)
                if not f.done():
                    f.set_result(True)

    async def get(self, authority, path):
        sid = self._quic.get_next_available_stream_id()
        f = asyncio.get_running_loop().create_future()
        self.waiting[sid] = f
        self.http.send_headers(sid, [(b":method", b"GET"), (b":scheme", b"https"),
                                     (b":authority", authority.encode()), (b":path", path.encode())], end_stream=True)
        self.transmit()
        await f


async def run(args):
    latencies, errors = [], 0
    deadline = time.monotonic() + args.duration
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN)
    config.verify_mode = ssl.CERT_NONE
    config.server_name = "localhost"

    async def worker(client):
        nonlocal errors
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            try:
                await asyncio.wait_for(client.get(f"localhost:{args.port}", args.path), 10)
                latencies.append(time.monotonic() - t0)
            except Exception:
                errors += 1

    async def connection():
        async with connect("127.0.0.1", args.port, configuration=config, create_protocol=Client) as client:
            await asyncio.gather(*[worker(client) for _ in range(args.streams)])

    start = time.monotonic()
    await asyncio.gather(*[connection() for _ in range(args.connections)], return_exceptions=True)
    elapsed = time.monotonic() - start
    latencies.sort()
    q = lambda p: round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2) if latencies else None
    print(json.dumps({"requests": len(latencies), "errors": errors, "req_per_s": round(len(latencies) / elapsed, 1),
                      "p50_ms": q(0.5), "p99_ms": q(0.99)}))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/")
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--streams", type=int, default=8)
    p.add_argument("--duration", type=float, default=10)
    asyncio.run(run(p.parse_args()))
    sys.exit(0)
