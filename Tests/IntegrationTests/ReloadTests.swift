import Foundation
import Glibc
import XCTest

/// Zero-downtime reload: routes switch within one reload, invalid configs are
/// rejected with file:line messages while the old snapshot keeps serving,
/// listeners follow the config, and nothing fails under load meanwhile.
final class ReloadTests: XCTestCase {
    var fleet: Fleet!

    override func setUpWithError() throws {
        fleet = try Fleet()
        try fleet.startUpstream("a")
        try fleet.startUpstream("b")
    }

    override func tearDown() {
        if let f = fleet, testRun?.hasSucceeded == false { print("--- edge stderr ---\n\(f.edgeStderr.suffix(4000))") }
        fleet?.stop()
    }

    private var clusters: String {
        """
          - name: a
            endpoints: [ "127.0.0.1:\(fleet.port("a"))" ]
          - name: b
            endpoints: [ "127.0.0.1:\(fleet.port("b"))" ]
        """
    }

    /// Route set "a" or "b": /p goes to that upstream, / answers its letter.
    private func config(_ set: String) -> String {
        fleet.yaml(routes: """
              - match: { path_prefix: "/p/" }
                cluster: \(set)
                strip_prefix: true
              - match: { path_prefix: "/" }
                direct_response: { status: 200, body: "\(set)\\n" }
        """, clusters: clusters)
    }

    private var invalidConfig: String {
        fleet.yaml(routes: """
              - match: { path_prefix: "/" }
                cluster: nosuchcluster
        """, clusters: clusters)
    }

    func testReloadUnderLoadSwitchesRoutesAndRejectsInvalid() throws {
        let wrk = try Paths.require("wrk")
        try fleet.writeConfig(config("a"))
        try fleet.startEdge()
        XCTAssertEqual(try HTTP.get(port: fleet.listenPort, "/").text, "a\n")

        // EDGE_RELOAD_SECONDS=30 gives the issue's 30-second version (one reload per second).
        let steps = Int(ProcessInfo.processInfo.environment["EDGE_RELOAD_SECONDS"] ?? "") ?? 6
        let out = fleet.dir.appendingPathComponent("wrk.txt").path
        let load = try ManagedProcess(name: "wrk", executable: "/bin/sh",
                                      arguments: ["-c", "\(wrk) -t1 -c16 -d\(steps + 2)s http://127.0.0.1:\(fleet.listenPort)/p/echo > \(out) 2>&1"],
                                      dir: fleet.dir)
        var expected = "a"
        for step in 0..<steps {
            OS.sleepMs(1000)
            if step % 2 == 1 {
                try fleet.writeConfig(invalidConfig)
                let (status, body) = try fleet.reload()
                XCTAssertEqual(status, 400, body)
                XCTAssertTrue(body.contains("edge.yaml:") && body.contains("nosuchcluster"), body)
                // The old snapshot keeps serving.
                XCTAssertEqual(try HTTP.get(port: fleet.listenPort, "/").text, "\(expected)\n")
            } else {
                expected = expected == "a" ? "b" : "a"
                try fleet.writeConfig(config(expected))
                let (status, body) = try fleet.reload()
                XCTAssertEqual(status, 200, body)
                // Within one reload: the very next request sees the new routes.
                XCTAssertEqual(try HTTP.get(port: fleet.listenPort, "/").text, "\(expected)\n")
                let r = try HTTP.get(port: fleet.listenPort, "/p/echo")
                XCTAssertEqual(r.header("X-Upstream-Name"), expected)
            }
        }
        XCTAssertNotNil(load.wait(timeout: Double(steps + 15)), "wrk did not finish")
        let report = OS.readFile(out) ?? ""
        print(report)
        XCTAssertTrue(report.contains("Requests/sec"), report)
        XCTAssertFalse(report.contains("Socket errors"), "socket errors under reload:\n\(report)")
        XCTAssertFalse(report.contains("Non-2xx"), "non-2xx under reload:\n\(report)")
        // The admin API reports the last attempt.
        let status = try HTTP.get(port: fleet.adminPort, "/reload")
        let lastWasInvalid = (steps - 1) % 2 == 1
        XCTAssertTrue(status.text.contains(lastWasInvalid ? "\"ok\":false" : "\"ok\":true"), status.text)
    }

    func testSIGHUPAndEdgeReloadCommand() throws {
        let pidFile = fleet.dir.appendingPathComponent("edge.pid").path
        try fleet.writeConfig(config("a").replacingOccurrences(of: "drain_timeout: 5s", with: "drain_timeout: 5s\n  pid_file: \"\(pidFile)\""))
        try fleet.startEdge()
        try fleet.writeConfig(config("b").replacingOccurrences(of: "drain_timeout: 5s", with: "drain_timeout: 5s\n  pid_file: \"\(pidFile)\""))
        fleet.edge?.signal(SIGHUP)
        var body = ""
        for _ in 0..<50 { body = try HTTP.get(port: fleet.listenPort, "/").text; if body == "b\n" { break }; OS.sleepMs(50) }
        XCTAssertEqual(body, "b\n", "SIGHUP did not reload")

        // `edge reload --config` goes through the admin API and prints the result.
        try fleet.writeConfig(invalidConfig)
        let bad = try runCommand(try Paths.edgeBinary(), ["reload", "--config", fleet.configPath])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue((bad.stderr + bad.stdoutText).contains("nosuchcluster"), bad.stderr + bad.stdoutText)
        try fleet.writeConfig(config("a"))
        let ok = try runCommand(try Paths.edgeBinary(), ["reload", "--admin", "127.0.0.1:\(fleet.adminPort)"])
        XCTAssertEqual(ok.status, 0, ok.stderr + ok.stdoutText)
        XCTAssertEqual(try HTTP.get(port: fleet.listenPort, "/").text, "a\n")
    }

    func testReloadAddsAndRemovesListeners() throws {
        try fleet.writeConfig(config("a"))
        try fleet.startEdge()
        let extra = try Ports.free()
        let second = """
          - name: second
            address: "127.0.0.1:\(extra)"
            routes:
              - match: { path_prefix: "/" }
                direct_response: { status: 200, body: "second\\n" }
        """
        try fleet.writeConfig(fleet.yaml(routes: """
              - match: { path_prefix: "/" }
                direct_response: { status: 200, body: "a\\n" }
        """, clusters: clusters, extraListeners: second))
        XCTAssertEqual(try fleet.reload().0, 200)
        XCTAssertEqual(try HTTP.get(port: extra, "/").text, "second\n")
        XCTAssertEqual(try HTTP.get(port: fleet.listenPort, "/").text, "a\n")
        try fleet.writeConfig(config("b"))
        XCTAssertEqual(try fleet.reload().0, 200)
        OS.sleepMs(100)
        XCTAssertEqual(Ports.connectErrno(extra), ECONNREFUSED, "removed listener still accepts")
        XCTAssertEqual(try HTTP.get(port: fleet.listenPort, "/").text, "b\n")
    }

    /// A request in flight keeps the snapshot it started with.
    func testInFlightRequestKeepsItsSnapshot() throws {
        try fleet.writeConfig(config("a"))
        try fleet.startEdge()
        let c = try RawClient(port: fleet.listenPort, timeout: 10)
        defer { c.close() }
        try c.send("GET /p/slow?ms=800 HTTP/1.1\r\nHost: x\r\n\r\n")
        OS.sleepMs(200)
        try fleet.writeConfig(config("b"))
        XCTAssertEqual(try fleet.reload().0, 200)
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.header("X-Upstream-Name"), "a")
        // The next request on the same connection uses the new snapshot.
        let next = try HTTP.request(c, "/p/echo", port: fleet.listenPort)
        XCTAssertEqual(next.header("X-Upstream-Name"), "b")
    }

    /// Reload churn must not leak, tested as a leak (growth that keeps going),
    /// not as a ratio to an early sample: RSS rises by ~6% over the first few
    /// hundred reloads of a 1,000-route config (allocator arenas and caches
    /// settling: 36.5 MiB at start, 38.9 MiB after 300, 38.7 after 3,000) and
    /// then stays flat. So: warm up, then measure two equal windows of reloads.
    ///
    /// Bound: one compiled 1,000-route table of this config is ~457 KiB of heap
    /// (measured: 50 tables held in one process grew its RSS by 22.8 MiB; the
    /// parsed config is another ~310 KiB), so a leak of one table per reload adds
    /// ~360 MiB per window of 800 reloads. Measured growth on a 2-CPU machine
    /// (3 runs, windows of 1,000 after 500 warm-up): +0.9/-0.1/+0.6 MiB in the
    /// first window, +0.1/+0.1/+0.1 MiB in the second. The bound, 8 MiB for the second window and 12 MiB over both,
    /// passes every time on a noisy machine and is broken by any per-reload leak
    /// above ~8 KiB, i.e. by a leak of 1/50 of a table.
    func testNoLeakAcrossReloadsOfLargeConfig() throws {
        func routes(_ n: Int) -> String {
            var r = ""
            for i in 0..<n {
                r += "      - match: { host: \"h\(i).example.com\", path_prefix: \"/r\(i)/\" }\n        cluster: \(i % 2 == 0 ? "a" : "b")\n"
            }
            return r + "      - match: { path_prefix: \"/\" }\n        direct_response: { status: 200, body: \"ok\\n\" }"
        }
        try fleet.writeConfig(fleet.yaml(routes: routes(1000), clusters: clusters, workers: 2))
        try fleet.startEdge()
        let pid = fleet.edge?.pid ?? -1
        // EDGE_RELOADS sets the window size (the warm-up is half a window).
        let window = Int(ProcessInfo.processInfo.environment["EDGE_RELOADS"] ?? "") ?? 800
        let warmup = window / 2
        let boundKiB = 8 * 1024
        var done = 0
        func reloads(_ n: Int) throws {
            for _ in 0..<n {
                let (status, body) = try fleet.reload()
                guard status == 200 else { throw HarnessError("reload \(done + 1) answered \(status): \(body)") }
                done += 1
                if done % 50 == 0 {
                    let r = try HTTP.get(port: fleet.listenPort, "/")
                    XCTAssertEqual(r.text, "ok\n", "after reload \(done)")
                }
            }
        }
        /// RSS once edge is idle again (workers adopted, old tables retired).
        func settledRSS() throws -> Int {
            OS.sleepMs(300)
            _ = try HTTP.get(port: fleet.listenPort, "/")
            OS.sleepMs(100)
            guard let kb = OS.rssKiB(pid: pid), kb > 0 else { throw HarnessError("cannot read VmRSS of edge (pid \(pid))") }
            return kb
        }
        let t0 = OS.now()
        let rssStart = try settledRSS()
        try reloads(warmup)
        let rssWarm = try settledRSS()
        try reloads(window)
        let rssMid = try settledRSS()
        try reloads(window)
        let rssEnd = try settledRSS()
        let elapsed = OS.now() - t0
        print(String(format: "RSS: start %d KiB, after %d warm-up reloads %d KiB, +%d reloads %d KiB (%+d), +%d reloads %d KiB (%+d); %d reloads in %.1fs",
                     rssStart, warmup, rssWarm, window, rssMid, rssMid - rssWarm, window, rssEnd, rssEnd - rssMid,
                     done, elapsed))
        XCTAssertLessThanOrEqual(rssEnd - rssMid, boundKiB,
                                 "RSS grew \(rssEnd - rssMid) KiB over \(window) reloads after warm-up (bound \(boundKiB) KiB): a leak")
        XCTAssertLessThanOrEqual(rssEnd - rssWarm, boundKiB * 3 / 2,
                                 "RSS grew \(rssEnd - rssWarm) KiB over \(2 * window) reloads after warm-up (bound \(boundKiB * 3 / 2) KiB): a leak")
        XCTAssertTrue(fleet.edge?.isRunning == true, "edge died")
    }
}
