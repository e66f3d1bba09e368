#!/usr/bin/env python3
"""TLS endpoints for the SNI routing tests (SNIRoutingTests.swift).

  sni.py server --port P --name NAME --cert C --key K
      TLS server (python ssl); after each handshake writes one line
      "NAME sni=<server_name> alpn=<protocol>" and closes. Prints "listening P".
  sni.py client --port P [--sni NAME] [--alpn a,b] [--trickle MS]
      TLS client (verification off: the test checks which upstream answered,
      not the certificate chain); prints the server's line. --trickle sends the
      ClientHello one byte per write, MS milliseconds apart (TCP_NODELAY), and
      the rest of the handshake normally, through ssl.MemoryBIO. --proxy-v1
      sends a PROXY v1 header first (for listeners with proxy_protocol: accept).
"""
import argparse, socket, ssl, sys, threading, time


def server(a):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    def on_sni(sslsock, name, _ctx):
        sslsock.sni_seen = name
    ctx.sni_callback = on_sni
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", a.port))
    ls.listen(128)
    print(f"listening {a.port}", flush=True)
    def handle(c):
        try:
            c.settimeout(10)
            t = ctx.wrap_socket(c, server_side=True)
            line = f"{a.name} sni={getattr(t, 'sni_seen', None)} alpn={t.selected_alpn_protocol()}\n"
            t.sendall(line.encode())
            t.close()
        except Exception as e:
            print(f"handshake failed: {e}", file=sys.stderr, flush=True)
            c.close()
    while True:
        c, _ = ls.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


def client(a):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if a.alpn:
        ctx.set_alpn_protocols(a.alpn.split(","))
    s = socket.create_connection(("127.0.0.1", a.port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if a.proxy_v1:
        s.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 4711 443\r\n")
    if not a.trickle:
        t = ctx.wrap_socket(s, server_hostname=a.sni)
        data = b""
        while True:
            chunk = t.recv(4096)
            if not chunk:
                break
            data += chunk
        sys.stdout.write(data.decode())
        return
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=a.sni)
    first = True
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pending = out.read()
            if first:
                for b in pending:  # the ClientHello, one byte per segment
                    s.sendall(bytes([b]))
                    time.sleep(a.trickle / 1000.0)
                first = False
            elif pending:
                s.sendall(pending)
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("connection closed during the handshake")
            inc.write(chunk)
    pending = out.read()
    if pending:
        s.sendall(pending)
    data = b""
    while True:
        try:
            data += obj.read(4096)
        except ssl.SSLWantReadError:
            chunk = s.recv(65536)
            if not chunk:
                break
            inc.write(chunk)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            break
    sys.stdout.write(data.decode())


def main():
    p = argparse.ArgumentParser()
    sp = p.add_subparsers(dest="cmd", required=True)
    s = sp.add_parser("server")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--name", required=True)
    s.add_argument("--cert", required=True)
    s.add_argument("--key", required=True)
    c = sp.add_parser("client")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--sni")
    c.add_argument("--alpn")
    c.add_argument("--trickle", type=float, default=0)
    c.add_argument("--proxy-v1", action="store_true", help="send a PROXY v1 header before the ClientHello")
    a = p.parse_args()
    server(a) if a.cmd == "server" else client(a)


if __name__ == "__main__":
    main()
