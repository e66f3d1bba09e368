// W3C trace context through Edge and OTLP/HTTP span export to a real
// (small, Python) collector. See README "Observability".

import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class TracingTests: EdgeTestCase {
    func spans(_ path: String, atLeast count: Int, timeout: Double = 15) throws -> [[String: Any]] {
        let deadline = OS.now() + timeout
        var out: [[String: Any]] = []
        repeat {
            out = (OS.readFile(path) ?? "").split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            if out.count >= count { return out }
            OS.sleepMs(100)
        } while OS.now() < deadline
        throw HarnessError("collector got \(out.count) spans, expected \(count): \(out)")
    }

    func testTraceparentPropagatedAndSpansExported() throws {
        let dir = try Paths.makeTempDir("otlp")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("spans.jsonl").path
        let port = try Ports.free()
        let script = Paths.repoRoot.appendingPathComponent("Tests/IntegrationTests/otlp_collector.py").path
        let collector = try ManagedProcess(name: "otlp", executable: try Paths.require("python3"),
                                           arguments: ["-u", script, "--port", String(port), "--out", out], dir: dir)
        addTeardownBlock { collector.stop() }
        let deadline = OS.now() + 10
        while Ports.connectErrno(port) != 0 && OS.now() < deadline { OS.sleepMs(30) }

        var o = EdgeOptions()
        o.extraRoutes = "      - match: { path_prefix: \"/named/\" }\n        cluster: up\n        strip_prefix: true\n        name: named"
        o.extraTopLevel = "tracing:\n  collector: \"127.0.0.1:\(port)\"\n  sample: 1.0\n  service_name: edge-test"
        let h = try startEdge(o)
        let c = try RawClient(port: h.listenPort)
        defer { c.close() }

        // Caller says "not sampled": propagated with Edge's span, nothing exported.
        let quietTrace = "0af7651916cd43dd8448eb211c80319c"
        let quiet = try EchoedRequest(HTTP.request(c, "/named/echo", port: h.listenPort,
                                                   headers: ["traceparent: 00-\(quietTrace)-b7ad6b7169203331-00"]))
        let quietParent = quiet.values("traceparent").first ?? ""
        XCTAssertTrue(quietParent.hasPrefix("00-\(quietTrace)-") && quietParent.hasSuffix("-00"), quietParent)

        // No traceparent: Edge starts a trace.
        let fresh = try EchoedRequest(HTTP.request(c, "/named/echo", port: h.listenPort))
        let freshParts = (fresh.values("traceparent").first ?? "").split(separator: "-").map(String.init)
        XCTAssertEqual(freshParts.count, 4, "upstream must see a traceparent: \(fresh.headers)")
        XCTAssertEqual(freshParts.first, "00")
        XCTAssertEqual(freshParts.last, "01")

        // Caller's trace: same trace id, Edge's own span id as parent; tracestate untouched.
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736", callerSpan = "00f067aa0ba902b7"
        let joined = try EchoedRequest(HTTP.request(c, "/named/echo", port: h.listenPort, headers: [
            "traceparent: 00-\(trace)-\(callerSpan)-01", "tracestate: vendor=abc,other=1"]))
        XCTAssertEqual(joined.values("traceparent").count, 1)
        let joinedParts = (joined.values("traceparent").first ?? "").split(separator: "-").map(String.init)
        XCTAssertEqual(joinedParts.count, 4)
        XCTAssertEqual(joinedParts[safe: 1], trace)
        XCTAssertNotEqual(joinedParts[safe: 2], callerSpan, "Edge adds a span of its own")
        XCTAssertEqual(joinedParts[safe: 2]?.count, 16)
        XCTAssertEqual(joined.values("tracestate"), ["vendor=abc,other=1"])

        let got = try spans(out, atLeast: 2)
        OS.sleepMs(1500)  // one more export interval: nothing else may arrive
        let all = try spans(out, atLeast: 2)
        XCTAssertEqual(all.count, 2, "only the two sampled requests are exported: \(all)")
        XCTAssertFalse(all.contains { $0["traceId"] as? String == quietTrace }, "an unsampled trace must not be exported")
        let byTrace = Dictionary(got.map { ($0["traceId"] as? String ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        let f = byTrace[freshParts[safe: 1] ?? ""]
        XCTAssertNotNil(f, "span for the trace the upstream saw (\(freshParts)): \(got)")
        XCTAssertEqual(f?["spanId"] as? String, freshParts[safe: 2])
        XCTAssertEqual(f?["parentSpanId"] as? String, "")
        XCTAssertEqual(f?["service"] as? String, "edge-test")
        let j = byTrace[trace]
        XCTAssertEqual(j?["spanId"] as? String, joinedParts[safe: 2])
        XCTAssertEqual(j?["parentSpanId"] as? String, callerSpan)
        XCTAssertEqual(j?["name"] as? String, "GET named")
        let attrs = j?["attributes"] as? [String: Any]
        XCTAssertEqual(attrs?["http.route"] as? String, "named")
        XCTAssertEqual(attrs?["edge.cluster"] as? String, "up")
        XCTAssertEqual(attrs?["http.response.status_code"] as? String, "200")
        XCTAssertLessThanOrEqual(j?["start"] as? Int ?? 1, j?["end"] as? Int ?? 0)
        let m = EdgeHarness.parseMetrics(try h.metricsText())
        XCTAssertEqual(m["edge_spans_exported_total"], 2)
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { i >= 0 && i < count ? self[i] : nil }
}
