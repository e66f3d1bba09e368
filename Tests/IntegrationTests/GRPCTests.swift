// gRPC through Edge with real grpcio on both sides (grpc/grpc_echo.py, generic
// handlers, no codegen): a grpcio client speaks h2c prior knowledge to an
// Edge listener with `http2: { cleartext: true }`, Edge forwards to a grpcio
// server in a `protocol: http2` cluster. Statuses, trailer metadata, streaming
// in every direction, deadlines (the client's, grpc-timeout enforced by Edge,
// the route timeout) and Edge's own errors as gRPC statuses.

import Foundation
import XCTest

/// The grpcio echo server (`grpc_echo.py serve`) on a free port, stopped by PID.
final class GRPCPeer {
    static var script: String { Paths.repoRoot.appendingPathComponent("Tests/IntegrationTests/grpc/grpc_echo.py").path }
    let port: UInt16
    private(set) var process: ManagedProcess?
    let dir: URL

    let tls: (cert: String, key: String)?

    init(dir: URL, port: UInt16? = nil, maxStreams: Int = 0, tls: (cert: String, key: String)? = nil) throws {
        self.dir = dir
        self.port = try port ?? Ports.free()
        self.tls = tls
        try start(maxStreams: maxStreams)
    }

    func start(maxStreams: Int = 0) throws {
        var args = ["-u", GRPCPeer.script, "serve", "--port", String(port)]
        if maxStreams > 0 { args += ["--max-streams", String(maxStreams)] }
        if let tls { args += ["--cert", tls.cert, "--key", tls.key] }
        process = try ManagedProcess(name: "grpc-\(port)-\(Int(OS.now() * 1000) % 100_000)", executable: try Paths.require("python3"), arguments: args, dir: dir)
        let deadline = OS.now() + 15
        while OS.now() < deadline {
            if Ports.connectErrno(port) == 0 { return }
            if process?.isRunning == false { break }
            OS.sleepMs(50)
        }
        throw HarnessError("grpc_echo.py did not start on \(port): \(process?.stderrText() ?? "")")
    }

    func stop() { process?.stop(); process = nil }

    /// `grpc_echo.py call|raw ...` → its JSON line.
    static func run(_ args: [String], timeout: Double = 60) throws -> [String: Any] {
        let r = try runCommand(try Paths.require("python3"), [script] + args, timeout: timeout)
        guard let j = try? JSONSerialization.jsonObject(with: r.stdout) as? [String: Any] else {
            throw HarnessError("grpc_echo.py \(args.joined(separator: " ")) gave no JSON: \(r.stdoutText) \(r.stderr)")
        }
        return j
    }

    /// Edge options: h2c listener, routes for the echo service and a `protocol: http2` cluster `grpc`.
    static func edgeOptions(grpcPort: UInt16, refusedPort: UInt16, extraClusterLines: [String] = [], extraRouteLines: [String] = []) -> EdgeOptions {
        var o = EdgeOptions()
        o.listenerExtra = ["    http2: { cleartext: true }"]
        o.extraRoutes = ([
            "      - match: { path_prefix: \"/edge.test.Echo/\" }",
            "        cluster: grpc",
            "        timeout: 10s",
            "      - match: { path_prefix: \"/short/\" }",
            "        cluster: grpc",
            "        strip_prefix: true",
            "        timeout: 400ms",
            "      - match: { path_prefix: \"/down.Echo/\" }",
            "        cluster: grpc_down",
            "      - match: { path_prefix: \"/edge-only/\" }",
            "        cluster: grpc",
            "        strip_prefix: true",
            "        request_headers: { remove: [ grpc-timeout ] }",
        ] + extraRouteLines).joined(separator: "\n")
        o.extraTopLevel = ([
            "  - name: grpc",
            "    protocol: http2",
            "    endpoints: [ \"127.0.0.1:\(grpcPort)\" ]",
            "    connect_timeout: 1s",
        ] + extraClusterLines + [
            "  - name: grpc_down",
            "    protocol: http2",
            "    endpoints: [ \"127.0.0.1:\(refusedPort)\" ]",
            "    connect_timeout: 1s",
        ]).joined(separator: "\n")
        return o
    }
}

final class GRPCTests: EdgeTestCase {
    private var peer: GRPCPeer?

    override func tearDown() {
        peer?.stop()
        peer = nil
        super.tearDown()
    }

    private func start() throws -> EdgeHarness {
        let dir = try Paths.makeTempDir("grpc")
        let p = try GRPCPeer(dir: dir)
        peer = p
        let refused = try Ports.free()
        return try startEdge(GRPCPeer.edgeOptions(grpcPort: p.port, refusedPort: refused))
    }

    private func dict(_ any: Any?) -> [String: Any] { any as? [String: Any] ?? [:] }

    func testUnaryStreamingStatusesAndClientDeadline() throws {
        let h = try start()
        let out = try GRPCPeer.run(["call", "--target", "127.0.0.1:\(h.listenPort)", "all"])
        // Unary with request metadata in and trailer metadata out.
        let unary = dict(out["unary"])
        XCTAssertEqual(unary["code"] as? String, "OK", "\(out)")
        XCTAssertEqual(dict(unary["value"])["reply"] as? String, "echo:hello", "\(out)")
        XCTAssertEqual(dict(dict(unary["value"])["trailers"])["x-trailer"] as? String, "t-m1", "request metadata in, trailer metadata out: \(out)")
        // Streaming in every direction.
        XCTAssertEqual(dict(out["server_stream"])["value"] as? [String], ["msg-0", "msg-1", "msg-2", "msg-3", "msg-4"], "\(out)")
        XCTAssertEqual(dict(out["client_stream"])["value"] as? String, "a+b+c", "\(out)")
        XCTAssertEqual(dict(out["bidi"])["value"] as? [String], ["re:x", "re:y", "re:z"], "\(out)")
        // A 300 KB message crosses both flow-control windows.
        XCTAssertEqual(dict(out["big"])["value"] as? Int, 300_005, "\(out)")
        // NOT_FOUND with its message and trailer metadata (text and -bin) passed back.
        let nf = dict(out["not_found"])
        XCTAssertEqual(nf["code"] as? String, "NOT_FOUND", "\(out)")
        XCTAssertEqual(nf["details"] as? String, "thing not found", "\(out)")
        XCTAssertEqual(dict(nf["trailers"])["x-detail"] as? String, "no such thing", "\(out)")
        XCTAssertEqual(dict(nf["trailers"])["x-bin-bin"] as? String, "000102", "\(out)")
        // The client's deadline (0.5 s) is shorter than the server's sleep (3 s).
        XCTAssertEqual(dict(out["deadline"])["code"] as? String, "DEADLINE_EXCEEDED", "\(out)")
        XCTAssertLessThan(out["deadline_seconds"] as? Double ?? 99, 2.5, "\(out)")
        // Edge keeps serving after the cancelled call.
        XCTAssertEqual(dict(try GRPCPeer.run(["call", "--target", "127.0.0.1:\(h.listenPort)", "unary"])["result"])["code"] as? String, "OK")
    }

    func testEdgeEnforcesGrpcTimeoutAndRouteTimeout() throws {
        let h = try start()
        // grpc-timeout 300m and no client-side deadline: Edge ends the call itself (the route
        // removes grpc-timeout towards the upstream, so the upstream cannot be the one that stops).
        let raw = try GRPCPeer.run(["raw", "--port", String(h.listenPort), "--path", "/edge-only/edge.test.Echo/Unary", "--timeout", "300m"])
        let head = dict(raw["headers"])
        XCTAssertEqual(head[":status"] as? String, "200", "\(raw)")
        XCTAssertEqual(head["grpc-status"] as? String, "4", "DEADLINE_EXCEEDED from Edge: \(raw)")
        XCTAssertEqual(head["x-edge-error"] as? String, "upstream_timeout", "\(raw)")
        XCTAssertLessThan(raw["seconds"] as? Double ?? 99, 2.5, "\(raw)")
        // A grpc-timeout longer than the work: the call completes (status in the trailers).
        let ok = try GRPCPeer.run(["raw", "--port", String(h.listenPort), "--path", "/edge.test.Echo/Unary", "--timeout", "5S", "--body", "sleep:100"])
        XCTAssertEqual(dict(ok["trailers"])["grpc-status"] as? String, "0", "\(ok)")
        XCTAssertGreaterThan(ok["data"] as? Int ?? 0, 5, "\(ok)")
        // No grpc-timeout, route timeout 400ms: a gRPC error, not a 504 page.
        let rt = try GRPCPeer.run(["call", "--target", "127.0.0.1:\(h.listenPort)", "nodeadline-sleep", "--service", "short/edge.test.Echo"])
        let r = dict(rt["result"])
        XCTAssertEqual(r["code"] as? String, "DEADLINE_EXCEEDED", "\(rt)")
        XCTAssertEqual(dict(r["trailers"])["x-edge-error"] as? String, "upstream_timeout", "\(rt)")
        XCTAssertLessThan(rt["seconds"] as? Double ?? 99, 2.5, "\(rt)")
        // The upstream connection survives the cancelled streams.
        XCTAssertEqual(dict(try GRPCPeer.run(["call", "--target", "127.0.0.1:\(h.listenPort)", "unary"])["result"])["code"] as? String, "OK")
    }

    func testUpstreamOverTLSWithALPNh2() throws {
        let dir = try Paths.makeTempDir("grpc-tls")
        let pki = try TestPKI.create(in: dir)
        try pki.leaf("up", cn: "/CN=localhost", sans: "DNS:localhost,IP:127.0.0.1")
        let p = try GRPCPeer(dir: dir, tls: (pki.file("up.pem"), pki.file("up.key")))
        peer = p
        let o = GRPCPeer.edgeOptions(grpcPort: p.port, refusedPort: try Ports.free(), extraClusterLines: [
            "    tls: { server_name: localhost, ca: \(pki.file("ca.pem")), verify: true }",
            "  - name: grpc_badname",
            "    protocol: http2",
            "    endpoints: [ \"127.0.0.1:\(p.port)\" ]",
            "    tls: { server_name: other.test, ca: \(pki.file("ca.pem")), verify: true }",
        ], extraRouteLines: [
            "      - match: { path_prefix: \"/badtls/\" }",
            "        cluster: grpc_badname",
            "        strip_prefix: true",
        ])
        let h = try startEdge(o)
        let out = try GRPCPeer.run(["call", "--target", "127.0.0.1:\(h.listenPort)", "all"])
        XCTAssertEqual(dict(out["unary"])["code"] as? String, "OK", "\(out)")
        XCTAssertEqual(dict(out["bidi"])["value"] as? [String], ["re:x", "re:y", "re:z"], "\(out)")
        XCTAssertEqual(dict(out["not_found"])["code"] as? String, "NOT_FOUND", "\(out)")
        XCTAssertEqual(dict(dict(out["not_found"])["trailers"])["x-detail"] as? String, "no such thing", "\(out)")
        let m = EdgeHarness.parseMetrics(try h.metricsText())
        XCTAssertGreaterThanOrEqual(m.filter { $0.key.hasPrefix("edge_tls_upstream_handshakes_total") }.values.reduce(0, +), 1, "TLS towards the upstream")
        // A certificate for another name: the handshake fails, the call gets UNAVAILABLE with the cause.
        let bad = dict(try GRPCPeer.run(["call", "--target", "127.0.0.1:\(h.listenPort)", "unary", "--service", "badtls/edge.test.Echo"])["result"])
        XCTAssertEqual(bad["code"] as? String, "UNAVAILABLE", "\(bad)")
        XCTAssertEqual(dict(bad["trailers"])["x-edge-error"] as? String, "upstream_tls_failure", "\(bad)")
    }

    func testDrainSendsGoawayAndFinishesOpenStreams() throws {
        let h = try start()
        // A call in flight (the upstream sleeps 1.5 s) when Edge is told to stop.
        let client = try ManagedProcess(name: "raw-drain", executable: try Paths.require("python3"),
                                        arguments: [GRPCPeer.script, "raw", "--port", String(h.listenPort), "--path", "/edge.test.Echo/Unary", "--body", "sleep:1500"],
                                        dir: h.dir)
        let sent = OS.now() + 15
        while OS.now() < sent && !client.stderrText().contains("sent") { OS.sleepMs(50) }
        OS.sleepMs(400)
        h.edge?.signal(SIGTERM)
        _ = client.wait(timeout: 20)
        guard let out = try? JSONSerialization.jsonObject(with: Data(client.stdoutText().utf8)) as? [String: Any] else {
            return XCTFail("raw client gave no JSON: \(client.stdoutText()) \(client.stderrText())")
        }
        let goaway = dict(out["goaway"])
        XCTAssertEqual(goaway["code"] as? Int, 0, "GOAWAY NO_ERROR on drain: \(out)")
        XCTAssertEqual(goaway["last_stream_id"] as? Int, 1, "names the stream in flight: \(out)")
        XCTAssertEqual(dict(out["trailers"])["grpc-status"] as? String, "0", "the open stream still completes: \(out)")
    }

    func testEdgeErrorsAreGRPCStatuses() throws {
        let h = try start()
        // Connection refused → UNAVAILABLE (14) with Edge's cause.
        let down = dict(try GRPCPeer.run(["call", "--target", "127.0.0.1:\(h.listenPort)", "unary", "--service", "down.Echo"])["result"])
        XCTAssertEqual(down["code"] as? String, "UNAVAILABLE", "\(down)")
        XCTAssertEqual(dict(down["trailers"])["x-edge-error"] as? String, "upstream_connect_refused", "\(down)")
        // No route → UNIMPLEMENTED (HTTP 404 in the gRPC HTTP mapping).
        let none = dict(try GRPCPeer.run(["call", "--target", "127.0.0.1:\(h.listenPort)", "unary", "--service", "nowhere.Echo"])["result"])
        XCTAssertEqual(none["code"] as? String, "UNIMPLEMENTED", "\(none)")
        XCTAssertEqual(dict(none["trailers"])["x-edge-error"] as? String, "route_not_found", "\(none)")
        // The upstream dies: UNAVAILABLE; it comes back: served again on a fresh connection.
        peer?.stop()
        let gone = dict(try GRPCPeer.run(["call", "--target", "127.0.0.1:\(h.listenPort)", "unary"])["result"])
        XCTAssertEqual(gone["code"] as? String, "UNAVAILABLE", "\(gone)")
        try peer?.start()
        let back = dict(try GRPCPeer.run(["call", "--target", "127.0.0.1:\(h.listenPort)", "unary"])["result"])
        XCTAssertEqual(back["code"] as? String, "OK", "\(back)")
        XCTAssertEqual(back["value"] as? String, "echo:hi", "\(back)")
    }
}
