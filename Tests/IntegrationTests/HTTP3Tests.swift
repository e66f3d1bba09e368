// HTTP/3 over QUIC (`http3:` on an HTTPS listener): the real binary with two
// workers against real QUIC clients (aioquic through h3client.py, Debian's
// ngtcp2 client gtlsclient), curl over HTTPS for Alt-Svc, and raw UDP garbage.

import Foundation
import XCTest

final class HTTP3Tests: XCTestCase {
    static var clientScript: String { Paths.repoRoot.appendingPathComponent("Tests/IntegrationTests/h3client.py").path }
    /// A body large enough to need many flow-control windows (stream_window is 16 KiB below).
    static let bigBody = String(repeating: "0123456789abcdef", count: 12_500)  // 200,000 bytes

    private var harness: EdgeHarness?
    private var pki: TestPKI?
    private var port: UInt16 = 0

    override func tearDown() {
        if let h = harness {
            h.stop()
            if (testRun?.totalFailureCount ?? 0) > 0 {
                print("=== \(name) failed ===\n--- config ---\n\(h.configText)\n\(h.diagnostics())")
            } else {
                h.cleanup()
            }
        }
        harness = nil
    }

    /// Edge with 2 workers, one HTTPS listener with `http3` (`settings`).
    private func start(http3 settings: String = "{ stream_window: 16KiB, connection_window: 64KiB }") throws -> EdgeHarness {
        _ = try Paths.require("openssl")
        let h = try EdgeHarness(options: EdgeOptions())
        harness = h
        let certDir = h.dir.appendingPathComponent("certs")
        try FileManager.default.createDirectory(at: certDir, withIntermediateDirectories: true)
        let pki = try TestPKI.create(in: certDir)
        try pki.leaf("a", cn: "/CN=localhost", sans: "DNS:localhost,IP:127.0.0.1")
        self.pki = pki
        port = try Ports.free()
        let config = """
        runtime: { workers: 2 }
        admin: { address: "127.0.0.1:\(h.adminPort)" }
        listeners:
          - name: websecure
            address: "127.0.0.1:\(port)"
            protocol: https
            tls:
              certificates:
                - { cert: \(pki.file("a.pem")), key: \(pki.file("a.key")) }
            http3: \(settings)
            routes:
              - match: { path: "/big" }
                direct_response: { status: 200, body: "\(HTTP3Tests.bigBody)" }
              - match: { path: "/upstream" }
                cluster: up
              - match: { path_prefix: "/" }
                direct_response: { status: 200, body: "hello over h3\\n" }
          - name: web
            address: "127.0.0.1:\(h.listenPort)"
            routes:
              - match: { path_prefix: "/" }
                cluster: up
        clusters:
          - name: up
            endpoints: [ "127.0.0.1:\(h.upstreamPort)" ]
        """ + "\n"
        try config.write(toFile: h.configPath, atomically: true, encoding: .utf8)
        try h.startUpstream()
        try h.startEdge(binary: try Paths.edgeBinary())
        return h
    }

    private func h3(_ args: [String], timeout: Double = 120) throws -> [String: Any] {
        let r = try runCommand(try Paths.require("python3"), [HTTP3Tests.clientScript, "--port", "\(port)"] + args, timeout: timeout)
        guard let j = try? JSONSerialization.jsonObject(with: r.stdout) as? [String: Any] else {
            throw HarnessError("h3client.py gave no JSON (status \(r.status)): \(r.stdoutText) \(r.stderr)")
        }
        return j
    }

    /// Sum over workers of a metric family.
    private func total(_ h: EdgeHarness, _ family: String) throws -> Double {
        EdgeHarness.parseMetrics(try h.metricsText()).filter { $0.key.hasPrefix(family + "{") }.map(\.value).reduce(0, +)
    }

    private func perWorker(_ h: EdgeHarness, _ family: String) throws -> [Double] {
        let m = EdgeHarness.parseMetrics(try h.metricsText())
        return (0..<2).map { m["\(family){worker=\"\($0)\"}"] ?? 0 }
    }

    private func sha256(_ s: String) throws -> String {
        guard let h = harness else { throw HarnessError("no harness") }
        let path = h.dir.appendingPathComponent("expected-\(s.utf8.count)").path
        try s.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try runCommand(try Paths.require("sha256sum"), [path], timeout: 10)
        return String(r.stdoutText.prefix(64))
    }

    func testGetAndPostWithBodies() throws {
        let h = try start()
        let get = try h3(["--path", "/"])
        XCTAssertEqual(get["errors"] as? [String], [], "\(get)")
        XCTAssertEqual(get["statuses"] as? [Int], [200])
        XCTAssertEqual(get["sha256"] as? [String], [try sha256("hello over h3\n")])
        // 200 KB response over a 16 KiB stream window: streamed under flow control.
        let big = try h3(["--path", "/big"])
        XCTAssertEqual(big["errors"] as? [String], [], "\(big)")
        XCTAssertEqual(big["lengths"] as? [Int], [HTTP3Tests.bigBody.utf8.count])
        XCTAssertEqual(big["sha256"] as? [String], [try sha256(HTTP3Tests.bigBody)], "body changed on the way")
        // 1 MiB request body: credited back window by window, then answered.
        let post = try h3(["--path", "/", "--method", "POST", "--body-size", "1048576"])
        XCTAssertEqual(post["errors"] as? [String], [], "\(post)")
        XCTAssertEqual(post["statuses"] as? [Int], [200])
        // Routes to clusters are not served over HTTP/3 yet: a clear 502, not a hang.
        let up = try h3(["--path", "/upstream"])
        XCTAssertEqual(up["statuses"] as? [Int], [502], "\(up)")
        let headers = (up["headers"] as? [[String]]) ?? []
        XCTAssertTrue(headers.contains(["x-edge-error", "h3_upstream_unsupported"]), "\(headers)")
    }

    func testThousandRequestsOnOneConnection() throws {
        let h = try start()
        let r = try h3(["--requests", "1000"], timeout: 180)
        XCTAssertEqual(r["errors"] as? [String], [], "\(r)")
        XCTAssertEqual(r["responses"] as? Int, 1000)
        XCTAssertEqual(r["statuses"] as? [Int], [200])
        XCTAssertEqual(try total(h, "edge_quic_connections_total"), 1)
        XCTAssertEqual(try total(h, "edge_http3_streams_total"), 1000)
    }

    func testHundredConnectionsAcrossTwoWorkersNoneMisrouted() throws {
        let h = try start()
        let r = try h3(["--connections", "100", "--requests", "3"], timeout: 180)
        XCTAssertEqual(r["errors"] as? [String], [], "\(r)")
        XCTAssertEqual(r["responses"] as? Int, 300)
        let perWorker = try perWorker(h, "edge_quic_connections_total")
        XCTAssertEqual(perWorker.reduce(0, +), 100, "\(perWorker)")
        XCTAssertTrue(perWorker.allSatisfy { $0 > 0 }, "both workers serve connections: \(perWorker)")
        XCTAssertEqual(try total(h, "edge_quic_misrouted_total"), 0, "the BPF program steers every datagram to its connection's worker")
        XCTAssertEqual(try total(h, "edge_quic_handshakes_completed_total"), 100)
    }

    func testRetryAlwaysIsCompleted() throws {
        let h = try start(http3: "{ retry: always }")
        let r = try h3(["--connections", "3"])
        XCTAssertEqual(r["errors"] as? [String], [], "\(r)")
        XCTAssertEqual(r["statuses"] as? [Int], [200])
        XCTAssertGreaterThanOrEqual(try total(h, "edge_quic_retries_total"), 3)
        XCTAssertGreaterThanOrEqual(try total(h, "edge_quic_retry_tokens_valid_total"), 3)
        XCTAssertEqual(try total(h, "edge_quic_connections_total"), 3, "one connection per client, made only after the Retry")
    }

    func testCurlOverHTTPSSeesAltSvc() throws {
        let h = try start()
        guard let pki else { return XCTFail("no pki") }
        let r = try Curl.run(["--cacert", pki.file("ca.pem"), "--resolve", "localhost:\(port):127.0.0.1", "-v", "https://localhost:\(port)/"], timeout: 20)
        XCTAssertEqual(r.status, 200, r.stderr)
        XCTAssertTrue(r.headers.contains("Alt-Svc: h3=\":\(port)\"; ma=86400"), r.headers)
        // The plain listener says nothing about HTTP/3.
        let plain = try Curl.run(["-v", "http://127.0.0.1:\(h.listenPort)/"], timeout: 20)
        XCTAssertFalse(plain.headers.contains("Alt-Svc"), plain.headers)
    }

    func testNgtcp2ClientGet() throws {
        let client = "/usr/bin/gtlsclient"
        guard FileManager.default.isExecutableFile(atPath: client) else { throw XCTSkip("ngtcp2-client (gtlsclient) not installed") }
        _ = try start()
        let r = try runCommand(client, ["--exit-on-all-streams-close", "--timeout=10s", "127.0.0.1", "\(port)", "https://localhost:\(port)/"], timeout: 30)
        let out = r.stdoutText + r.stderr
        XCTAssertTrue(out.contains("[:status: 200]"), out.suffix(2000).description)
        XCTAssertTrue(out.contains("68 65 6c 6c 6f 20 6f 76  65 72 20 68 33"), "body 'hello over h3' in the hex dump: \(out.suffix(2000))")
    }

    /// Steering proof independent of 4-tuple hashing: datagrams from 40
    /// different source ports whose connection id names worker 1 all reach
    /// worker 1 (which answers each unknown id of its own with a stateless
    /// reset); none reach worker 0 (which would count them misrouted).
    func testBPFSteersByConnectionIdByte() throws {
        let h = try start()
        let script = """
        import os, socket
        for worker in (1, 0):
            for i in range(20):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.sendto(bytes([0x40, worker]) + os.urandom(17) + os.urandom(60), ("127.0.0.1", \(port)))
                s.close()
        """
        let path = h.dir.appendingPathComponent("steer.py").path
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        let g = try runCommand(try Paths.require("python3"), [path], timeout: 60)
        XCTAssertEqual(g.status, 0, g.stderr)
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertEqual(try perWorker(h, "edge_quic_stateless_resets_total"), [20, 20], "each id reached the worker named in its first byte")
        XCTAssertEqual(try total(h, "edge_quic_misrouted_total"), 0)
        XCTAssertEqual(try total(h, "edge_quic_connections_total"), 0)
    }

    func testGarbageDatagramsCreateNoConnections() throws {
        let h = try start()
        let script = """
        import os, socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(3000):
            n = [1, 7, 25, 100, 1200, 1350][i % 6]
            d = bytearray(os.urandom(n))
            if i % 3 == 0 and n >= 25:
                d[0] = 0xc0; d[1:5] = b'\\x00\\x00\\x00\\x01'; d[5] = 8   # long header v1, random payload
            s.sendto(bytes(d), ("127.0.0.1", \(port)))
        # Empty datagrams (libngtcp2 asserts on zero length: Edge must never pass one on).
        for i in range(50):
            s.sendto(b'', ("127.0.0.1", \(port)))
        # Truncated Initials (under 1,200 bytes) with a proper header.
        for i in range(300):
            s.sendto(b'\\xc0\\x00\\x00\\x00\\x01\\x08' + os.urandom(8) + b'\\x00' + os.urandom(i % 900), ("127.0.0.1", \(port)))
        """
        let path = h.dir.appendingPathComponent("garbage.py").path
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        let g = try runCommand(try Paths.require("python3"), [path], timeout: 60)
        XCTAssertEqual(g.status, 0, g.stderr)
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertEqual(try total(h, "edge_quic_connections_total"), 0, "garbage never allocates a connection")
        XCTAssertGreaterThan(try total(h, "edge_quic_rejected_total"), 0)
        // And Edge keeps serving, over QUIC and HTTPS.
        let r = try h3([])
        XCTAssertEqual(r["statuses"] as? [Int], [200], "\(r)")
        XCTAssertEqual(try total(h, "edge_quic_connections_total"), 1)
    }
}
