// TCP relay modes (`tcp: { relay: auto | copy | splice, splice_after }`)
// through the real edge binary: Redis traffic and a checksummed bulk transfer
// in both directions under each mode, the auto rule (small messages stay in
// copy mode, a bulk run switches to splice; counted in /metrics), and the
// idle timeout and PROXY header in copy mode.

import Foundation
import XCTest

final class RelayModeTests: L4TestCase {
    func redisRoundTrips(_ port: UInt16, _ redisPort: UInt16) throws {
        let cli = try Paths.require("redis-cli")
        let set = try runCommand(cli, ["-h", "127.0.0.1", "-p", String(port), "set", "k", "v-relay"], timeout: 10)
        XCTAssertEqual(set.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines), "OK", set.stderr)
        let get = try runCommand(cli, ["-h", "127.0.0.1", "-p", String(port), "get", "k"], timeout: 10)
        XCTAssertEqual(get.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines), "v-relay", get.stderr)
        // Many pipelined small commands on one connection.
        let bench = try Paths.require("redis-benchmark")
        let b = try runCommand(bench, ["-h", "127.0.0.1", "-p", String(port), "-q", "-n", "20000", "-c", "4", "-P", "8", "-t", "set,get"], timeout: 120)
        XCTAssertEqual(b.status, 0, b.stderr)
        XCTAssertTrue(b.stdoutText.contains("GET:") && b.stdoutText.contains("SET:"), b.stdoutText.suffix(500).description)
        XCTAssertFalse((b.stdoutText + b.stderr).contains("ERR"), b.stdoutText.suffix(1000).description)
    }

    /// Download and upload of `n` pattern bytes with SHA-256 checks.
    func bulk(_ downListen: UInt16, _ upListen: UInt16, _ n: Int, _ down: ManagedProcess, _ up: ManagedProcess) throws {
        let d = try w.runTool(["bulk-client", "--port", String(downListen), "--mode", "recv", "--size", String(n)], timeout: 120)
        XCTAssertEqual(d.status, 0, "bulk-client recv: \(d.stderr)")
        let dj = try jsonLine(d.stdoutText)
        let sent = try waitJSONLine(down, key: "sent", timeout: 30)
        XCTAssertEqual(dj["bytes"] as? Int, n)
        XCTAssertEqual(dj["sha256"] as? String, sent["sha256"] as? String, "download checksum")
        let u = try w.runTool(["bulk-client", "--port", String(upListen), "--mode", "send", "--size", String(n)], timeout: 120)
        XCTAssertEqual(u.status, 0, "bulk-client send: \(u.stderr)")
        let uj = try jsonLine(u.stdoutText)
        XCTAssertEqual(uj["peer_bytes"] as? Int, n, "\(uj)")
        XCTAssertEqual(uj["peer_sha256"] as? String, uj["sha256"] as? String, "upload checksum: \(uj)")
        _ = try waitJSONLine(up, key: "received", timeout: 30)
    }

    func run(mode: String) throws -> (copies: Double, switches: Double) {
        let rp = try w.port(), lr = try w.port()
        let downPort = try w.port(), upPort = try w.port(), ldown = try w.port(), lup = try w.port()
        let n = 32 << 20
        try w.startRedis(port: rp)
        let down = try w.startTool("bulk-server", port: downPort, ["--mode", "send", "--size", String(n)], name: "bulk-send")
        let up = try w.startTool("bulk-server", port: upPort, ["--mode", "recv", "--size", String(n)], name: "bulk-recv")
        let relay = ["tcp: { relay: \(mode) }"]
        try w.startEdge(w.head + "listeners:\n"
                        + tcpListener("redis", port: lr, cluster: "redis", extra: relay)
                        + tcpListener("down", port: ldown, cluster: "down", extra: relay)
                        + tcpListener("up", port: lup, cluster: "up", extra: relay)
                        + "clusters:\n" + cluster("redis", [rp]) + cluster("down", [downPort]) + cluster("up", [upPort]))
        try redisRoundTrips(lr, rp)
        let afterRedis = try w.metrics()
        let redisSwitches = EdgeHarness.perWorker(afterRedis, "edge_relay_splice_switches_total")["0"] ?? -1
        XCTAssertEqual(redisSwitches, 0, "\(mode): small Redis messages never switch to splice")
        try bulk(ldown, lup, n, down, up)
        try w.checkEdgeAlive()
        let m = try w.metrics()
        return (EdgeHarness.perWorker(m, "edge_relay_copy_started_total")["0"] ?? -1,
                EdgeHarness.perWorker(m, "edge_relay_splice_switches_total")["0"] ?? -1)
    }

    func testCopyMode() throws {
        let r = try run(mode: "copy")
        XCTAssertGreaterThanOrEqual(r.copies, 7, "redis-cli x2, redis-benchmark x4+, bulk x2 relays in copy mode")
        XCTAssertEqual(r.switches, 0, "relay: copy never splices")
    }

    func testSpliceMode() throws {
        let r = try run(mode: "splice")
        XCTAssertEqual(r.copies, 0, "relay: splice never copies")
        XCTAssertEqual(r.switches, 0)
    }

    func testAutoModeSwitchesOnBulkOnly() throws {
        let r = try run(mode: "auto")
        XCTAssertGreaterThanOrEqual(r.copies, 7)
        XCTAssertGreaterThanOrEqual(r.switches, 1, "a 32 MiB transfer fills buffers back to back: auto switches to splice")
    }

    /// Copy mode keeps the PROXY header towards the upstream and the idle timeout.
    func testCopyModeProxyHeaderAndIdleTimeout() throws {
        let pp = try w.port(), lp = try w.port()
        let rec = try w.startTool("pp-recorder", port: pp, ["--keepalive"], name: "pp")
        try w.startEdge(w.head + "listeners:\n"
                        + tcpListener("pp", port: lp, cluster: "pp", extra: ["tcp: { relay: copy, idle_timeout: 1s }"])
                        + "clusters:\n" + cluster("pp", [pp], extra: ["proxy_protocol: v1"]))
        let c = try RawClient(port: lp)
        try c.send("GET /copy HTTP/1.1\r\nHost: x\r\n\r\n")
        let resp = try c.readResponse()
        XCTAssertEqual(resp.status, 200)
        XCTAssertTrue(resp.text.contains("\"request_line\": \"GET /copy HTTP/1.1\""), resp.text)
        let o = try waitJSONLine(rec, key: "version", timeout: 15)
        XCTAssertEqual(o["version"] as? Int, 1, "PROXY v1 header seen by the upstream: \(o)")
        XCTAssertTrue(c.waitForClose(timeout: 20), "idle relay should close after idle_timeout")
        c.close()
        try w.checkEdgeAlive()
    }
}
