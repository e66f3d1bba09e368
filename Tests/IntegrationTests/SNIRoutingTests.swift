// SNI routing without termination (`protocol: tcp` listeners with
// `routes: [{ match: { sni } }]`), through the real edge binary, to two real
// TLS servers (python ssl, certificates made here by `openssl req`), with real
// clients (`openssl s_client -servername`, python ssl). The TLS session is
// end-to-end: the certificate a client sees is its upstream's, and the
// upstream sees the client's SNI and ALPN. Also: no SNI → the default cluster,
// no default → closed, garbage → closed while edge keeps serving, and a
// ClientHello trickled one byte per segment still routes.

import Foundation
import XCTest

extension Paths {
    static var sniTool: String { repoRoot.appendingPathComponent("Tests/IntegrationTests/sni.py").path }
}

final class SNIRoutingTests: L4TestCase {
    var dbPort: UInt16 = 0, webPort: UInt16 = 0, listenPort: UInt16 = 0

    /// An EC P-256 self-signed certificate for `cn` in the world's directory.
    func makeCert(_ cn: String) throws -> (cert: String, key: String) {
        let openssl = try Paths.require("openssl")
        let cert = w.dir.appendingPathComponent("\(cn).pem").path, key = w.dir.appendingPathComponent("\(cn).key").path
        let r = try runCommand(openssl, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                         "-nodes", "-keyout", key, "-out", cert, "-subj", "/CN=\(cn)", "-days", "2"], timeout: 30)
        guard r.status == 0 else { throw HarnessError("openssl req: \(r.stderr)") }
        return (cert, key)
    }

    func startTLSServer(_ name: String, cn: String, port: UInt16) throws {
        let (cert, key) = try makeCert(cn)
        let py = try Paths.require("python3")
        let p = try ManagedProcess(name: "tls-\(name)", executable: py,
                                   arguments: ["-u", Paths.sniTool, "server", "--port", String(port), "--name", name,
                                               "--cert", cert, "--key", key], dir: w.dir)
        w.track(p)
        let deadline = OS.now() + 15
        while OS.now() < deadline {
            if p.stdoutText().contains("listening \(port)") { return }
            if !p.isRunning { break }
            OS.sleepMs(20)
        }
        throw HarnessError("sni.py server \(name) did not start: \(p.stderrText().suffix(1000))")
    }

    /// Two TLS upstreams (db: CN db.example.com, web: CN web.example.com) and edge in front.
    func startWorld(defaultCluster: Bool = true, tcpExtra: String = "", listenerExtra: String = "") throws {
        dbPort = try w.port(); webPort = try w.port(); listenPort = try w.port()
        try startTLSServer("db", cn: "db.example.com", port: dbPort)
        try startTLSServer("web", cn: "web.example.com", port: webPort)
        var yaml = w.head + """
        listeners:
          - name: tls-passthrough
            address: "127.0.0.1:\(listenPort)"
            protocol: tcp
            routes:
              - { match: { sni: "db.example.com" }, cluster: db }
              - { match: { sni: "*.example.com" }, cluster: web }

        """
        if defaultCluster { yaml += "    cluster: db\n" }
        yaml += listenerExtra
        yaml += "    tcp: { sni_timeout: 3s\(tcpExtra) }\n"
        yaml += "clusters:\n" + cluster("db", [dbPort]) + cluster("web", [webPort])
        try w.startEdge(yaml)
    }

    /// python ssl through edge; the upstream's line ("NAME sni=... alpn=...") or "" if closed.
    func pyClient(_ sni: String?, alpn: String? = nil, trickleMs: Double = 0, proxyV1: Bool = false) throws -> CommandResult {
        let py = try Paths.require("python3")
        var args = ["-u", Paths.sniTool, "client", "--port", String(listenPort)]
        if let sni { args += ["--sni", sni] }
        if let alpn { args += ["--alpn", alpn] }
        if trickleMs > 0 { args += ["--trickle", String(trickleMs)] }
        if proxyV1 { args.append("--proxy-v1") }
        return try runCommand(py, args, timeout: 60)
    }

    func line(_ r: CommandResult) -> String { r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) }

    func testRoutesByExactThenWildcardSNIWithRealClients() throws {
        try startWorld()
        XCTAssertEqual(line(try pyClient("db.example.com", alpn: "h2,http/1.1")), "db sni=db.example.com alpn=h2")
        XCTAssertEqual(line(try pyClient("API.Example.com")), "web sni=API.Example.com alpn=None")
        XCTAssertEqual(line(try pyClient("a.b.example.com", alpn: "http/1.1")), "web sni=a.b.example.com alpn=http/1.1")

        // openssl s_client: the certificate it sees is the upstream's own (TLS is end-to-end).
        let openssl = try Paths.require("openssl")
        for (sni, upstream, cn) in [("db.example.com", "db", "db.example.com"), ("x.example.com", "web", "web.example.com")] {
            let r = try runShell("\(openssl) s_client -connect 127.0.0.1:\(listenPort) -servername \(sni) -ign_eof </dev/null 2>&1", timeout: 30)
            XCTAssertTrue(r.stdoutText.contains("subject=CN = \(cn)"), "s_client -servername \(sni): \(r.stdoutText.suffix(1500))")
            XCTAssertTrue(r.stdoutText.contains("\(upstream) sni=\(sni)"), "s_client -servername \(sni): \(r.stdoutText.suffix(1500))")
        }
        try w.checkEdgeAlive()
    }

    func testNoSNIAndUnmatchedGoToDefault() throws {
        try startWorld()
        XCTAssertEqual(line(try pyClient(nil)), "db sni=None alpn=None")
        XCTAssertEqual(line(try pyClient("other.org")), "db sni=other.org alpn=None")
        XCTAssertEqual(line(try pyClient("example.com")), "db sni=example.com alpn=None", "the apex is not *.example.com")
    }

    func testWithoutDefaultUnmatchedIsClosed() throws {
        try startWorld(defaultCluster: false)
        let r = try pyClient("other.org")
        XCTAssertNotEqual(r.status, 0, "handshake should fail: \(r.stdoutText) \(r.stderr)")
        XCTAssertEqual(line(r), "")
        XCTAssertNotEqual(try pyClient(nil).status, 0, "no SNI, no default: closed")
        XCTAssertEqual(line(try pyClient("db.example.com")), "db sni=db.example.com alpn=None", "still serving")
    }

    func testGarbageIsClosedAndEdgeKeepsServing() throws {
        try startWorld()
        let garbage: [[UInt8]] = [
            Array("GET / HTTP/1.1\r\nHost: db.example.com\r\n\r\n".utf8),
            [0x16, 0x03, 0x01, 0x00, 0x00],                       // empty record
            [0x16, 0x03, 0x01, 0x00, 0x08, 0x02, 0, 0, 4, 1, 2, 3, 4], // ServerHello type
            [0x16, 0x03, 0x01, 0x00, 0x06, 0x01, 0, 0, 2, 0x03, 0x03], // truncated ClientHello body
        ]
        for g in garbage {
            let c = try RawClient(port: listenPort)
            try c.send(g)
            let (bytes, closed) = c.readToClose(timeout: 10)
            XCTAssertTrue(closed, "edge should close a connection that sent \(g.prefix(8))")
            XCTAssertEqual(bytes, [], "nothing is relayed for garbage")
            c.close()
        }
        // A client that never completes its hello is closed after sni_timeout (3s here).
        let slow = try RawClient(port: listenPort)
        try slow.send([0x16, 0x03, 0x01, 0x01, 0x00, 0x01])
        XCTAssertTrue(slow.waitForClose(timeout: 20), "an incomplete ClientHello should be closed after sni_timeout")
        slow.close()
        try w.checkEdgeAlive()
        XCTAssertEqual(line(try pyClient("db.example.com")), "db sni=db.example.com alpn=None")
        let m = try w.metrics()
        XCTAssertGreaterThanOrEqual(EdgeHarness.perWorker(m, "edge_client_errors_total")["0"] ?? 0, 5, "garbage and the timeout count as client errors")
    }

    func testTrickledClientHelloStillRoutes() throws {
        try startWorld()
        let r = try pyClient("x.example.com", alpn: "http/1.1", trickleMs: 2)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(line(r), "web sni=x.example.com alpn=http/1.1")
    }

    /// The same routing with each relay mode (the TLS bytes go through user space or splice).
    func testRoutesWithEveryRelayMode() throws {
        for mode in ["copy", "splice"] {
            w.stop()
            w.cleanup()
            w = try L4World("SNIRoutingTests-\(mode)")
            try startWorld(tcpExtra: ", relay: \(mode)")
            XCTAssertEqual(line(try pyClient("db.example.com")), "db sni=db.example.com alpn=None", mode)
            XCTAssertEqual(line(try pyClient("q.example.com", trickleMs: 1)), "web sni=q.example.com alpn=None", mode)
        }
    }

    /// PROXY header first (proxy_protocol: accept), then the ClientHello: both parsed, then routed.
    func testProxyHeaderThenSNI() throws {
        try startWorld(listenerExtra: "    proxy_protocol: accept\n")
        XCTAssertEqual(line(try pyClient("db.example.com", proxyV1: true)), "db sni=db.example.com alpn=None")
        XCTAssertEqual(line(try pyClient("z.example.com", trickleMs: 1, proxyV1: true)), "web sni=z.example.com alpn=None")
        let r = try pyClient("db.example.com")
        XCTAssertNotEqual(r.status, 0, "no PROXY header on a proxy_protocol: accept listener: closed")
    }
}
