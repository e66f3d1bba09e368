// Access log, labelled metrics and the authenticated admin API, against the
// real edge binary and the Python upstream (see README "Observability").

import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class ObservabilityTests: EdgeTestCase {
    static let namedRoutes = [
        "      - match: { path_prefix: \"/named/\" }",
        "        cluster: up",
        "        strip_prefix: true",
        "        name: named",
        "      - match: { path_prefix: \"/quiet/\" }",
        "        cluster: up",
        "        strip_prefix: true",
        "        name: quiet",
        "        access_log: false",
    ].joined(separator: "\n")

    func options(logPath: String, extra: String = "") -> EdgeOptions {
        var o = EdgeOptions()
        o.extraRoutes = Self.namedRoutes
        o.extraTopLevel = "access_log:\n  path: \"\(logPath)\"\n  format: json\n" + extra
        return o
    }

    /// Log lines as JSON objects, waiting until at least `count` arrived (the writer is asynchronous).
    func logLines(_ path: String, atLeast count: Int, timeout: Double = 10) throws -> [[String: Any]] {
        let deadline = OS.now() + timeout
        var lines: [[String: Any]] = []
        repeat {
            let text = OS.readFile(path) ?? ""
            lines = try text.split(separator: "\n").map { line in
                guard let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                    throw HarnessError("access log line is not a JSON object: \(line)")
                }
                return obj
            }
            if lines.count >= count { return lines }
            OS.sleepMs(50)
        } while OS.now() < deadline
        throw HarnessError("expected \(count) access log lines in \(path), found \(lines.count):\n\(OS.readFile(path) ?? "")")
    }

    func testAccessLogFieldsMatchWhatTheUpstreamSaw() throws {
        let dir = try Paths.makeTempDir("alog")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let log = dir.appendingPathComponent("access.log").path
        let h = try startEdge(options(logPath: log))

        let c = try RawClient(port: h.listenPort)
        defer { c.close() }
        let echoed = try EchoedRequest(HTTP.request(c, "/named/echo?x=1", port: h.listenPort))
        guard let upstreamId = echoed.values("X-Request-Id").first else {
            return XCTFail("the upstream saw no X-Request-Id: \(echoed.headers)")
        }
        let clientId = "client-chosen-id-42"
        let echoed2 = try EchoedRequest(HTTP.request(c, "/named/echo", port: h.listenPort, headers: ["X-Request-Id: \(clientId)"]))
        XCTAssertEqual(echoed2.values("X-Request-Id"), [clientId])
        XCTAssertEqual(try HTTP.request(c, "/quiet/echo", port: h.listenPort).status, 200)
        XCTAssertEqual(try HTTP.request(c, "/direct", port: h.listenPort).status, 201)
        XCTAssertEqual(try HTTP.request(c, "/status/503", port: h.listenPort).status, 503)
        XCTAssertEqual(try HTTP.request(c, "/nothing-matches", port: h.listenPort).status, 404)
        let refused = try HTTP.get(port: h.listenPort, "/refused/x")
        XCTAssertEqual(refused.status, 502)
        let bad = try RawClient(port: h.listenPort)
        defer { bad.close() }
        try bad.send("GET /x HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n")
        XCTAssertEqual(try bad.readResponse().status, 400)

        let lines = try logLines(log, atLeast: 7)
        XCTAssertEqual(lines.count, 7, "the access_log: false route must not be logged: \(lines)")
        let first = lines[0]
        XCTAssertEqual(first["request_id"] as? String, upstreamId, "logged request id = the X-Request-Id the upstream saw")
        XCTAssertEqual(first["status"] as? Int, 200)
        XCTAssertEqual(first["route"] as? String, "named")
        XCTAssertEqual(first["listener"] as? String, "web")
        XCTAssertEqual(first["cluster"] as? String, "up")
        XCTAssertEqual(first["endpoint"] as? String, "127.0.0.1:\(h.upstreamPort)")
        XCTAssertEqual(first["method"] as? String, "GET")
        XCTAssertEqual(first["authority"] as? String, "127.0.0.1:\(h.listenPort)")
        XCTAssertEqual(first["path"] as? String, "/named/echo?x=1")
        XCTAssertEqual(first["protocol"] as? String, "HTTP/1.1")
        XCTAssertEqual(first["client"] as? String, "127.0.0.1")
        XCTAssertTrue(first["error"] is NSNull)
        XCTAssertGreaterThan(first["bytes_out"] as? Int ?? 0, 0)
        XCTAssertGreaterThan(first["bytes_in"] as? Int ?? 0, 0)
        let time = first["time"] as? String ?? ""
        XCTAssertTrue(time.hasSuffix("Z") && time.count == 24, "RFC 3339 UTC with milliseconds: \(time)")
        let connect = first["upstream_connect_ms"] as? Double ?? -1
        let firstByte = first["upstream_first_byte_ms"] as? Double ?? -1
        let total = first["total_ms"] as? Double ?? -1
        XCTAssertGreaterThanOrEqual(connect, 0)
        XCTAssertLessThanOrEqual(connect, firstByte, "connect <= first byte: \(first)")
        XCTAssertLessThanOrEqual(firstByte, total, "first byte <= total: \(first)")

        XCTAssertEqual(lines[1]["request_id"] as? String, clientId)
        XCTAssertEqual(lines[2]["status"] as? Int, 201)
        XCTAssertEqual(lines[2]["route"] as? String, "2", "unnamed routes are labelled by their index")
        XCTAssertTrue(lines[2]["cluster"] is NSNull)
        XCTAssertEqual(lines[3]["status"] as? Int, 503)
        let notFound = lines.first { $0["status"] as? Int == 404 } ?? [:]
        XCTAssertEqual(notFound["error"] as? String, "route_not_found")
        XCTAssertTrue(notFound["route"] is NSNull)
        // The last two came on connections of their own: their lines may land in either order.
        let failed = lines.first { $0["status"] as? Int == 502 } ?? [:]
        let malformed = lines.first { $0["status"] as? Int == 400 } ?? [:]
        XCTAssertEqual(failed["error"] as? String, refused.header("x-edge-error"))
        XCTAssertEqual(failed["cluster"] as? String, "refused")
        // Edge's own errors carry a request id too.
        XCTAssertEqual((failed["request_id"] as? String)?.count, 32)
        // A head that does not parse is logged too, with an id of its own.
        XCTAssertTrue(malformed["listener"] is NSNull, "\(malformed)")
        XCTAssertEqual((malformed["request_id"] as? String)?.count, 32)
        let ids = Set(lines.compactMap { $0["request_id"] as? String })
        XCTAssertEqual(ids.count, 7, "request ids are unique")
    }

    func testLogrotateRenameAndSIGUSR1() throws {
        let dir = try Paths.makeTempDir("alog")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let log = dir.appendingPathComponent("access.log").path
        let rotated = log + ".1"
        let h = try startEdge(options(logPath: log))

        XCTAssertEqual(try HTTP.get(port: h.listenPort, "/named/echo?before").status, 200)
        _ = try logLines(log, atLeast: 1)
        XCTAssertEqual(rename(log, rotated), 0)
        // Still open: lines keep going to the renamed file until SIGUSR1.
        XCTAssertEqual(try HTTP.get(port: h.listenPort, "/named/echo?between").status, 200)
        _ = try logLines(rotated, atLeast: 2)
        h.edge?.signal(SIGUSR1)
        let deadline = OS.now() + 10
        while OS.now() < deadline {
            if EdgeHarness.parseMetrics(try h.metricsText())["edge_access_log_reopens_total"] == 1 { break }
            OS.sleepMs(50)
        }
        XCTAssertEqual(EdgeHarness.parseMetrics(try h.metricsText())["edge_access_log_reopens_total"], 1)
        XCTAssertEqual(try HTTP.get(port: h.listenPort, "/named/echo?after").status, 200)
        let fresh = try logLines(log, atLeast: 1)
        XCTAssertEqual(fresh.map { $0["path"] as? String }, ["/named/echo?after"])
        let old = try logLines(rotated, atLeast: 2)
        XCTAssertEqual(old.map { $0["path"] as? String }, ["/named/echo?before", "/named/echo?between"])
        XCTAssertTrue(h.edge?.isRunning == true)
    }

    /// Samples of /metrics as parsed by prometheus_client (text and OpenMetrics parsers).
    func parsedMetrics(_ h: EdgeHarness, openMetrics: Bool) throws -> [[String: Any]] {
        let r = try HTTP.get(port: h.adminPort, "/metrics",
                             headers: openMetrics ? ["Accept: application/openmetrics-text; version=1.0.0"] : [])
        XCTAssertEqual(r.status, 200)
        let ct = r.header("content-type") ?? ""
        XCTAssertTrue(openMetrics ? ct.hasPrefix("application/openmetrics-text") : ct.hasPrefix("text/plain"), ct)
        let file = h.dir.appendingPathComponent(openMetrics ? "metrics.om" : "metrics.txt")
        try Data(r.body).write(to: file)
        let parser = openMetrics ? "from prometheus_client.openmetrics.parser import text_string_to_metric_families"
                                 : "from prometheus_client.parser import text_string_to_metric_families"
        let script = """
            import json, sys
            \(parser)
            out = []
            for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
                for s in fam.samples:
                    out.append({"family": fam.name, "type": fam.type, "name": s.name, "labels": s.labels, "value": s.value})
            print(json.dumps(out))
            """
        let py = try Paths.require("python3")
        let res = try runCommand(py, ["-c", script, file.path], timeout: 60)
        guard res.status == 0 else { throw HarnessError("prometheus_client could not parse /metrics: \(res.stderr)\n\(r.text.prefix(3000))") }
        guard let samples = try JSONSerialization.jsonObject(with: res.stdout) as? [[String: Any]] else {
            throw HarnessError("bad parser output: \(res.stdoutText.prefix(500))")
        }
        return samples
    }

    func value(_ samples: [[String: Any]], _ name: String, _ labels: [String: String]) -> Double? {
        samples.first { s in
            guard s["name"] as? String == name, let l = s["labels"] as? [String: String] else { return false }
            return labels.allSatisfy { l[$0.key] == $0.value }
        }?["value"] as? Double
    }

    func testMetricsParseAndHistogramsMatchTheRequests() throws {
        var o = EdgeOptions()
        o.extraRoutes = Self.namedRoutes
        let h = try startEdge(o)
        let c = try RawClient(port: h.listenPort)
        defer { c.close() }
        let ok = 7, failed = 3
        for _ in 0..<ok { XCTAssertEqual(try HTTP.request(c, "/named/echo", port: h.listenPort).status, 200) }
        for _ in 0..<failed { XCTAssertEqual(try HTTP.request(c, "/named/status/500", port: h.listenPort).status, 500) }
        XCTAssertEqual(try HTTP.request(c, "/nope", port: h.listenPort).status, 404)
        // An exchange is counted once its response is fully sent, which may be just after the client read it.
        let deadline = OS.now() + 10
        while OS.now() < deadline {
            let total = EdgeHarness.parseMetrics(try h.metricsText()).filter { $0.key.hasPrefix("edge_http_requests_total{") }.values.reduce(0, +)
            if total >= Double(ok + failed + 1) { break }
            OS.sleepMs(50)
        }

        for om in [false, true] {
            let s = try parsedMetrics(h, openMetrics: om)
            let route = ["listener": "web", "route": "named"]
            XCTAssertEqual(value(s, "edge_http_requests_total", route.merging(["code_class": "2xx", "protocol": "http/1.1"]) { a, _ in a }), Double(ok))
            XCTAssertEqual(value(s, "edge_http_requests_total", route.merging(["code_class": "5xx"]) { a, _ in a }), Double(failed))
            XCTAssertEqual(value(s, "edge_http_requests_total", ["route": "none", "code_class": "4xx"]), 1)
            XCTAssertEqual(value(s, "edge_cluster_requests_total", ["cluster": "up", "code_class": "2xx"]), Double(ok))
            for (name, labels) in [("edge_http_request_duration_seconds", route), ("edge_http_upstream_first_byte_seconds", route),
                                   ("edge_cluster_request_duration_seconds", ["cluster": "up"])] {
                XCTAssertEqual(value(s, name + "_count", labels), Double(ok + failed), name)
                XCTAssertGreaterThan(value(s, name + "_sum", labels) ?? 0, 0, name)
                let buckets = s.filter { sample in
                    let l = sample["labels"] as? [String: String] ?? [:]
                    return sample["name"] as? String == name + "_bucket" && labels.allSatisfy { l[$0.key] == $0.value }
                }
                let values = buckets.compactMap { $0["value"] as? Double }
                XCTAssertEqual(values.count, 15, name)
                XCTAssertEqual(values, values.sorted(), "\(name) buckets are cumulative")
                XCTAssertEqual(value(s, name + "_bucket", labels.merging(["le": "+Inf"]) { a, _ in a }), Double(ok + failed))
            }
            // One keep-alive client connection: the first request opened an upstream connection, later ones reuse it.
            XCTAssertGreaterThanOrEqual(value(s, "edge_cluster_upstream_connections_total", ["cluster": "up"]) ?? 0, 1)
            XCTAssertGreaterThanOrEqual(value(s, "edge_cluster_pool_hits_total", ["cluster": "up"]) ?? 0, 1)
            XCTAssertEqual(value(s, "edge_cluster_requests_in_flight", ["cluster": "up"]), 0)
        }
    }

    func testAdminTokenGuardsMutationsAndReads() throws {
        let token = "s3cret-admin-token-\(getpid())"
        var o = EdgeOptions()
        o.environment["EDGE_TEST_ADMIN_TOKEN"] = token
        o.adminExtra = "  token_env: EDGE_TEST_ADMIN_TOKEN"
        let h = try startEdge(o)
        func call(_ method: String, _ path: String, auth: String?) throws -> HTTPResponse {
            let c = try RawClient(port: h.adminPort)
            defer { c.close() }
            var req = "\(method) \(path) HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n"
            if let auth { req += "Authorization: \(auth)\r\n" }
            if method == "POST" { req += "Content-Length: 0\r\n" }
            try c.send(req + "\r\n")
            return try c.readResponse()
        }
        let denied = try call("POST", "/reload", auth: nil)
        XCTAssertEqual(denied.status, 401)
        XCTAssertNotNil(denied.header("www-authenticate"))
        XCTAssertEqual(try call("POST", "/reload", auth: "Bearer wrong-token-of-some-length").status, 401)
        XCTAssertEqual(try call("POST", "/drain", auth: "Bearer " + token.dropLast()).status, 401)
        XCTAssertEqual(try call("POST", "/reload", auth: "Bearer \(token)").status, 200)
        // Reads stay open without auth_reads.
        XCTAssertEqual(try call("GET", "/metrics", auth: nil).status, 200)
        let config = try call("GET", "/config", auth: nil)
        XCTAssertEqual(config.status, 200)
        XCTAssertFalse(config.text.contains(token), "the token must be redacted from /config")
        XCTAssertTrue(config.text.contains("redacted"))
        let j = try config.json()
        XCTAssertEqual((j["listeners"] as? [[String: Any]])?.first?["name"] as? String, "web")
        let clusters = try JSONSerialization.jsonObject(with: Data(try call("GET", "/clusters", auth: nil).body)) as? [[String: Any]]
        XCTAssertEqual(clusters?.first?["name"] as? String, "up")
        XCTAssertEqual(clusters?.first?["in_flight"] as? Int, 0)
        XCTAssertEqual(((clusters?.first?["endpoints"] as? [[String: Any]])?.first)?["address"] as? String, "127.0.0.1:\(h.upstreamPort)")
        let listeners = try JSONSerialization.jsonObject(with: Data(try call("GET", "/listeners", auth: nil).body)) as? [[String: Any]]
        XCTAssertEqual(listeners?.first?["address"] as? String, "127.0.0.1:\(h.listenPort)")
        XCTAssertTrue(h.edge?.isRunning == true)
    }

    func testAuthReadsProtectsEveryEndpoint() throws {
        let dir = try Paths.makeTempDir("tok")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let tokenFile = dir.appendingPathComponent("admin.token").path
        let token = "file-token-0123456789abcdef"
        try (token + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)
        var o = EdgeOptions()
        o.adminExtra = "  token_file: \"\(tokenFile)\"\n  auth_reads: true"
        let auth = "Authorization: Bearer \(token)"
        o.readyHeaders = [auth]
        let h = try startEdge(o)
        for path in ["/health", "/health/ready", "/metrics", "/config", "/clusters", "/listeners"] {
            XCTAssertEqual(try HTTP.get(port: h.adminPort, path).status, 401, path)
            XCTAssertEqual(try HTTP.get(port: h.adminPort, path, headers: ["Authorization: Bearer not-the-token-at-all"]).status, 401, path)
            XCTAssertEqual(try HTTP.get(port: h.adminPort, path, headers: [auth]).status, 200, path)
        }
    }
}
