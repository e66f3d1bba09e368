// L4 relays through the real edge binary (`protocol: tcp` listeners): Redis
// round trips and redis-benchmark, bulk transfer with checksums and the
// user/system CPU split of the proxy, half-close, refused upstream, idle timeout.
//
// Also home of the small world shared by the L4 test files (StreamTests,
// ProxyProtocolIntegrationTests, WebSocketTests): L4World starts l4tools.py
// servers, upstream.py, redis-server and edge, and stops them all by PID.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Shared L4 world

extension Paths {
    static var l4tools: String {
        repoRoot.appendingPathComponent("Tests/IntegrationTests/l4tools.py").path
    }
}

/// One L4 test's processes and ports. Everything it starts is stopped by PID in `stop()`.
final class L4World {
    let dir: URL
    let adminPort: UInt16
    let configPath: String
    private(set) var processes: [ManagedProcess] = []
    private(set) var edge: ManagedProcess?

    init(_ tag: String) throws {
        dir = try Paths.makeTempDir(tag)
        adminPort = try Ports.free()
        configPath = dir.appendingPathComponent("edge.yaml").path
    }

    func port() throws -> UInt16 { try Ports.free() }

    /// Stops `p` with the rest of the world.
    func track(_ p: ManagedProcess) { processes.append(p) }

    /// `l4tools.py <tool> --port P args...`; waits for its "listening" line.
    @discardableResult
    func startTool(_ tool: String, port: UInt16, _ args: [String] = [], name: String? = nil) throws -> ManagedProcess {
        let py = try Paths.require("python3")
        let p = try ManagedProcess(name: name ?? "\(tool)-\(port)", executable: py,
                                   arguments: ["-u", Paths.l4tools, tool, "--port", String(port)] + args, dir: dir)
        processes.append(p)
        let deadline = OS.now() + 15
        while OS.now() < deadline {
            if p.stdoutText().contains("listening \(port)") { return p }
            if !p.isRunning { break }
            OS.sleepMs(20)
        }
        throw HarnessError("l4tools \(tool) did not start on \(port): \(p.stderrText().suffix(2000))")
    }

    /// Tests/IntegrationTests/upstream.py serve --port P.
    @discardableResult
    func startUpstreamPy(port: UInt16) throws -> ManagedProcess {
        let py = try Paths.require("python3")
        let p = try ManagedProcess(name: "upstream-\(port)", executable: py,
                                   arguments: ["-u", Paths.upstreamScript, "serve", "--port", String(port)], dir: dir)
        processes.append(p)
        try waitPort(port, p, what: "upstream.py")
        return p
    }

    /// A private redis-server (no persistence, loopback only).
    @discardableResult
    func startRedis(port: UInt16) throws -> ManagedProcess {
        let exe = try Paths.require("redis-server")
        let p = try ManagedProcess(name: "redis-\(port)", executable: exe,
                                   arguments: ["--port", String(port), "--save", "", "--appendonly", "no",
                                               "--bind", "127.0.0.1", "--daemonize", "no", "--dir", dir.path,
                                               "--logfile", ""], dir: dir)
        processes.append(p)
        try waitPort(port, p, what: "redis-server")
        return p
    }

    private func waitPort(_ port: UInt16, _ p: ManagedProcess, what: String) throws {
        let deadline = OS.now() + 15
        while OS.now() < deadline {
            if Ports.connectErrno(port) == 0 { return }
            if !p.isRunning { break }
            OS.sleepMs(30)
        }
        throw HarnessError("\(what) did not start on \(port): \(p.stderrText().suffix(2000)) \(p.stdoutText().suffix(2000))")
    }

    /// Header of every L4 config: runtime (one worker) and admin.
    var head: String {
        """
        runtime:
          workers: 1
          drain_timeout: 2s
        admin:
          address: "127.0.0.1:\(adminPort)"

        """
    }

    /// Writes `yaml`, checks it with `edge validate`, runs edge and waits for /health/ready.
    func startEdge(_ yaml: String, environment: [String: String]? = nil) throws {
        let bin = try Paths.edgeBinary()
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        let v = try runCommand(bin, ["validate", "--config", configPath], timeout: 30)
        guard v.status == 0 else {
            throw HarnessError("edge validate rejected the config (exit \(v.status)):\n\(v.stderr)\(v.stdoutText)\n--- config ---\n\(yaml)")
        }
        let env = environment.map { extra in ProcessInfo.processInfo.environment.merging(extra) { _, new in new } }
        let e = try ManagedProcess(name: "edge", executable: bin, arguments: ["run", "--config", configPath], environment: env, dir: dir)
        edge = e
        let deadline = OS.now() + 15
        var last = "no answer"
        while OS.now() < deadline {
            if !e.isRunning {
                throw HarnessError("edge exited (status \(e.wait(timeout: 1).map(String.init) ?? "?")) before ready:\n\(e.stderrText().suffix(4000))")
            }
            if let r = try? HTTP.get(port: adminPort, "/health/ready", timeout: 1) {
                if r.status == 200 { return }
                last = "status \(r.status)"
            }
            OS.sleepMs(50)
        }
        throw HarnessError("edge not ready after 15s (\(last)):\n\(e.stderrText().suffix(4000))")
    }

    var edgePID: Int32 { edge?.pid ?? -1 }

    /// Fails (throws) if edge died meanwhile.
    func checkEdgeAlive() throws {
        if let e = edge, !e.isRunning {
            throw HarnessError("edge died (status \(e.wait(timeout: 1).map(String.init) ?? "?")):\n\(e.stderrText().suffix(4000))")
        }
    }

    func metrics() throws -> [String: Double] {
        let r = try HTTP.get(port: adminPort, "/metrics")
        guard r.status == 200 else { throw HarnessError("/metrics: \(r.summary)") }
        return EdgeHarness.parseMetrics(r.text)
    }

    /// `python3 l4tools.py args...` to completion.
    func runTool(_ args: [String], timeout: Double) throws -> CommandResult {
        let py = try Paths.require("python3")
        return try runCommand(py, ["-u", Paths.l4tools] + args, timeout: timeout)
    }

    func stop() {
        edge?.stop()
        for p in processes { p.stop() }
    }

    func diagnostics() -> String {
        var s = "--- config [\(configPath)] ---\n\(OS.readFile(configPath) ?? "")\n"
        s += "--- edge (pid \(edgePID)) stderr tail ---\n\(String((edge?.stderrText() ?? "(not started)").suffix(4000)))\n"
        for p in processes {
            s += "--- \(p.name) stdout/stderr tail ---\n\(String(p.stdoutText().suffix(1500)))\(String(p.stderrText().suffix(1500)))\n"
        }
        return s
    }

    func cleanup() { try? FileManager.default.removeItem(at: dir) }
}

/// Base class for the L4 tests: `let w = try world()`; stopped (and diagnosed on failure) in tearDown.
class L4TestCase: XCTestCase {
    var w: L4World!

    override func setUpWithError() throws {
        OS.ignoreSIGPIPE
        w = try L4World(String(describing: type(of: self)))
    }

    override func tearDown() {
        if let w {
            w.stop()
            if (testRun?.totalFailureCount ?? 0) > 0 {
                print("=== \(name) failed; diagnostics ===\n\(w.diagnostics())")
            } else {
                w.cleanup()
            }
        }
        w = nil
        super.tearDown()
    }

    // MARK: JSON lines from l4tools

    func jsonLine(_ text: String) throws -> [String: Any] {
        guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
              let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw HarnessError("no JSON line in tool output: \(text.suffix(500))")
        }
        return o
    }

    /// Waits for a JSON line containing `key` in a tool's stdout.
    func waitJSONLine(_ p: ManagedProcess, key: String, timeout: Double) throws -> [String: Any] {
        let deadline = OS.now() + timeout
        while OS.now() < deadline {
            for line in p.stdoutText().split(separator: "\n") where line.hasPrefix("{") {
                if let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], o[key] != nil {
                    return o
                }
            }
            OS.sleepMs(50)
        }
        throw HarnessError("\(p.name) printed no JSON line with \"\(key)\" within \(timeout)s: \(p.stdoutText().suffix(500)) \(p.stderrText().suffix(500))")
    }

    /// A `protocol: tcp` listener block (2-space list indent, as under `listeners:`).
    func tcpListener(_ name: String, port: UInt16, cluster: String, extra: [String] = []) -> String {
        (["  - name: \(name)",
          "    address: \"127.0.0.1:\(port)\"",
          "    protocol: tcp",
          "    cluster: \(cluster)"] + extra.map { "    " + $0 }).joined(separator: "\n") + "\n"
    }

    func cluster(_ name: String, _ endpoints: [UInt16], extra: [String] = []) -> String {
        let eps = endpoints.map { "\"127.0.0.1:\($0)\"" }.joined(separator: ", ")
        return (["  - name: \(name)",
                 "    endpoints: [ \(eps) ]",
                 "    connect_timeout: 1s"] + extra.map { "    " + $0 }).joined(separator: "\n") + "\n"
    }
}

/// CPU times of a process from /proc/PID/stat (all threads, io-wq workers included), in seconds.
struct ProcCPU: CustomStringConvertible {
    var user: Double
    var system: Double

    static func read(pid: Int32) throws -> ProcCPU {
        guard let s = OS.readFile("/proc/\(pid)/stat"), let close = s.lastIndex(of: ")") else {
            throw HarnessError("cannot read /proc/\(pid)/stat")
        }
        // Fields after "(comm)": state(3) ... utime(14) stime(15) → indexes 11, 12.
        let f = s[s.index(after: close)...].split(separator: " ")
        guard f.count > 12, let ut = Double(f[11]), let st = Double(f[12]) else {
            throw HarnessError("unexpected /proc/\(pid)/stat: \(s.prefix(300))")
        }
        let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
        return ProcCPU(user: ut / hz, system: st / hz)
    }

    var description: String { String(format: "user=%.2fs sys=%.2fs", user, system) }
}

extension RawClient {
    /// Local port of this client socket.
    var localPort: UInt16 {
        var a = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return UInt16(bigEndian: a.sin_port)
    }

    /// Reads until `n` bytes are buffered, EOF, or timeout; returns what is buffered.
    func read(atLeast n: Int) throws -> [UInt8] {
        while pending.count < n {
            if try !fill() { break }
        }
        return pending
    }
}

// MARK: - Stream tests

final class StreamTests: L4TestCase {

    // MARK: 1. Redis

    func testRedisThroughTCPListener() throws {
        let cli = try Paths.require("redis-cli")
        let bench = try Paths.require("redis-benchmark")
        let rp = try w.port(), lp = try w.port()
        try w.startRedis(port: rp)
        try w.startEdge(w.head + "listeners:\n" + tcpListener("redis", port: lp, cluster: "redis")
                        + "clusters:\n" + cluster("redis", [rp]))

        let ping = try runCommand(cli, ["-h", "127.0.0.1", "-p", String(lp), "ping"], timeout: 10)
        XCTAssertEqual(ping.status, 0, ping.stderr)
        XCTAssertEqual(ping.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines), "PONG",
                       "redis-cli ping through edge; stderr: \(ping.stderr)")

        let set = try runCommand(cli, ["-h", "127.0.0.1", "-p", String(lp), "set", "k", "v-through-edge"], timeout: 10)
        XCTAssertEqual(set.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines), "OK", set.stderr)
        let get = try runCommand(cli, ["-h", "127.0.0.1", "-p", String(lp), "get", "k"], timeout: 10)
        XCTAssertEqual(get.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines), "v-through-edge", get.stderr)
        // The value really is in the Redis behind edge.
        let direct = try runCommand(cli, ["-h", "127.0.0.1", "-p", String(rp), "get", "k"], timeout: 10)
        XCTAssertEqual(direct.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines), "v-through-edge")

        let t0 = OS.now()
        let b = try runCommand(bench, ["-h", "127.0.0.1", "-p", String(lp), "-q", "-n", "100000",
                                       "-t", "ping,set,get,incr,lpush"], timeout: 180)
        let elapsed = OS.now() - t0
        // -q prints progress with \r; the last \r-separated piece of each line is the result.
        let lines = b.stdoutText.split(separator: "\n").compactMap { line -> String? in
            let last = line.split(separator: "\r").last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
            return last.isEmpty ? nil : last
        }
        print("redis-benchmark through edge (\(String(format: "%.1f", elapsed))s, exit \(b.status)):\n" + lines.joined(separator: "\n"))
        XCTAssertEqual(b.status, 0, "redis-benchmark exit status; stderr: \(b.stderr.suffix(2000))")
        XCTAssertGreaterThanOrEqual(lines.count, 6, "expected PING_INLINE, PING_MBULK, SET, GET, INCR, LPUSH lines: \(lines)")
        for l in lines {
            XCTAssertTrue(l.contains("requests per second"), "redis-benchmark line without a result: \(l)")
        }
        for name in ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "LPUSH"] {
            XCTAssertTrue(lines.contains { $0.hasPrefix(name + ":") }, "no \(name) result in \(lines)")
        }
        let all = b.stdoutText + b.stderr
        XCTAssertFalse(all.contains("error") || all.contains("Error") || all.contains("ERR"),
                       "redis-benchmark reported errors:\n\(all.suffix(3000))")
        // 100,000 INCRs went through to the real Redis (redis-benchmark uses key counter:__rand_int__ with -r; without -r one key).
        let incr = try runCommand(cli, ["-h", "127.0.0.1", "-p", String(rp), "get", "counter:__rand_int__"], timeout: 10)
        XCTAssertEqual(incr.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines), "100000",
                       "INCR count seen by redis directly")
        try w.checkEdgeAlive()

        let m = try w.metrics()
        let relayed = EdgeHarness.perWorker(m, "edge_relay_bytes_total")["0"]
        print("edge_relay_bytes_total{worker=\"0\"} after redis: \(relayed.map { String(Int($0)) } ?? "missing")")
        XCTAssertNotNil(relayed, "edge_relay_bytes_total{worker=\"0\"} missing from /metrics")
        XCTAssertGreaterThan(relayed ?? 0, 0)
    }

    // MARK: 2. Bulk transfer

    private var bulkBytes: Int {
        Int(ProcessInfo.processInfo.environment["EDGE_BULK_BYTES"] ?? "") ?? (2 << 30)
    }

    func testBulkTransferBothDirectionsWithChecksumAndSpliceCPU() throws {
        let n = bulkBytes
        let downPort = try w.port(), upPort = try w.port()
        let ldown = try w.port(), lup = try w.port()
        let down = try w.startTool("bulk-server", port: downPort, ["--mode", "send", "--size", String(n)], name: "bulk-send")
        let up = try w.startTool("bulk-server", port: upPort, ["--mode", "recv", "--size", String(n)], name: "bulk-recv")
        try w.startEdge(w.head + "listeners:\n"
                        + tcpListener("down", port: ldown, cluster: "down")
                        + tcpListener("up", port: lup, cluster: "up")
                        + "clusters:\n" + cluster("down", [downPort]) + cluster("up", [upPort]))
        let timeout = max(120.0, Double(n) / 10e6)
        let before = try ProcCPU.read(pid: w.edgePID)
        let metricsBefore = EdgeHarness.perWorker(try w.metrics(), "edge_relay_bytes_total")["0"] ?? 0

        // Upstream → client: the server sends n pattern bytes.
        let d = try w.runTool(["bulk-client", "--port", String(ldown), "--mode", "recv", "--size", String(n)], timeout: timeout)
        XCTAssertEqual(d.status, 0, "bulk-client recv: \(d.stderr)")
        let dj = try jsonLine(d.stdoutText)
        let serverSent = try waitJSONLine(down, key: "sent", timeout: 30)
        XCTAssertEqual(dj["bytes"] as? Int, n, "bytes received by the client")
        XCTAssertEqual(dj["sha256"] as? String, serverSent["sha256"] as? String,
                       "download checksum: client \(dj) vs server \(serverSent)")

        // Client → upstream: the client sends n bytes, half-closes, reads the server's digest.
        let u = try w.runTool(["bulk-client", "--port", String(lup), "--mode", "send", "--size", String(n)], timeout: timeout)
        XCTAssertEqual(u.status, 0, "bulk-client send: \(u.stderr)")
        let uj = try jsonLine(u.stdoutText)
        XCTAssertEqual(uj["peer_bytes"] as? Int, n, "bytes the server received: \(uj)")
        XCTAssertEqual(uj["peer_sha256"] as? String, uj["sha256"] as? String, "upload checksum: \(uj)")
        _ = try waitJSONLine(up, key: "received", timeout: 30)

        let after = try ProcCPU.read(pid: w.edgePID)
        try w.checkEdgeAlive()
        let du = after.user - before.user, ds = after.system - before.system
        let ratio = ds > 0 ? du / ds : .infinity
        let mbDown = dj["mb_per_s"] as? Double ?? 0, mbUp = uj["mb_per_s"] as? Double ?? 0
        print("bulk \(n) bytes each way: " + String(format: "down %.1f MB/s (%.2fs), up %.1f MB/s (%.2fs); ",
                                                      mbDown, dj["seconds"] as? Double ?? 0, mbUp, uj["seconds"] as? Double ?? 0)
              + "edge CPU before \(before), after \(after); "
              + String(format: "delta user=%.2fs sys=%.2fs user/sys=%.3f", du, ds, ratio))
        XCTAssertGreaterThan(ds, 0, "edge used no system time while relaying \(2 * n) bytes?")
        XCTAssertLessThanOrEqual(ratio, 0.3,
                                 "edge user time \(du)s vs system time \(ds)s: ratio \(ratio) > 0.3 — bytes look copied through user space")

        // The relay byte counter moved by at least the payload (poll: it may be updated at close).
        var relayed = 0.0
        let deadline = OS.now() + 3
        repeat {
            relayed = EdgeHarness.perWorker(try w.metrics(), "edge_relay_bytes_total")["0"] ?? -1
            if relayed - metricsBefore >= Double(2 * n) { break }
            OS.sleepMs(100)
        } while OS.now() < deadline
        print("edge_relay_bytes_total{worker=\"0\"}: before \(Int(metricsBefore)) after \(Int(relayed))")
        XCTAssertGreaterThanOrEqual(relayed - metricsBefore, Double(2 * n),
                                    "edge_relay_bytes_total must count the \(2 * n) relayed payload bytes")
    }

    // MARK: 3. Half-close

    func testHalfCloseClientShutdownWriteStillReceivesReply() throws {
        let up = try w.port(), lp = try w.port()
        try w.startTool("halfclose-server", port: up)
        try w.startEdge(w.head + "listeners:\n" + tcpListener("hc", port: lp, cluster: "hc")
                        + "clusters:\n" + cluster("hc", [up]))
        for round in 0..<3 {
            let c = try RawClient(port: lp, timeout: 5)
            defer { c.close() }
            try c.send([UInt8](repeating: UInt8(ascii: "x"), count: 10_240))
            if round == 1 { OS.sleepMs(200) }  // also when the relay is already idle at the FIN
            c.shutdownWrite()
            let (bytes, closed) = c.readToClose(timeout: 5)
            XCTAssertEqual(String(decoding: bytes, as: UTF8.self), "got 10240\n",
                           "round \(round): reply after our SHUT_WR (closed=\(closed))")
            XCTAssertTrue(closed, "round \(round): edge must close after the upstream does")
        }
        try w.checkEdgeAlive()
    }

    // MARK: 4. Refused upstream

    func testRefusedUpstreamClosesClientPromptly() throws {
        let refused = try w.port(), lp = try w.port()
        XCTAssertNotEqual(Ports.connectErrno(refused), 0, "port \(refused) should be closed")
        try w.startEdge(w.head + "listeners:\n" + tcpListener("nowhere", port: lp, cluster: "nowhere")
                        + "clusters:\n" + cluster("nowhere", [refused]))
        for i in 0..<3 {
            let c = try RawClient(port: lp, timeout: 5)
            defer { c.close() }
            if i == 1 { try c.send("hello\r\n") }
            let t0 = OS.now()
            let (bytes, closed) = c.readToClose(timeout: 1.0)
            let dt = OS.now() - t0
            XCTAssertTrue(closed, "attempt \(i): client connection still open \(String(format: "%.2f", dt))s after connecting to a refused upstream")
            XCTAssertTrue(bytes.isEmpty, "attempt \(i): unexpected bytes \(bytes.prefix(100))")
            XCTAssertLessThan(dt, 1.0, "attempt \(i): close took \(dt)s")
        }
        try w.checkEdgeAlive()
    }

    // MARK: 5. Idle timeout

    func testIdleTimeoutClosesBothSides() throws {
        let up = try w.port(), lp = try w.port()
        let silent = try w.startTool("silent-server", port: up)
        try w.startEdge(w.head + "listeners:\n"
                        + tcpListener("quiet", port: lp, cluster: "quiet", extra: ["tcp: { idle_timeout: 500ms }"])
                        + "clusters:\n" + cluster("quiet", [up]))

        // Idle from the start: closed after ~500 ms.
        let c = try RawClient(port: lp, timeout: 5)
        defer { c.close() }
        let t0 = OS.now()
        let closed = c.waitForClose(timeout: 4)
        let dt = OS.now() - t0
        print(String(format: "idle connection closed after %.3fs (idle_timeout 500ms)", dt))
        XCTAssertTrue(closed, "idle relay not closed within 4s")
        XCTAssertGreaterThanOrEqual(dt, 0.4, "closed too early (\(dt)s) for a 500ms idle timeout")
        XCTAssertLessThanOrEqual(dt, 3.0, "closed too late (\(dt)s) for a 500ms idle timeout")
        // The upstream side was closed too.
        let ev = try waitJSONLine(silent, key: "event", timeout: 3)
        XCTAssertEqual(ev["event"] as? String, "eof", "upstream must see its connection closed: \(ev)")

        // Traffic every 150 ms keeps it open past the timeout (idle, not lifetime).
        let k = try RawClient(port: lp, timeout: 5)
        defer { k.close() }
        let t1 = OS.now()
        for _ in 0..<10 {
            try k.send("ping\n")
            OS.sleepMs(150)
        }
        k.setTimeout(0.05)
        XCTAssertThrowsError(try k.fill(), "an active relay was closed after \(OS.now() - t1)s")
        let t2 = OS.now()
        XCTAssertTrue(k.waitForClose(timeout: 4), "relay not closed once it went idle")
        let idle = OS.now() - t2
        XCTAssertLessThanOrEqual(idle, 3.0, "close \(idle)s after the last byte")
        try w.checkEdgeAlive()
    }
}
