// WebSocket / Upgrade relay on HTTP routes through the real edge binary: a
// python `websockets` echo round trip of 10,000 messages, an Upgrade the
// upstream answers with 200 staying HTTP, and bytes sent right after an
// Upgrade head never reaching the upstream before its 101.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class WebSocketTests: L4TestCase {

    /// RFC 6455 §5.7 example: a masked text frame "Hello".
    private let fakeFrame: [UInt8] = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]

    private func upgradeHead(_ path: String, port: UInt16) -> String {
        "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    }

    /// HTTP listener: /ws* → `cluster`, everything else → upstream.py.
    private func startWeb(wsPort: UInt16, httpPort: UInt16) throws -> UInt16 {
        let lp = try w.port()
        try w.startEdge(w.head + """
            listeners:
              - name: web
                address: "127.0.0.1:\(lp)"
                protocol: http
                routes:
                  - match: { path_prefix: "/ws" }
                    cluster: ws
                  - match: { path_prefix: "/" }
                    cluster: up
            clusters:

            """ + cluster("ws", [wsPort]) + cluster("up", [httpPort]))
        return lp
    }

    // MARK: 8. websockets echo, 10,000 messages

    func testWebSocketEchoTenThousandMessages() throws {
        let wsPort = try w.port(), up = try w.port()
        try w.startTool("ws-echo-server", port: wsPort)
        try w.startUpstreamPy(port: up)
        let lp = try startWeb(wsPort: wsPort, httpPort: up)
        let before = EdgeHarness.perWorker(try w.metrics(), "edge_relay_bytes_total")["0"] ?? 0

        let r = try w.runTool(["ws-client", "--url", "ws://127.0.0.1:\(lp)/ws", "--count", "10000", "--timeout", "150"],
                              timeout: 180)
        print("ws-client through edge: \(r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) \(r.stderr.suffix(1000))")
        XCTAssertEqual(r.status, 0, "ws-client failed: \(r.stdoutText) \(r.stderr.suffix(2000))")
        let j = try jsonLine(r.stdoutText)
        XCTAssertEqual(j["ok"] as? Bool, true, "\(j)")
        XCTAssertEqual(j["messages"] as? Int, 10_000, "\(j)")

        // Plain HTTP on the same listener still works afterwards.
        let h = try HTTP.get(port: lp, "/echo")
        XCTAssertEqual(h.status, 200, h.summary)
        try w.checkEdgeAlive()

        // The upgraded connection is an L4 relay: its bytes are counted.
        var after = 0.0
        let deadline = OS.now() + 3
        repeat {
            after = EdgeHarness.perWorker(try w.metrics(), "edge_relay_bytes_total")["0"] ?? -1
            if after - before >= 2 * 20_000_000 { break }
            OS.sleepMs(100)
        } while OS.now() < deadline
        print("edge_relay_bytes_total{worker=\"0\"}: \(Int(before)) → \(Int(after))")
        let payload = Double(j["bytes"] as? Int ?? 0)
        XCTAssertGreaterThanOrEqual(after - before, 2 * payload,
                                    "relay byte counter must include both directions of the websocket payload (\(Int(2 * payload)))")
    }

    // MARK: 9. Upgrade answered with 200 stays HTTP

    func testUpgradeAnsweredWith200StaysHTTP() throws {
        let up = try w.port(), probe = try w.port()
        try w.startUpstreamPy(port: up)
        try w.startTool("upgrade-probe", port: probe)
        let lp = try startWeb(wsPort: probe, httpPort: up)

        let c = try RawClient(port: lp, timeout: 5)
        defer { c.close() }
        try c.send(upgradeHead("/echo", port: lp))
        let r1 = try c.readResponse()
        XCTAssertEqual(r1.status, 200, r1.summary)
        let e = try EchoedRequest(r1)
        XCTAssertEqual(e.values("Upgrade").map { $0.lowercased() }, ["websocket"],
                       "the Upgrade header must be passed to the upstream; it saw \(e.headers)")
        XCTAssertTrue((e.combined("Connection") ?? "").lowercased().contains("upgrade"),
                      "Connection: Upgrade must be passed to the upstream; it saw \(e.headers)")
        // Same connection: still HTTP.
        let r2 = try HTTP.request(c, "/echo?second=1", port: lp)
        XCTAssertEqual(r2.status, 200, "second request after a 200-answered Upgrade: \(r2.summary)")
        let e2 = try EchoedRequest(r2)
        XCTAssertEqual(e2.query, "second=1", "the second request must be parsed and forwarded as HTTP")
        XCTAssertFalse(e2.has("Upgrade"))
        let r3 = try HTTP.request(c, "/status/204", port: lp)
        XCTAssertEqual(r3.status, 204, r3.summary)
        try w.checkEdgeAlive()
    }

    /// Bytes after an Upgrade head reach the upstream only after it answered 101.
    func testBytesAfterUpgradeHeadWaitFor101() throws {
        let up = try w.port(), probe = try w.port()
        try w.startUpstreamPy(port: up)
        let p = try w.startTool("upgrade-probe", port: probe)
        let lp = try startWeb(wsPort: probe, httpPort: up)

        let c = try RawClient(port: lp, timeout: 8)
        defer { c.close() }
        try c.send(Array(upgradeHead("/ws101?ms=600&expect=\(fakeFrame.count)", port: lp).utf8) + fakeFrame)
        let r = try c.readResponse(skipInterim: false)
        XCTAssertEqual(r.status, 101, r.summary)
        let (rest, _) = c.readToClose(timeout: 5)
        let report = String(decoding: rest, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        print("upgrade-probe report: \(report)")
        let fields = Dictionary(report.split(separator: " ").compactMap { kv -> (String, String)? in
            let p = kv.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return p.count == 2 ? (String(p[0]), String(p[1])) : nil
        }, uniquingKeysWith: { a, _ in a })
        XCTAssertNotNil(fields["early"], "no report from the upstream after 101 (relay broken?): \(rest.prefix(200))\n\(p.stderrText().suffix(1000))")
        XCTAssertEqual(fields["early"], "", "bytes reached the upstream before its 101: \(fields["early"] ?? "?")")
        let frameHex = fakeFrame.map { String(format: "%02x", $0) }.joined()
        XCTAssertEqual(fields["late"], frameHex,
                       "bytes the client sent after the head must be relayed (once) after the 101")
    }

    /// An Upgrade the upstream declines (200) followed by frame bytes: those
    /// bytes are the next HTTP "request" — never relayed raw to the upstream.
    func testBytesAfterDeclinedUpgradeNeverReachUpstreamRaw() throws {
        let up = try w.port(), probe = try w.port()
        try w.startUpstreamPy(port: up)
        try w.startTool("upgrade-probe", port: probe)
        let lp = try startWeb(wsPort: probe, httpPort: up)

        let c = try RawClient(port: lp, timeout: 5)
        defer { c.close() }
        try c.send(Array(upgradeHead("/ws200?ms=400", port: lp).utf8) + fakeFrame)
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 200, r.summary)
        XCTAssertEqual(r.text, "no upgrade\n")
        // The frame bytes are garbage as HTTP: edge answers 400 or closes.
        let (after, closed) = c.readToClose(timeout: 3)
        let text = String(decoding: after, as: UTF8.self)
        print("after declined upgrade: closed=\(closed) \(text.prefix(120).debugDescription)")
        XCTAssertTrue(closed, "edge must close a connection whose next 'request' is a websocket frame")
        XCTAssertTrue(text.isEmpty || text.hasPrefix("HTTP/1.1 400"), "expected nothing or a 400, got \(text.prefix(200).debugDescription)")

        OS.sleepMs(300)
        let log = try HTTP.get(port: probe, "/_log")
        guard let entries = try JSONSerialization.jsonObject(with: Data(log.body)) as? [[String: Any]] else {
            throw HarnessError("probe log: \(log.summary)")
        }
        print("upgrade-probe log: \(entries)")
        let ups = entries.filter { $0["event"] as? String == "upgrade" }
        XCTAssertEqual(ups.count, 1, "\(entries)")
        XCTAssertEqual(ups.first?["early_len"] as? Int, 0, "frame bytes reached the upstream while it was deciding: \(entries)")
        XCTAssertEqual(ups.first?["after_hex"] as? String ?? "", "", "bytes reached the upstream after its 200: \(entries)")
        XCTAssertTrue(entries.allSatisfy { $0["event"] as? String != "garbage" },
                      "frame bytes were forwarded to the upstream after its 200: \(entries)")
    }
}
