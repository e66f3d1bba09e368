import XCTest
import Logging
@testable import Edge

/// JSON log lines are valid JSON with the documented keys.
final class LoggingTests: XCTestCase {
    func testJSONLine() throws {
        let line = JSONLogHandler.format(ts: "2025-01-01T00:00:00.000Z", level: .warning, label: "edge",
                                         message: "say \"hi\"\n\u{1}", metadata: ["b": "2", "a": .array(["x"]), "c": ["k": "v"]])
        XCTAssertEqual(line, #"{"ts":"2025-01-01T00:00:00.000Z","level":"warning","label":"edge","msg":"say \"hi\"\n\u0001","metadata":{"a":["x"],"b":"2","c":{"k":"v"}}}"# + "\n")
        let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        XCTAssertEqual(obj?["msg"] as? String, "say \"hi\"\n\u{1}")
    }

    func testHandlerWritesToFD() throws {
        var fds: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]) }
        var h = JSONLogHandler(label: "t", fd: fds[1])
        h.metadata["worker"] = "1"
        h.log(event: LogEvent(level: .info, message: "hello", metadata: ["x": "y"], source: "Edge", file: #file, function: #function, line: #line))
        close(fds[1])
        var buf = [UInt8](repeating: 0, count: 1024)
        let n = buf.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
        let text = String(decoding: buf[0..<max(n, 0)], as: UTF8.self)
        XCTAssertTrue(text.hasSuffix(#""level":"info","label":"t","msg":"hello","metadata":{"worker":"1","x":"y"}}"# + "\n"), text)
        XCTAssertTrue(text.hasPrefix(#"{"ts":""#), text)
    }

    func testTimestampShape() {
        let ts = JSONLogHandler.timestamp()
        XCTAssertEqual(ts.count, 24, ts)
        XCTAssertTrue(ts.hasSuffix("Z"))
    }
}
