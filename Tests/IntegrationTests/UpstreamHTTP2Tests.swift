// The upstream HTTP/2 pool (`protocol: http2` clusters) against a real h2
// server (grpcio, which reports the connection each call came on): many
// concurrent streams from several client connections share one upstream
// connection, and the peer's SETTINGS_MAX_CONCURRENT_STREAMS is respected
// by opening more connections rather than queueing past it.

import Foundation
import XCTest

final class UpstreamHTTP2Tests: EdgeTestCase {
    private var peer: GRPCPeer?

    override func tearDown() {
        peer?.stop()
        peer = nil
        super.tearDown()
    }

    private func start(maxStreams: Int = 0) throws -> EdgeHarness {
        let p = try GRPCPeer(dir: try Paths.makeTempDir("h2up"), maxStreams: maxStreams)
        peer = p
        return try startEdge(GRPCPeer.edgeOptions(grpcPort: p.port, refusedPort: try Ports.free()))
    }

    private func metric(_ h: EdgeHarness, _ name: String) throws -> Double {
        EdgeHarness.parseMetrics(try h.metricsText()).filter { $0.key.hasPrefix(name) }.values.reduce(0, +)
    }

    func testManyConcurrentStreamsShareOneConnection() throws {
        let h = try start()
        let out = try GRPCPeer.run(["call", "--target", "127.0.0.1:\(h.listenPort)", "peers", "--count", "30", "--sleep-ms", "500"], timeout: 90)
        XCTAssertEqual((out["errors"] as? [Any])?.count, 0, "\(out)")
        XCTAssertEqual((out["peers"] as? [String])?.count, 1, "30 concurrent streams from 3 client connections, one upstream connection: \(out)")
        XCTAssertEqual(try metric(h, "edge_http2_upstream_connections_total"), 1)
        XCTAssertGreaterThanOrEqual(try metric(h, "edge_http2_upstream_streams_total"), 31)
    }

    func testPeerStreamLimitOpensMoreConnections() throws {
        let h = try start(maxStreams: 4)
        let out = try GRPCPeer.run(["call", "--target", "127.0.0.1:\(h.listenPort)", "peers", "--count", "12", "--sleep-ms", "800"], timeout: 90)
        XCTAssertEqual((out["errors"] as? [Any])?.count, 0, "\(out)")
        let peers = (out["peers"] as? [String]) ?? []
        XCTAssertGreaterThanOrEqual(peers.count, 3, "12 streams at once with SETTINGS_MAX_CONCURRENT_STREAMS 4: \(out)")
        XCTAssertLessThanOrEqual(peers.count, 6, "\(out)")
    }
}
