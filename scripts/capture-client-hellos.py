# Captures real ClientHellos (openssl s_client, python ssl) for ClientHelloFixtures.swift.
# Prints "name hex" lines: python3 capture-client-hellos.py
import socket, subprocess, sys, ssl, threading, binascii
def capture(run):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
    port = s.getsockname()[1]
    t = threading.Thread(target=run, args=(port,)); t.start()
    c, _ = s.accept(); c.settimeout(3)
    data = b""
    while True:
        if len(data) >= 5:
            need = 5 + int.from_bytes(data[3:5], "big")
            if len(data) >= need: break
        chunk = c.recv(65536)
        if not chunk: break
        data += chunk
    c.close(); s.close(); t.join()
    return data
def osc(args):
    def run(port):
        subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}"] + args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5)
    return run
def py(host, alpn=None):
    def run(port):
        ctx = ssl.create_default_context(); ctx.check_hostname=False; ctx.verify_mode=ssl.CERT_NONE
        if alpn: ctx.set_alpn_protocols(alpn)
        try:
            with socket.create_connection(("127.0.0.1", port)) as so:
                ctx.wrap_socket(so, server_hostname=host)
        except Exception: pass
    return run
cases = {
 "opensslSNIALPN": osc(["-servername", "db.example.com", "-alpn", "h2,http/1.1"]),
 "opensslNoSNI": osc(["-noservername"]),
 "openssl12": osc(["-servername", "a.b.example.com", "-tls1_2"]),
 "pythonSNI": py("api.example.com", ["http/1.1"]),
}
for k, f in cases.items():
    print(k, binascii.hexlify(capture(f)).decode())
