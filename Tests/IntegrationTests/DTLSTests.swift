import Foundation
import XCTest

/// `protocol: dtls` listeners with real clients: `openssl s_client -dtls1_2`
/// through Edge to a UDP echo upstream, raw hand-built ClientHellos
/// (dtlsprobe.py) for the cookie exchange, garbage and stalled handshakes.
final class DTLSTests: L4TestCase {
    private var listenPort: UInt16 = 0

    private var probe: String {
        URL(fileURLWithPath: Paths.l4tools).deletingLastPathComponent().appendingPathComponent("dtlsprobe.py").path
    }

    /// A UDP echo upstream and a DTLS listener in front of it.
    private func start(workers: Int = 1, tlsExtra: String = "", udp: String = "{ session_timeout: 10s }") throws {
        let up = try w.port()
        listenPort = try w.port()
        try w.startTool("udp-echo", port: up)
        _ = try DTLSTestCerts.write(in: w.dir)
        try w.startEdge(w.head.replacingOccurrences(of: "workers: 1", with: "workers: \(workers)") + """
        listeners:
          - name: secure-echo
            address: "127.0.0.1:\(listenPort)"
            protocol: dtls
            cluster: echo
            tls:
              certificates: [ { cert: server.pem, key: server.key } ]
        \(tlsExtra)
            udp: \(udp)
        clusters:
          - name: echo
            endpoints: [ "127.0.0.1:\(up)" ]

        """)
    }

    /// `openssl s_client -dtls1_2` sending `lines`, stdin held open `hold` seconds; its stdout.
    /// Lines go out 0.2 s apart, so each is its own record and datagram.
    private func sClient(_ lines: [String], hold: Double = 3) throws -> String {
        let text = lines.map { "printf '\($0)\\n'; sleep 0.2; " }.joined()
        let r = try runShell("(sleep 0.5; \(text)sleep \(hold)) | timeout 20 openssl s_client -dtls1_2 -connect 127.0.0.1:\(listenPort) -quiet -no_ign_eof 2>/dev/null", timeout: 30)
        return r.stdoutText
    }

    private func probeJSON(_ args: [String], timeout: Double = 60) throws -> [String: Any] {
        let py = try Paths.require("python3")
        let r = try runCommand(py, ["-u", probe] + args + ["--port", String(listenPort)], timeout: timeout)
        XCTAssertEqual(r.status, 0, r.stderr)
        return try jsonLine(r.stdoutText)
    }

    private func total(_ m: [String: Double], _ name: String) -> Double {
        EdgeHarness.perWorker(m, name).values.reduce(0, +)
    }

    private func failures(_ m: [String: Double], _ reason: String) -> Double {
        m.filter { $0.key.hasPrefix("edge_dtls_failures_total{") && $0.key.contains("reason=\"\(reason)\"") }.values.reduce(0, +)
    }

    func testOpenSSLClientLinesComeBackEqual() throws {
        try start()
        let lines = (1...5).map { "line \($0) through dtls" }
        let out = try sClient(lines)
        XCTAssertEqual(out.split(separator: "\n").map(String.init), lines)
        let m = try w.metrics()
        XCTAssertEqual(total(m, "edge_dtls_handshakes_total"), 1, "\(m.filter { $0.key.hasPrefix("edge_dtls") })")
        XCTAssertGreaterThanOrEqual(total(m, "edge_dtls_hello_verify_requests_total"), 1, "the client went through the cookie exchange")
        // One record per line unless a busy machine made s_client read two lines at once.
        let records = total(m, "edge_dtls_datagrams_in_total")
        XCTAssertTrue((1...5).contains(Int(records)), "\(records) records for 5 lines")
        XCTAssertEqual(total(m, "edge_dtls_datagrams_out_total"), records, "every decrypted datagram's echo went back encrypted")
        XCTAssertEqual(total(m, "edge_dtls_handshakes_active"), 0)
    }

    func testConcurrentClientsEachGetTheirOwnLines() throws {
        try start(workers: 2)
        let clients = 8
        var script = ""
        for c in 0..<clients {
            let text = (1...4).map { "client \(c) says \($0)\\n" }.joined()
            script += "((printf '\(text)'; sleep 5) | timeout 30 openssl s_client -dtls1_2 -connect 127.0.0.1:\(listenPort) -quiet -no_ign_eof > out\(c).txt 2>/dev/null) &\n"
        }
        script += "wait\n"
        let r = try runShell("cd '\(w.dir.path)'\n" + script, timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        for c in 0..<clients {
            let out = OS.readFile(w.dir.appendingPathComponent("out\(c).txt").path) ?? ""
            XCTAssertEqual(out.split(separator: "\n").map(String.init), (1...4).map { "client \(c) says \($0)" }, "client \(c)")
        }
        let m = try w.metrics()
        XCTAssertEqual(total(m, "edge_dtls_handshakes_total"), Double(clients))
        XCTAssertEqual(failures(m, "handshake") + failures(m, "session"), 0)
    }

    func testCookielessHellosAndGarbageKeepNoStateAndEdgeKeepsServing() throws {
        try start()
        let hello = try probeJSON(["hello", "--clients", "20"])
        XCTAssertEqual(hello["hvr"] as? Int, 20, "every cookie-less ClientHello gets a HelloVerifyRequest: \(hello)")
        XCTAssertEqual(hello["server_hellos"] as? Int, 0)
        XCTAssertEqual(hello["distinct_cookies"] as? Int, 20, "the cookie depends on the client address")
        let forged = try probeJSON(["hello", "--clients", "5", "--forged"])
        XCTAssertEqual(forged["server_hellos"] as? Int, 0, "a forged cookie must not start a handshake: \(forged)")
        let garbage = try probeJSON(["garbage", "--count", "3000"])
        XCTAssertEqual(garbage["replies"] as? Int, 0, "garbage got answers: \(garbage)")
        var m = try w.metrics()
        XCTAssertEqual(total(m, "edge_udp_sessions_active"), 0, "no session before a valid cookie")
        XCTAssertEqual(total(m, "edge_dtls_handshakes_active"), 0)
        XCTAssertEqual(total(m, "edge_dtls_handshakes_total"), 0)
        XCTAssertGreaterThan(total(m, "edge_dtls_dropped_datagrams_total"), 1000)
        try w.checkEdgeAlive()
        XCTAssertEqual(try sClient(["still serving"]), "still serving\n")
        m = try w.metrics()
        XCTAssertEqual(total(m, "edge_dtls_handshakes_total"), 1)
    }

    func testStalledHandshakeIsRetransmittedThenTimesOut() throws {
        try start(tlsExtra: "      handshake_timeout: 3s")
        let stall = try probeJSON(["stall", "--seconds", "5"])
        XCTAssertEqual(stall["hvr"] as? Bool, true, "\(stall)")
        XCTAssertGreaterThan(stall["first_flight"] as? Int ?? 0, 0, "no server flight after a valid cookie: \(stall)")
        XCTAssertGreaterThan(stall["later"] as? Int ?? 0, 0, "the server flight was never retransmitted: \(stall)")
        let times = stall["times"] as? [Double] ?? []
        XCTAssertLessThan(times.last ?? 99, 4.5, "retransmissions went on past the handshake timeout: \(stall)")
        let m = try w.metrics()
        XCTAssertEqual(failures(m, "timeout"), 1, "\(m.filter { $0.key.hasPrefix("edge_dtls") })")
        XCTAssertEqual(total(m, "edge_dtls_handshakes_active"), 0)
        XCTAssertEqual(total(m, "edge_udp_sessions_active"), 0)
    }

    func testHandshakeCapAndIdleTimeout() throws {
        try start(tlsExtra: "      handshake_timeout: 4s\n      max_handshakes: 2", udp: "{ session_timeout: 1s }")
        // Three stalled handshakes at once: two are admitted, the third is refused after its cookie.
        let py = try Paths.require("python3")
        var stalls: [ManagedProcess] = []
        for k in 0..<3 {
            let p = try ManagedProcess(name: "stall-\(k)", executable: py,
                                       arguments: ["-u", probe, "stall", "--seconds", "2", "--port", String(listenPort)], dir: w.dir)
            w.track(p)
            stalls.append(p)
        }
        var m = try w.metrics()
        let deadline = OS.now() + 10
        while failures(m, "over_capacity") < 1 && OS.now() < deadline { OS.sleepMs(50); m = try w.metrics() }
        XCTAssertEqual(total(m, "edge_dtls_handshakes_active"), 2, "\(m.filter { $0.key.hasPrefix("edge_dtls") })")
        XCTAssertEqual(failures(m, "over_capacity"), 1)
        for p in stalls { _ = p.wait(timeout: 20) }
        OS.sleepMs(3_500)
        m = try w.metrics()
        XCTAssertEqual(failures(m, "timeout"), 2)
        XCTAssertEqual(total(m, "edge_dtls_handshakes_active"), 0)
        // Idle timeout: a client that stays connected but silent loses its session.
        let client = try ManagedProcess(name: "idle-client", executable: "/bin/sh", arguments: ["-c",
            "(printf 'idle soon\\n'; sleep 12) | timeout 20 openssl s_client -dtls1_2 -connect 127.0.0.1:\(listenPort) -quiet 2>/dev/null"], dir: w.dir)
        w.track(client)
        var open = OS.now() + 15
        while total(m, "edge_udp_sessions_active") < 1 && OS.now() < open { OS.sleepMs(50); m = try w.metrics() }
        XCTAssertEqual(total(m, "edge_udp_sessions_active"), 1, "the idle client never got a session")
        let established = OS.now()
        open = OS.now() + 15
        while total(m, "edge_udp_sessions_active") > 0 && OS.now() < open { OS.sleepMs(50); m = try w.metrics() }
        XCTAssertEqual(total(m, "edge_udp_sessions_active"), 0, "the idle session never expired")
        XCTAssertLessThan(OS.now() - established, 6, "session_timeout is 1s")
        XCTAssertTrue(client.isRunning, "the client left by itself; the session did not idle out")
        XCTAssertTrue(client.stdoutText().contains("idle soon"), client.stdoutText())
        XCTAssertEqual(total(m, "edge_dtls_handshakes_total"), 1)
    }
}

/// Test certificates for the DTLS listener, written with Edge's own generator.
enum DTLSTestCerts {
    static func write(in dir: URL) throws -> CommandResult {
        let r = try runCommand(try Paths.edgeBinary(), ["gen-certs", "--out", dir.path, "--days", "2"], timeout: 60)
        guard r.status == 0 else { throw HarnessError("edge gen-certs failed: \(r.stderr)") }
        return r
    }
}
