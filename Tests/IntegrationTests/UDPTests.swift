import Foundation
import XCTest

/// `protocol: udp` listeners: per-client sessions, replies from the listener
/// address, no loss on loopback, session expiry.
final class UDPTests: L4TestCase {
    func testDatagramsFromManyClientPortsAndSessionExpiry() throws {
        let up = try w.port(), lp = try w.port()
        try w.startTool("udp-echo", port: up)
        try w.startEdge(w.head.replacingOccurrences(of: "workers: 1", with: "workers: 2") + """
        listeners:
          - name: dns
            address: "127.0.0.1:\(lp)"
            protocol: udp
            cluster: echo
            udp: { session_timeout: 1s, max_sessions: 1000 }
        clusters:
          - name: echo
            endpoints: [ "127.0.0.1:\(up)" ]

        """)
        let r = try w.runTool(["udp-client", "--port", String(lp), "--clients", "50", "--per", "2000"], timeout: 180)
        XCTAssertEqual(r.status, 0, r.stderr)
        guard let j = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any] else {
            return XCTFail("no JSON from udp-client: \(r.stdoutText) \(r.stderr)")
        }
        let sent = j["sent"] as? Int ?? -1, received = j["received"] as? Int ?? -1
        print("udp: \(j)")
        XCTAssertEqual(sent, 100_000)
        XCTAssertEqual(received, sent, "datagrams lost on loopback: \(j)")
        XCTAssertEqual(j["wrong_session"] as? Int, 0, "a reply reached another client's socket")
        let m = try w.metrics()
        let sessions = EdgeHarness.perWorker(m, "edge_udp_sessions_active").values.reduce(0, +)
        XCTAssertEqual(sessions, 50, "one session per client port: \(m.filter { $0.key.hasPrefix("edge_udp") })")
        OS.sleepMs(2_500)
        let after = EdgeHarness.perWorker(try w.metrics(), "edge_udp_sessions_active").values.reduce(0, +)
        XCTAssertEqual(after, 0, "sessions did not expire")
    }
}
