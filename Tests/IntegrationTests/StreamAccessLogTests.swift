// One access-log line per L4 session (TCP listener), with the bytes moved
// each way, and a refused upstream logged with its cause.

import Foundation
import XCTest

final class StreamAccessLogTests: L4TestCase {
    func testOneLinePerTCPSession() throws {
        let up = try w.port(), lp = try w.port(), refusedListen = try w.port(), dead = try w.port()
        let log = w.dir.appendingPathComponent("access.log").path
        try w.startTool("halfclose-server", port: up)
        try w.startEdge(w.head + "access_log: { path: \"\(log)\", format: json }\n" + "listeners:\n"
                        + tcpListener("hc", port: lp, cluster: "hc") + tcpListener("gone", port: refusedListen, cluster: "gone")
                        + "clusters:\n" + cluster("hc", [up]) + cluster("gone", [dead]))
        let c = try RawClient(port: lp, timeout: 5)
        try c.send([UInt8](repeating: UInt8(ascii: "x"), count: 10_240))
        c.shutdownWrite()
        let (bytes, closed) = c.readToClose(timeout: 5)
        c.close()
        XCTAssertEqual(String(decoding: bytes, as: UTF8.self), "got 10240\n")
        XCTAssertTrue(closed)
        let r = try RawClient(port: refusedListen, timeout: 5)
        XCTAssertTrue(r.waitForClose(timeout: 5), "a refused upstream closes the client")
        r.close()

        var lines: [[String: Any]] = []
        let deadline = OS.now() + 10
        while OS.now() < deadline {
            lines = (OS.readFile(log) ?? "").split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            if lines.count >= 2 { break }
            OS.sleepMs(50)
        }
        XCTAssertEqual(lines.count, 2, "one line per session: \(OS.readFile(log) ?? "")")
        let ok = lines.first { $0["listener"] as? String == "hc" }
        XCTAssertEqual(ok?["protocol"] as? String, "tcp")
        XCTAssertEqual(ok?["cluster"] as? String, "hc")
        XCTAssertEqual(ok?["endpoint"] as? String, "127.0.0.1:\(up)")
        XCTAssertEqual(ok?["bytes_in"] as? Int, 10_240)
        XCTAssertEqual(ok?["bytes_out"] as? Int, 10)
        XCTAssertTrue(ok?["status"] is NSNull)
        XCTAssertEqual((ok?["request_id"] as? String)?.count, 32)
        XCTAssertLessThanOrEqual(ok?["upstream_connect_ms"] as? Double ?? 1e9, ok?["total_ms"] as? Double ?? 0)
        let gone = lines.first { $0["listener"] as? String == "gone" }
        XCTAssertEqual(gone?["cluster"] as? String, "gone")
        XCTAssertNotNil(gone?["error"] as? String, "a failed session names its cause: \(String(describing: gone))")
        try w.checkEdgeAlive()
    }
}
