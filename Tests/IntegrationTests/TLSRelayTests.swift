// TLS over TCP (`protocol: tls` listeners) through the real edge binary:
// redis-cli / redis-benchmark --tls in front of a real redis-server, 8 MiB
// each way through openssl s_client with checksums, re-encryption to an
// openssl s_server upstream (cluster `tls:`), hostile clients, a PROXY header
// in front of the ClientHello (tls and https listeners), and WebSocket over
// HTTPS (wss) switching to the copy relay after the 101.

import Foundation
import XCTest

final class TLSRelayTests: L4TestCase {
    private var pki: TestPKI!

    override func setUpWithError() throws {
        try super.setUpWithError()
        _ = try Paths.require("openssl")
        let dir = w.dir.appendingPathComponent("certs")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        pki = try TestPKI.create(in: dir)
        try pki.leaf("server", cn: "/CN=localhost", sans: "DNS:localhost,IP:127.0.0.1")
    }

    private func tlsListener(_ name: String, port: UInt16, cluster: String, extra: [String] = [], tlsExtra: [String] = []) -> String {
        (["  - name: \(name)",
          "    address: \"127.0.0.1:\(port)\"",
          "    protocol: tls",
          "    cluster: \(cluster)"] + extra.map { "    " + $0 } +
         ["    tls:",
          "      certificates: [ { cert: \(pki.file("server.pem")), key: \(pki.file("server.key")) } ]",
          "      handshake_timeout: 2s"] + tlsExtra.map { "      " + $0 }).joined(separator: "\n") + "\n"
    }

    private func redisCLI(_ port: UInt16, _ args: [String]) throws -> String {
        let cli = try Paths.require("redis-cli")
        let r = try runCommand(cli, ["--tls", "--cacert", pki.file("ca.pem"), "-h", "127.0.0.1", "-p", String(port)] + args, timeout: 15)
        return (r.stdoutText + r.stderr).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func metric(_ name: String) throws -> Double {
        EdgeHarness.perWorker(try w.metrics(), name)["0"] ?? -1
    }

    private func tlsFailures(_ reason: String) throws -> Double {
        try w.metrics().filter { $0.key.hasPrefix("edge_tls_handshake_failures_total{") && $0.key.contains("reason=\"\(reason)\"") }
            .map(\.value).reduce(0, +)
    }

    /// Starts `openssl s_server` (a TLS upstream) and waits for its port.
    private func startSServer(port: UInt16, cert: String, args: [String]) throws -> ManagedProcess {
        let openssl = try Paths.require("openssl")
        let p = try ManagedProcess(name: "s_server-\(port)", executable: openssl,
                                   arguments: ["s_server", "-accept", "127.0.0.1:\(port)", "-cert", pki.file("\(cert).pem"),
                                               "-key", pki.file("\(cert).key"), "-quiet"] + args, dir: w.dir)
        w.track(p)
        let deadline = OS.now() + 15
        while OS.now() < deadline {
            if Ports.connectErrno(port) == 0 { return p }
            OS.sleepMs(50)
        }
        throw HarnessError("openssl s_server did not start on \(port): \(p.stderrText())")
    }

    // MARK: Redis

    func testRedisThroughTLSListener() throws {
        let rp = try w.port(), lt = try w.port()
        let log = w.dir.appendingPathComponent("access.log").path
        try w.startRedis(port: rp)
        try w.startEdge(w.head + "access_log: { path: \"\(log)\", format: json }\n"
                        + "listeners:\n" + tlsListener("redis", port: lt, cluster: "redis")
                        + "clusters:\n" + cluster("redis", [rp]))
        XCTAssertEqual(try redisCLI(lt, ["PING"]), "PONG")
        // One L4 access-log line per session, as for tcp listeners.
        var first: [String: Any]? = nil
        let deadline = OS.now() + 10
        while first == nil && OS.now() < deadline {
            first = (OS.readFile(log) ?? "").split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }.first
            if first == nil { OS.sleepMs(50) }
        }
        XCTAssertEqual(first?["protocol"] as? String, "tls", "\(String(describing: first))")
        XCTAssertEqual(first?["listener"] as? String, "redis")
        XCTAssertEqual(first?["cluster"] as? String, "redis")
        XCTAssertEqual(first?["bytes_in"] as? Int, 14, "PING as a RESP array: \(String(describing: first))")
        XCTAssertEqual(first?["bytes_out"] as? Int, 7, "+PONG\\r\\n")
        XCTAssertEqual(try redisCLI(lt, ["SET", "tls-key", "through edge"]), "OK")
        XCTAssertEqual(try redisCLI(lt, ["GET", "tls-key"]), "through edge")
        // The value really reached the upstream Redis (plain TCP behind Edge).
        let plain = try runCommand(try Paths.require("redis-cli"), ["-h", "127.0.0.1", "-p", String(rp), "GET", "tls-key"], timeout: 10)
        XCTAssertEqual(plain.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines), "through edge")

        let bench = try Paths.require("redis-benchmark")
        let b = try runCommand(bench, ["--tls", "--cacert", pki.file("ca.pem"), "-h", "127.0.0.1", "-p", String(lt),
                                       "-q", "-n", "2000", "-c", "4", "-t", "get,set"], timeout: 120)
        XCTAssertEqual(b.status, 0, b.stderr)
        XCTAssertTrue(b.stdoutText.contains("GET:") && b.stdoutText.contains("SET:"), b.stdoutText.suffix(500).description)
        XCTAssertFalse((b.stdoutText + b.stderr).contains("ERR"), b.stdoutText.suffix(1000).description)
        try w.checkEdgeAlive()
        XCTAssertGreaterThanOrEqual(try metric("edge_tls_handshakes_total"), 7, "redis-cli x4 + redis-benchmark x4 handshakes")
        XCTAssertGreaterThanOrEqual(try metric("edge_relay_copy_started_total"), 7, "every TLS relay copies through user space")
        XCTAssertEqual(try metric("edge_relay_splice_switches_total"), 0, "never spliced through TLS")
    }

    // MARK: Bulk both ways

    func testBulkBothWaysKeepsChecksums() throws {
        let n = 8 << 20
        let downPort = try w.port(), upPort = try w.port(), ldown = try w.port(), lup = try w.port()
        let down = try w.startTool("bulk-server", port: downPort, ["--mode", "send", "--size", String(n)], name: "bulk-send")
        let up = try w.startTool("bulk-server", port: upPort, ["--mode", "recv", "--size", String(n)], name: "bulk-recv")
        try w.startEdge(w.head + "listeners:\n"
                        + tlsListener("down", port: ldown, cluster: "down") + tlsListener("up", port: lup, cluster: "up")
                        + "clusters:\n" + cluster("down", [downPort]) + cluster("up", [upPort]))
        let ca = pki.file("ca.pem")
        // Download: -quiet implies -ign_eof, so s_client reads until Edge's close_notify.
        let downFile = w.dir.path + "/down.bin"
        let d = try runShell("timeout 90 openssl s_client -quiet -nocommands -verify_return_error -CAfile '\(ca)' -servername localhost "
                             + "-connect 127.0.0.1:\(ldown) < /dev/null > '\(downFile)' 2>/dev/null; "
                             + "wc -c < '\(downFile)'; sha256sum '\(downFile)' | cut -d' ' -f1", timeout: 120)
        let sent = try waitJSONLine(down, key: "sent", timeout: 30)
        let lines = d.stdoutText.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        XCTAssertEqual(lines.first, String(n), "bytes downloaded")
        XCTAssertEqual(lines.last, sent["sha256"] as? String, "download checksum")

        // Upload: random bytes (-nocommands: a chunk starting with Q or K would be an s_client command); s_client ends with close_notify at EOF (-no_ign_eof), which Edge passes on as a FIN.
        let file = w.dir.path + "/up.bin"
        let local = try runShell("head -c \(n) /dev/urandom > '\(file)' && sha256sum '\(file)' | cut -d' ' -f1", timeout: 30)
        let u = try runShell("timeout 90 openssl s_client -quiet -nocommands -no_ign_eof -verify_return_error -CAfile '\(ca)' -servername localhost "
                             + "-connect 127.0.0.1:\(lup) < '\(file)' > /dev/null 2>&1; echo done", timeout: 120)
        XCTAssertTrue(u.stdoutText.contains("done"))
        let got = try waitJSONLine(up, key: "received", timeout: 30)
        XCTAssertEqual(got["received"] as? Int, n, "bytes uploaded: \(got)")
        XCTAssertEqual(got["sha256"] as? String, local.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines), "upload checksum")
        try w.checkEdgeAlive()
        XCTAssertGreaterThanOrEqual(try metric("edge_relay_bytes_total"), Double(2 * n), "relayed plaintext is counted")
    }

    // MARK: Re-encryption

    /// Cluster `tls:`: plaintext from the TLS client is encrypted again to an
    /// openssl s_server (which echoes lines reversed); a wrong CA fails closed.
    func testReencryptsToTLSUpstream() throws {
        let sp = try w.port(), lgood = try w.port(), lbad = try w.port(), lplain = try w.port()
        _ = try startSServer(port: sp, cert: "server", args: ["-rev"])
        let ca = pki.file("ca.pem"), other = pki.file("other-ca.pem")
        try w.startEdge(w.head + "listeners:\n"
                        + tlsListener("good", port: lgood, cluster: "origin") + tlsListener("bad", port: lbad, cluster: "wrongca")
                        + tcpListener("plain", port: lplain, cluster: "origin")
                        + "clusters:\n"
                        + cluster("origin", [sp], extra: ["tls: { server_name: localhost, ca: \(ca), verify: true }"])
                        + cluster("wrongca", [sp], extra: ["tls: { server_name: localhost, ca: \(other), verify: true }"]))
        func exchange(_ port: UInt16) throws -> String {
            try runShell("(printf 'hello edge\\n'; sleep 2) | timeout 15 openssl s_client -quiet -nocommands -no_ign_eof -verify_return_error -CAfile '\(ca)' "
                         + "-servername localhost -connect 127.0.0.1:\(port) 2>/dev/null", timeout: 30).stdoutText
        }
        let good = try exchange(lgood)
        XCTAssertTrue(good.contains("egde olleh"), "reversed by the TLS upstream: \(good)")
        let errorsBefore = try metric("edge_upstream_errors_total")
        let bad = try exchange(lbad)
        XCTAssertFalse(bad.contains("olleh"), "an unverified upstream gets no bytes back to the client: \(bad)")
        XCTAssertGreaterThan(try metric("edge_upstream_errors_total"), errorsBefore, "the upstream TLS failure is counted")
        // s_server serves one client at a time; the good path still works after the failure.
        XCTAssertTrue(try exchange(lgood).contains("egde olleh"))
        // A plain tcp listener in front of a tls cluster: TLS is originated by Edge (copy relay, no splice).
        let c = try RawClient(port: lplain)
        try c.send("plain in\n")
        c.shutdownWrite()
        let r = c.readToClose(timeout: 15)
        c.close()
        XCTAssertTrue(String(decoding: r.bytes, as: UTF8.self).contains("ni nialp"), "reversed through TLS to the upstream: \(r.bytes.count) bytes")
        try w.checkEdgeAlive()
    }

    // MARK: Hostile clients

    func testHostileClientsDoNotHurtEdge() throws {
        let rp = try w.port(), lt = try w.port()
        try w.startRedis(port: rp)
        try w.startEdge(w.head + "listeners:\n" + tlsListener("redis", port: lt, cluster: "redis")
                        + "clusters:\n" + cluster("redis", [rp]))
        // Closes at once; closes after half a ClientHello.
        for bytes: [UInt8] in [[], [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]] {
            let c = try RawClient(port: lt)
            if !bytes.isEmpty { try c.send(bytes) }
            c.close()
        }
        // Garbage instead of a ClientHello; plaintext Redis to the TLS port: closed, no answer.
        for text in ["\u{01}\u{02}not tls at all\r\n\r\n", "PING\r\n"] {
            let c = try RawClient(port: lt)
            try c.send(text)
            let r = c.readToClose(timeout: 10)
            XCTAssertTrue(r.closed, "closed after \(text.debugDescription)")
            XCTAssertFalse(String(decoding: r.bytes, as: UTF8.self).contains("PONG"), "no plaintext answer")
            c.close()
        }
        // A handshake that never finishes: cut at handshake_timeout (2s).
        let silent = try RawClient(port: lt)
        let t0 = OS.now()
        XCTAssertTrue(silent.waitForClose(timeout: 15), "silent client closed by handshake_timeout")
        XCTAssertGreaterThanOrEqual(OS.now() - t0, 1.5)
        silent.close()
        try w.checkEdgeAlive()
        XCTAssertEqual(try redisCLI(lt, ["PING"]), "PONG", "real clients still served")
        XCTAssertGreaterThanOrEqual(try tlsFailures("timeout"), 1)
        XCTAssertGreaterThanOrEqual(try tlsFailures("plaintext_http"), 1)
        let failures = try w.metrics().filter { $0.key.hasPrefix("edge_tls_handshake_failures_total{") && $0.value > 0 }
        XCTAssertGreaterThanOrEqual(try tlsFailures("client_closed"), 1, "half a ClientHello, then close: \(failures)")
        XCTAssertGreaterThanOrEqual(failures.values.reduce(0, +), 4, "timeout, plaintext, half hello, garbage: \(failures)")
    }

    // MARK: PROXY protocol in front of TLS

    /// A PROXY v1 header, then TLS on the same socket (python ssl); prints what came back.
    private func proxiedTLS(port: UInt16, send: String) throws -> String {
        let script = """
        import socket, ssl, sys
        s = socket.create_connection(("127.0.0.1", \(port)), timeout=10)
        s.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\\r\\n")
        ctx = ssl.create_default_context(cafile=sys.argv[1])
        t = ctx.wrap_socket(s, server_hostname="localhost")
        t.sendall(sys.argv[2].encode().decode("unicode_escape").encode())
        out = b""
        # HTTP (Connection: close) reads to the end; Redis to its one-line answer.
        while sys.argv[2].startswith("GET") or b"\\r\\n" not in out:
            chunk = t.recv(65536)
            if not chunk: break
            out += chunk
        sys.stdout.write(out.decode("utf-8", "replace"))
        """
        let py = w.dir.path + "/proxied_tls.py"
        try script.write(toFile: py, atomically: true, encoding: .utf8)
        let r = try runCommand(try Paths.require("python3"), [py, pki.file("ca.pem"), send], timeout: 20)
        return r.stdoutText + r.stderr
    }

    func testProxyProtocolBeforeTheClientHello() throws {
        let rp = try w.port(), lt = try w.port(), up = try w.port(), lh = try w.port()
        try w.startRedis(port: rp)
        try w.startUpstreamPy(port: up)
        try w.startEdge(w.head + "listeners:\n"
                        + tlsListener("redis", port: lt, cluster: "redis", extra: ["proxy_protocol: accept"])
                        + """
                          - name: websecure
                            address: "127.0.0.1:\(lh)"
                            protocol: https
                            proxy_protocol: accept
                            cluster: up
                            tls:
                              certificates: [ { cert: \(pki.file("server.pem")), key: \(pki.file("server.key")) } ]

                        """
                        + "clusters:\n" + cluster("redis", [rp]) + cluster("up", [up]))
        XCTAssertTrue(try proxiedTLS(port: lt, send: "PING\\r\\n").contains("+PONG"), "PROXY header + TLS relay to Redis")
        let echo = try proxiedTLS(port: lh, send: "GET /echo HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n")
        XCTAssertTrue(echo.hasPrefix("HTTP/1.1 200"), echo)
        XCTAssertTrue(echo.contains("203.0.113.7"), "X-Forwarded-For from the PROXY header: \(echo)")
        // Without the header the connection is refused (garbage where the header belongs).
        let c = try RawClient(port: lh)
        try c.send([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])
        XCTAssertTrue(c.readToClose(timeout: 10).closed, "no PROXY header: closed")
        c.close()
        try w.checkEdgeAlive()
    }

    // MARK: WebSocket over HTTPS

    func testWebSocketOverHTTPS() throws {
        let wsPort = try w.port(), lh = try w.port()
        try w.startTool("ws-echo-server", port: wsPort)
        try w.startEdge(w.head + """
            listeners:
              - name: websecure
                address: "127.0.0.1:\(lh)"
                protocol: https
                tls:
                  certificates: [ { cert: \(pki.file("server.pem")), key: \(pki.file("server.key")) } ]
                routes:
                  - match: { path_prefix: "/ws" }
                    cluster: ws
            clusters:

            """ + cluster("ws", [wsPort]))
        let r = try w.runTool(["ws-client", "--url", "wss://127.0.0.1:\(lh)/ws", "--cafile", pki.file("ca.pem"),
                               "--count", "2000", "--timeout", "100"], timeout: 120)
        XCTAssertEqual(r.status, 0, "ws-client over wss failed: \(r.stdoutText) \(r.stderr.suffix(2000))")
        let j = try jsonLine(r.stdoutText)
        XCTAssertEqual(j["ok"] as? Bool, true, "\(j)")
        XCTAssertEqual(j["messages"] as? Int, 2000, "\(j)")
        try w.checkEdgeAlive()
        XCTAssertGreaterThanOrEqual(try metric("edge_relay_copy_started_total"), 1, "the upgraded TLS connection is a copy relay")
    }
}
