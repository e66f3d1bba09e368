// Steady-state heap allocations per proxied request (LD_PRELOAD counter) and a
// short wrk smoke run.

import Foundation
import XCTest

final class PerformanceTests: EdgeTestCase {

    /// Build Benchmarks/alloc/alloc_count.c into `dir`.
    static func buildAllocCounter(in dir: URL) throws -> String {
        let cc = try Paths.require("cc")
        let out = dir.appendingPathComponent("alloc_count.so").path
        let r = try runCommand(cc, ["-shared", "-fPIC", "-O2", "-o", out, Paths.allocSource, "-ldl"], timeout: 120)
        guard r.status == 0 else { throw HarnessError("compiling alloc_count.c failed:\n\(r.stderr)") }
        return out
    }

    private func heapAllocations(_ h: EdgeHarness) throws -> Double {
        let text = try h.metricsText()
        guard let v = EdgeHarness.parseMetrics(text)["edge_heap_allocations_total"] else {
            throw HarnessError("edge_heap_allocations_total missing from /metrics although alloc_count.so is preloaded:\n\(text.prefix(2000))")
        }
        return v
    }

    func testAllocationsPerProxiedRequest() throws {
        try measureAllocations(EdgeOptions())
    }

    /// Same with the JSON access log (to a file) and histograms on: still no allocation per request.
    func testAllocationsPerRequestWithAccessLogAndMetrics() throws {
        let logDir = try Paths.makeTempDir("alloc-log")
        addTeardownBlock { try? FileManager.default.removeItem(at: logDir) }
        var o = EdgeOptions()
        let log = logDir.appendingPathComponent("access.log").path
        // Tracing at sample 0: every request gets its traceparent rewritten, none is exported.
        let dead = try Ports.free()
        o.extraTopLevel = "access_log: { path: \"\(log)\", format: json }\nmetrics: { histograms: true }\n"
            + "tracing: { collector: \"127.0.0.1:\(dead)\", sample: 0.0 }"
        try measureAllocations(o)
        let lines = (OS.readFile(log) ?? "").split(separator: "\n").count
        XCTAssertGreaterThan(lines, 10_000, "the access log was written while allocations were counted")
    }

    private func measureAllocations(_ options: EdgeOptions) throws {
        let libDir = try Paths.makeTempDir("alloc")
        addTeardownBlock { try? FileManager.default.removeItem(at: libDir) }
        let lib = try Self.buildAllocCounter(in: libDir)
        var o = options
        o.environment["LD_PRELOAD"] = lib
        let h = try startEdge(o)

        let c = try RawClient(port: h.listenPort)
        let request = Array("GET /conn HTTP/1.1\r\nHost: alloc.test\r\n\r\n".utf8)
        func proxied(_ n: Int) throws {
            for i in 0..<n {
                try c.send(request)
                let r = try c.readResponse()
                if r.status != 200 { throw HarnessError("request \(i) got \(r.status): \(r.summary)") }
            }
        }
        try proxied(2_000)  // warm-up: pools, slabs, buffer rings, route snapshot
        let a = try heapAllocations(h)
        let b = try heapAllocations(h)
        let perMetricsRead = b - a
        let n = 10_000
        let t0 = OS.now()
        try proxied(n)
        let secs = OS.now() - t0
        let d = try heapAllocations(h)
        let perRequest = (d - b - perMetricsRead) / Double(n)
        print(String(format: "allocations: %.3f per proxied request (%.0f total over %d requests, %.0f per /metrics read, %.0f req/s)",
                     perRequest, d - b - perMetricsRead, n, perMetricsRead, Double(n) / secs))
        XCTAssertGreaterThan(a, 0, "counter reads 0: is edge reading edge_alloc_count via dlsym?")
        XCTAssertLessThanOrEqual(perRequest, 2, "steady-state heap allocations per proxied request")
    }

    func testWrkSmoke() throws {
        guard let wrk = Paths.which("wrk") else {
            throw XCTSkip("wrk is not installed (make deps installs it); load smoke not run")
        }
        var o = EdgeOptions()
        var nginx: ManagedProcess?
        var connections = 16
        let ngDir = try Paths.makeTempDir("nginx")
        defer {
            nginx?.signal(SIGQUIT)
            if nginx?.wait(timeout: 5) == nil { nginx?.stop() }
            try? FileManager.default.removeItem(at: ngDir)
        }
        if let ng = Paths.which("nginx") {
            let port = try Ports.free()
            let conf = """
                daemon off;
                master_process on;
                worker_processes 1;
                pid \(ngDir.path)/nginx.pid;
                error_log \(ngDir.path)/error.log warn;
                events { worker_connections 1024; }
                http {
                    access_log off;
                    client_body_temp_path \(ngDir.path)/body;
                    proxy_temp_path \(ngDir.path)/proxy;
                    fastcgi_temp_path \(ngDir.path)/fastcgi;
                    uwsgi_temp_path \(ngDir.path)/uwsgi;
                    scgi_temp_path \(ngDir.path)/scgi;
                    keepalive_requests 1000000;
                    server {
                        listen 127.0.0.1:\(port);
                        location / { return 200 "0123456789012345678901234567890123456789012345678901234567890123"; }
                    }
                }
                """
            let confPath = ngDir.appendingPathComponent("nginx.conf").path
            try conf.write(toFile: confPath, atomically: true, encoding: .utf8)
            nginx = try ManagedProcess(name: "nginx", executable: ng,
                                       arguments: ["-e", "\(ngDir.path)/error.log", "-p", ngDir.path, "-c", confPath],
                                       dir: ngDir)
            let deadline = OS.now() + 5
            while Ports.connectErrno(port) != 0 && OS.now() < deadline { OS.sleepMs(30) }
            guard Ports.connectErrno(port) == 0 else {
                throw HarnessError("nginx upstream did not start: \(nginx?.stderrText() ?? "") \(OS.readFile("\(ngDir.path)/error.log") ?? "")")
            }
            o.upEndpoints = ["127.0.0.1:\(port)"]
            connections = 64
        } else {
            print("NOTE: nginx not installed; wrk smoke uses the Python upstream with 16 connections")
        }
        let h = try startEdge(o)
        let r = try runCommand(wrk, ["-t1", "-c\(connections)", "-d3s", "--latency", "http://127.0.0.1:\(h.listenPort)/echo"],
                               timeout: 30)
        print("wrk output:\n\(r.stdoutText)")
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = r.stdoutText
        XCTAssertFalse(out.contains("Socket errors"), "wrk reported socket errors")
        XCTAssertFalse(out.contains("Non-2xx or 3xx responses"), "wrk reported non-2xx/3xx responses")
        let total = out.split(separator: "\n").first { $0.contains("requests in") }
            .flatMap { Int($0.trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") } ?? 0
        XCTAssertGreaterThan(total, 0, "wrk completed no requests")
    }
}
