// Shared (Redis) rate limits through two real edge processes and one real
// redis-server: one limit holds across both at 5x the limit; Redis killed
// mid-run follows on_failure (open: local buckets keep serving; closed: 503
// rate_limit_unavailable) and both recover when Redis comes back. Load:
// rateload.py (paced keep-alive HTTP/1.1, results per wall-clock second).

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class SharedRateLimitTests: XCTestCase {
    static let limit = 50
    /// Per edge: 125 req/s, so the pair offers 5x the limit.
    static let ratePerEdge = 125

    private var dir: URL!
    private var processes: [ManagedProcess] = []
    private var redisPort: UInt16 = 0
    private var redis: ManagedProcess?
    private var edges: [(port: UInt16, admin: UInt16, process: ManagedProcess)] = []

    override func setUpWithError() throws {
        OS.ignoreSIGPIPE
        dir = try Paths.makeTempDir("SharedRateLimitTests")
    }

    override func tearDown() {
        for e in edges { e.process.stop() }
        redis?.stop()
        for p in processes { p.stop() }
        if (testRun?.totalFailureCount ?? 0) > 0 {
            for e in edges { print("--- edge \(e.port) stderr ---\n\(e.process.stderrText().suffix(3000))") }
        } else {
            try? FileManager.default.removeItem(at: dir)
        }
        super.tearDown()
    }

    private func startRedis() throws {
        let exe = try Paths.require("redis-server")
        let p = try ManagedProcess(name: "redis-\(redisPort)-\(processes.count)", executable: exe,
                                   arguments: ["--port", String(redisPort), "--save", "", "--appendonly", "no",
                                               "--bind", "127.0.0.1", "--daemonize", "no", "--dir", dir.path], dir: dir)
        processes.append(p)
        redis = p
        let deadline = OS.now() + 15
        while OS.now() < deadline {
            if Ports.connectErrno(redisPort) == 0 { return }
            if !p.isRunning { break }
            OS.sleepMs(20)
        }
        throw HarnessError("redis-server did not start on \(redisPort): \(p.stdoutText().suffix(1500))")
    }

    /// Two edges (2 workers each) with one shared limit on /limited/.
    private func startFleet(onFailure: String) throws {
        redisPort = try Ports.free()
        try startRedis()
        let bin = try Paths.edgeBinary()
        for i in 0..<2 {
            let port = try Ports.free(), admin = try Ports.free()
            let path = dir.appendingPathComponent("edge\(i).yaml").path
            let yaml = """
                runtime: { workers: 2, drain_timeout: 2s }
                admin: { address: "127.0.0.1:\(admin)" }
                redis: { address: "127.0.0.1:\(redisPort)", timeout: 50ms, on_failure: \(onFailure) }
                policies:
                  - { name: fleet, rate_limit: { key: route, rate: \(Self.limit)/s, shared: redis } }
                listeners:
                  - name: web
                    address: "127.0.0.1:\(port)"
                    protocol: http
                    routes:
                      - match: { path_prefix: "/limited/" }
                        direct_response: { status: 200, body: "ok\\n" }
                        policies: [ fleet ]
                      - match: { path_prefix: "/" }
                        direct_response: { status: 200, body: "open\\n" }
                """
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
            let v = try runCommand(bin, ["validate", "--config", path], timeout: 30)
            XCTAssertEqual(v.status, 0, "edge validate: \(v.stderr)\(v.stdoutText)")
            let e = try ManagedProcess(name: "edge\(i)", executable: bin, arguments: ["run", "--config", path], dir: dir)
            edges.append((port, admin, e))
        }
        for e in edges {
            let deadline = OS.now() + 15
            var ready = false
            while OS.now() < deadline && !ready {
                if !e.process.isRunning { throw HarnessError("edge exited: \(e.process.stderrText().suffix(3000))") }
                if let r = try? HTTP.get(port: e.admin, "/health/ready", timeout: 1), r.status == 200 { ready = true } else { OS.sleepMs(50) }
            }
            guard ready else { throw HarnessError("edge on \(e.port) not ready") }
        }
    }

    private struct LoadResult {
        var windows: [Int: [String: Int]]
        var errors: Int
        var causes: [String: Int]
        func count(_ status: String, from: Double, to: Double) -> Int {
            windows.filter { Double($0.key) >= from && Double($0.key + 1) <= to }.reduce(0) { $0 + ($1.value[status] ?? 0) }
        }
        func fullWindows(from: Double, to: Double) -> Int { windows.keys.filter { Double($0) >= from && Double($0 + 1) <= to }.count }
    }

    private func startLoad(seconds: Double) throws -> ManagedProcess {
        let py = try Paths.require("python3")
        let script = Paths.repoRoot.appendingPathComponent("Tests/IntegrationTests/rateload.py").path
        let p = try ManagedProcess(name: "rateload-\(processes.count)", executable: py,
                                   arguments: ["-u", script, "--ports", edges.map { String($0.port) }.joined(separator: ","),
                                               "--rate", String(Self.ratePerEdge), "--conns", "4",
                                               "--duration", String(seconds), "--path", "/limited/x"], dir: dir)
        processes.append(p)
        return p
    }

    private func finish(_ p: ManagedProcess, seconds: Double) throws -> LoadResult {
        guard p.wait(timeout: seconds + 30) != nil else { throw HarnessError("rateload did not finish") }
        guard let line = p.stdoutText().split(separator: "\n").last(where: { $0.hasPrefix("{") }),
              let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw HarnessError("no rateload JSON: \(p.stderrText().suffix(1000))")
        }
        var windows: [Int: [String: Int]] = [:]
        for (k, v) in (o["windows"] as? [String: [String: Int]]) ?? [:] { if let s = Int(k) { windows[s] = v } }
        return LoadResult(windows: windows, errors: o["errors"] as? Int ?? -1, causes: o["causes"] as? [String: Int] ?? [:])
    }

    private func metrics(_ admin: UInt16) throws -> [String: Double] {
        let r = try HTTP.get(port: admin, "/metrics")
        guard r.status == 200 else { throw HarnessError("/metrics: \(r.status)") }
        return EdgeHarness.parseMetrics(r.text)
    }

    private func sum(_ m: [String: Double], _ prefix: String) -> Double {
        m.filter { $0.key.hasPrefix(prefix) }.values.reduce(0, +)
    }

    /// README bound per window: limit + (N-1)/N x (admitted in one sync interval + round trip) + N x W.
    /// Offered 250/s, 20ms interval (+ a generous 30ms for a loaded machine): 50 + 0.5 x 12.5 + 4.
    static let boundPerWindow = Double(limit) + 0.5 * 250 * 0.05 + 4

    func testTwoInstancesHoldOneLimitAtFiveTimesTheRate() throws {
        try startFleet(onFailure: "open")
        let seconds = 12.0
        let t0 = Date().timeIntervalSince1970
        let r = try finish(try startLoad(seconds: seconds), seconds: seconds)
        let t1 = Date().timeIntervalSince1970
        // Whole seconds strictly inside the run (the first is warm-up).
        let from = t0.rounded(.up) + 1, to = t1.rounded(.down) - 1
        let windows = r.fullWindows(from: from, to: to)
        let admitted = r.count("200", from: from, to: to)
        let limited = r.count("429", from: from, to: to)
        XCTAssertGreaterThanOrEqual(windows, 8, "load ran too short: \(r.windows)")
        let expected = Double(windows * Self.limit)
        print("shared limit: \(admitted) admitted, \(limited) limited in \(windows) windows of limit \(Self.limit) (bound \(Self.boundPerWindow)/window)")
        XCTAssertGreaterThan(Double(admitted + limited), 2 * expected, "the load must be well above the limit to mean anything")
        XCTAssertLessThanOrEqual(Double(admitted), Double(windows) * Self.boundPerWindow, "over the stated bound: \(r.windows)")
        XCTAssertLessThanOrEqual(abs(Double(admitted) - expected), 0.10 * expected, "not within 10% of the limit: \(r.windows)")
        XCTAssertEqual(r.errors, 0)
        XCTAssertEqual(r.causes["rate_limited"] ?? 0 > 0, true, "429s carry x-edge-error: rate_limited")
        for e in edges {
            let m = try metrics(e.admin)
            XCTAssertEqual(m["edge_shared_rate_limit_redis_up"], 1)
            XCTAssertGreaterThan(sum(m, "edge_shared_rate_limit_decisions_total{") , 0)
            XCTAssertGreaterThan(m["edge_shared_rate_limit_syncs_total"] ?? 0, 50, "the sync thread ran")
            let local = m.filter { $0.key.contains("outcome=\"local\"") }.values.reduce(0, +)
            XCTAssertEqual(local, 0, "with Redis up no decision falls back to the local bucket")
        }
        // A route without the policy is not limited.
        let open = try HTTP.get(port: edges[0].port, "/open")
        XCTAssertEqual(open.status, 200)
    }

    /// Kills Redis after `downAt` s and starts it again at `upAt` s while the load runs.
    private func runOutage(onFailure: String) throws -> (r: LoadResult, down: (Double, Double), up: (Double, Double)) {
        try startFleet(onFailure: onFailure)
        let seconds = 15.0
        let load = try startLoad(seconds: seconds)
        let t0 = Date().timeIntervalSince1970
        OS.sleepMs(3_500)
        redis?.stop()  // SIGKILL
        let killed = Date().timeIntervalSince1970
        OS.sleepMs(4_000)
        for e in edges { XCTAssertTrue(e.process.isRunning, "edge keeps running without Redis") }
        let mDown = try metrics(edges[0].admin)
        XCTAssertEqual(mDown["edge_shared_rate_limit_redis_up"], 0)
        XCTAssertGreaterThan(mDown["edge_shared_rate_limit_redis_errors_total"] ?? 0, 0)
        try startRedis()
        let restarted = Date().timeIntervalSince1970
        let r = try finish(load, seconds: seconds)
        let t1 = Date().timeIntervalSince1970
        XCTAssertGreaterThan(restarted - t0, 6)
        // Down: from half a second after the kill (detection) to the restart.
        // Up again: from 1.5 s after the restart (reconnect backoff is at most 1 s) to the end.
        return (r, (killed.rounded(.up), restarted.rounded(.down)), ((restarted + 1.5).rounded(.up), t1.rounded(.down)))
    }

    func testRedisDownOpenServesUnderLocalLimitsAndRecovers() throws {
        let (r, down, up) = try runOutage(onFailure: "open")
        let downWindows = r.fullWindows(from: down.0, to: down.1)
        XCTAssertGreaterThanOrEqual(downWindows, 2, "\(r.windows)")
        let downAdmitted = r.count("200", from: down.0, to: down.1)
        // Each worker's local bucket enforces the whole limit by itself: more than one limit per second is admitted.
        XCTAssertGreaterThan(Double(downAdmitted), 1.5 * Double(downWindows * Self.limit), "open: local limits keep serving: \(r.windows)")
        XCTAssertEqual(r.causes["rate_limit_unavailable"] ?? 0, 0, "open never answers 503")
        let upWindows = r.fullWindows(from: up.0, to: up.1)
        XCTAssertGreaterThanOrEqual(upWindows, 2, "\(r.windows)")
        let upAdmitted = r.count("200", from: up.0, to: up.1)
        XCTAssertLessThanOrEqual(abs(Double(upAdmitted - upWindows * Self.limit)), 0.15 * Double(upWindows * Self.limit),
                                 "the shared limit holds again after Redis returns: \(r.windows)")
        XCTAssertEqual(r.errors, 0)
        for e in edges {
            let m = try metrics(e.admin)
            XCTAssertEqual(m["edge_shared_rate_limit_redis_up"], 1, "reconnected")
            XCTAssertGreaterThan(m.filter { $0.key.contains("outcome=\"local\"") }.values.reduce(0, +), 0, "outage decisions counted as local")
        }
    }

    func testRedisDownClosedRefusesWith503AndRecovers() throws {
        let (r, down, up) = try runOutage(onFailure: "closed")
        // The first second after the kill may still hold allowances granted before it.
        let from = down.0 + 1
        let downWindows = r.fullWindows(from: from, to: down.1)
        XCTAssertGreaterThanOrEqual(downWindows, 2, "\(r.windows)")
        XCTAssertEqual(r.count("200", from: from, to: down.1), 0, "closed: nothing is admitted without Redis: \(r.windows)")
        XCTAssertGreaterThan(r.count("503", from: from, to: down.1), downWindows * 100, "closed: 503s: \(r.windows)")
        XCTAssertGreaterThan(r.causes["rate_limit_unavailable"] ?? 0, 0, "503s carry x-edge-error: rate_limit_unavailable")
        let upWindows = r.fullWindows(from: up.0, to: up.1)
        XCTAssertGreaterThanOrEqual(upWindows, 2, "\(r.windows)")
        let upAdmitted = r.count("200", from: up.0, to: up.1)
        XCTAssertLessThanOrEqual(abs(Double(upAdmitted - upWindows * Self.limit)), 0.15 * Double(upWindows * Self.limit),
                                 "admits again after Redis returns: \(r.windows)")
        XCTAssertEqual(r.errors, 0)
        let m = try metrics(edges[0].admin)
        XCTAssertGreaterThan(m.filter { $0.key.contains("outcome=\"unavailable\"") }.values.reduce(0, +), 0)
    }
}
