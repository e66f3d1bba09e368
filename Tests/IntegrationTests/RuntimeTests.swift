// Process-level behaviour: admin endpoints, workers and CPU pinning, graceful
// drain on SIGTERM/SIGINT, and `edge validate`.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class RuntimeTests: EdgeTestCase {

    // MARK: admin

    func testAdminEndpoints() throws {
        let h = try startEdge()
        let health = try h.admin("/health")
        XCTAssertEqual(health.status, 200, health.summary)
        XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(health.body)), "/health must be JSON: \(health.text)")
        XCTAssertEqual(try h.admin("/health/live").status, 200)
        XCTAssertEqual(try h.admin("/health/ready").status, 200)

        _ = try HTTP.get(port: h.listenPort, "/echo")
        let text = try h.metricsText()
        let m = EdgeHarness.parseMetrics(text)
        XCTAssertGreaterThanOrEqual(m["edge_requests_total{worker=\"0\"}"] ?? -1, 1, "metrics:\n\(text.prefix(2000))")
        XCTAssertGreaterThanOrEqual(m["edge_connections_accepted_total{worker=\"0\"}"] ?? -1, 1)
        XCTAssertGreaterThanOrEqual(m["edge_upstream_connections_opened_total{worker=\"0\"}"] ?? -1, 1)
    }

    // MARK: workers

    func testTwoWorkersServeAndArePinned() throws {
        var o = EdgeOptions()
        o.workers = "2"
        let h = try startEdge(o)
        for i in 0..<200 {
            let r = try HTTP.get(port: h.listenPort, "/direct")  // new connection each time
            XCTAssertEqual(r.status, 201, "request \(i)")
        }
        let text = try h.metricsText()
        let m = EdgeHarness.parseMetrics(text)
        let accepted = EdgeHarness.perWorker(m, "edge_connections_accepted_total")
        let requests = EdgeHarness.perWorker(m, "edge_requests_total")
        print("per-worker accepted: \(accepted), requests: \(requests)")
        XCTAssertEqual(Set(accepted.keys), ["0", "1"], "expected metrics for workers 0 and 1:\n\(text.prefix(2000))")
        for w in ["0", "1"] {
            XCTAssertGreaterThan(accepted[w] ?? 0, 0, "worker \(w) accepted no connections")
            XCTAssertGreaterThan(requests[w] ?? 0, 0, "worker \(w) served no requests")
        }
        XCTAssertGreaterThanOrEqual(accepted.values.reduce(0, +), 200)

        // Threads named edge-worker-N, each pinned to one CPU.
        let pid = h.edgePID
        let tids = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")
        var pinned: [String: [Int]] = [:]
        for tid in tids {
            let comm = (OS.readFile("/proc/\(pid)/task/\(tid)/comm") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            guard comm.hasPrefix("edge-worker-") else { continue }
            let status = OS.readFile("/proc/\(pid)/task/\(tid)/status") ?? ""
            pinned[comm] = OS.parseCPUList(OS.statusField(status, "Cpus_allowed_list") ?? "")
        }
        print("worker threads and their CPU sets: \(pinned)")
        XCTAssertEqual(Set(pinned.keys), ["edge-worker-0", "edge-worker-1"], "worker thread names (comm)")
        for (name, cpus) in pinned {
            XCTAssertEqual(cpus.count, 1, "\(name) must be pinned to exactly one CPU, has \(cpus)")
        }
        let allowed = OS.parseCPUList(OS.statusField(OS.readFile("/proc/self/status") ?? "", "Cpus_allowed_list") ?? "")
        if allowed.count < 2 {
            print("NOTE: distinct-CPU check skipped: this process may only use CPUs \(allowed) (1 CPU)")
        } else {
            let cpus = pinned.values.compactMap(\.first)
            XCTAssertEqual(Set(cpus).count, cpus.count, "workers must be pinned to distinct CPUs: \(pinned)")
            for c in cpus { XCTAssertTrue(allowed.contains(c), "CPU \(c) is outside the allowed set \(allowed)") }
        }
    }

    // MARK: drain

    func testSIGTERMDrainsInFlightAndExitsZero() throws {
        let h = try startEdge()  // drain_timeout: 5s
        guard let edge = h.edge else { throw HarnessError("edge not started") }
        let slow = try RawClient(port: h.listenPort, timeout: 10)
        try slow.send("GET /slow?ms=2000 HTTP/1.1\r\nHost: d\r\n\r\n")
        OS.sleepMs(300)
        let t0 = OS.now()
        edge.signal(SIGTERM)
        OS.sleepMs(200)

        // New connections are refused (listener closed).
        do {
            let c = try RawClient(port: h.listenPort, timeout: 2)
            // Connected: acceptable only if edge drops it without serving.
            try? c.send("GET /echo HTTP/1.1\r\nHost: d\r\n\r\n")
            do {
                let r = try c.readResponse()
                XCTFail("a connection opened after SIGTERM was served (\(r.status)); it must be refused")
            } catch {
                XCTAssertFalse("\(error)".contains("timed out"),
                               "a connection opened after SIGTERM hung instead of being refused")
            }
        } catch let e as RawClient.ConnectError {
            XCTAssertEqual(e.errno, ECONNREFUSED, "new connection after SIGTERM: \(e)")
        }

        // Readiness goes away.
        if let ready = try? h.admin("/health/ready") {
            XCTAssertEqual(ready.status, 503, "/health/ready must be 503 while draining")
        }

        // The in-flight request completes.
        let r = try slow.readResponse()
        let answeredAfter = OS.now() - t0
        XCTAssertEqual(r.status, 200, r.summary)
        XCTAssertEqual(r.text, "slow done\n")

        let status = edge.wait(timeout: 7)
        let elapsed = OS.now() - t0
        XCTAssertNotNil(status, "edge still running \(elapsed)s after SIGTERM (drain_timeout 5s)")
        XCTAssertEqual(status, 0, "exit status after drain")
        XCTAssertLessThan(elapsed, 6)
        print(String(format: "drain: in-flight request answered %.2fs after SIGTERM, process exited %.2fs after SIGTERM",
                     answeredAfter, elapsed))
    }

    func testSIGINTWhenIdleExitsZeroPromptly() throws {
        let h = try startEdge()
        guard let edge = h.edge else { throw HarnessError("edge not started") }
        XCTAssertEqual(try HTTP.get(port: h.listenPort, "/echo").status, 200)
        let t0 = OS.now()
        edge.signal(SIGINT)
        let status = edge.wait(timeout: 6)
        XCTAssertEqual(status, 0, "exit status after SIGINT")
        XCTAssertLessThan(OS.now() - t0, 2, "an idle edge should exit promptly on SIGINT")
    }

    // MARK: validate

    private func validate(_ yaml: String, name: String = "edge.yaml") throws -> (CommandResult, String) {
        let bin = try Paths.edgeBinary()
        let dir = try Paths.makeTempDir("validate")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent(name).path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return (try runCommand(bin, ["validate", "--config", path], timeout: 20), path)
    }

    func testValidateAcceptsGoodConfig() throws {
        let h = try EdgeHarness()
        defer { h.stop(); h.cleanup() }
        let (r, _) = try validate(h.config())
        XCTAssertEqual(r.status, 0, "validate rejected the harness config:\n\(r.stderr)\n\(h.config())")
        XCTAssertTrue((r.stdoutText + r.stderr).contains("config OK"), "expected 'config OK': \(r.stdoutText) \(r.stderr)")
    }

    func testValidateAcceptsExampleConfig() throws {
        let bin = try Paths.edgeBinary()
        let path = Paths.repoRoot.appendingPathComponent("examples/edge.yaml").path
        let r = try runCommand(bin, ["validate", "--config", path], timeout: 20)
        XCTAssertEqual(r.status, 0, "examples/edge.yaml must validate:\n\(r.stderr)")
    }

    private let badClusterYAML = """
        runtime:
          workers: 1
        admin:
          address: "127.0.0.1:19901"
        listeners:
          - name: web
            address: "127.0.0.1:18080"
            protocol: http
            routes:
              - match: { path_prefix: "/" }
                cluster: nope
        clusters:
          - name: up
            endpoints: [ "127.0.0.1:19000" ]

        """

    func testValidateReportsFileLineForUnknownCluster() throws {
        let (r, path) = try validate(badClusterYAML)
        XCTAssertEqual(r.status, 1, "bad config must exit 1; stderr: \(r.stderr)")
        XCTAssertTrue(r.stderr.contains("\(path):11:"), "expected '\(path):11:' (line of `cluster: nope`) in stderr:\n\(r.stderr)")
        XCTAssertTrue(r.stderr.contains("cluster"), "message must name the field: \(r.stderr)")
    }

    func testValidateReportsFileLineForBadDuration() throws {
        let yaml = badClusterYAML
            .replacingOccurrences(of: "  workers: 1\n", with: "  workers: 1\n  drain_timeout: 30 parsecs\n")
            .replacingOccurrences(of: "cluster: nope", with: "cluster: up")
        let (r, path) = try validate(yaml)
        XCTAssertEqual(r.status, 1, "bad config must exit 1; stderr: \(r.stderr)")
        XCTAssertTrue(r.stderr.contains("\(path):3:"), "expected '\(path):3:' in stderr:\n\(r.stderr)")
        XCTAssertTrue(r.stderr.contains("drain_timeout"), "message must name the field: \(r.stderr)")
    }

    func testValidateReportsFileLineForBadAddress() throws {
        let yaml = badClusterYAML
            .replacingOccurrences(of: "\"127.0.0.1:18080\"", with: "\"127.0.0.1:99999\"")
            .replacingOccurrences(of: "cluster: nope", with: "cluster: up")
        let (r, path) = try validate(yaml)
        XCTAssertEqual(r.status, 1, "bad config must exit 1; stderr: \(r.stderr)")
        XCTAssertTrue(r.stderr.contains("\(path):7:"), "expected '\(path):7:' in stderr:\n\(r.stderr)")
        XCTAssertTrue(r.stderr.contains("address"), "message must name the field: \(r.stderr)")
    }
}
