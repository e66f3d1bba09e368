// Zero-downtime binary upgrade through the real edge binary: `edge upgrade`
// (SIGUSR2 + SCM_RIGHTS hand-over of the listening sockets) under wrk
// keep-alive load and a loop of new connections (newconns.py): no failed
// request, no refused connection, the old pid drains and exits, the new pid
// serves. A broken new binary, or a config the new process rejects, leaves the
// old process serving and `edge upgrade` exits 1.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class UpgradeTests: XCTestCase {
    private var dir: URL!
    private var port: UInt16 = 0
    private var adminPort: UInt16 = 0
    private var configPath = ""
    private var pidPath = ""
    private var old: ManagedProcess?
    private var extraPids: [Int32] = []
    private var helpers: [ManagedProcess] = []

    override func setUpWithError() throws {
        OS.ignoreSIGPIPE
        dir = try Paths.makeTempDir("UpgradeTests")
        port = try Ports.free()
        adminPort = try Ports.free()
        configPath = dir.appendingPathComponent("edge.yaml").path
        pidPath = dir.appendingPathComponent("edge.pid").path
    }

    override func tearDown() {
        for p in helpers { p.stop() }
        // Foundation may not notice the upgraded-away process exit: reap it ourselves.
        if let o = old {
            if exits(o.pid, within: 0.01) { var st: Int32 = 0; waitpid(o.pid, &st, WNOHANG) } else { o.stop() }
        }
        // The upgraded process is a child of the old one: stop it by its pid.
        for pid in extraPids where pid > 0 && kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        if (testRun?.totalFailureCount ?? 0) > 0 {
            print("--- edge log ---\n\(old?.stderrText().suffix(4000) ?? "")")
        } else {
            try? FileManager.default.removeItem(at: dir)
        }
        super.tearDown()
    }

    private func config(drain: String = "5s") -> String {
        """
        runtime: { workers: 2, drain_timeout: \(drain), pid_file: "\(pidPath)" }
        admin: { address: "127.0.0.1:\(adminPort)" }
        listeners:
          - name: web
            address: "127.0.0.1:\(port)"
            protocol: http
            routes:
              - match: { path_prefix: "/" }
                direct_response: { status: 200, body: "ok\\n" }
        """
    }

    private func startEdge() throws {
        try config().write(toFile: configPath, atomically: true, encoding: .utf8)
        let e = try ManagedProcess(name: "edge", executable: try Paths.edgeBinary(), arguments: ["run", "--config", configPath], dir: dir)
        old = e
        let deadline = OS.now() + 15
        while OS.now() < deadline {
            if !e.isRunning { throw HarnessError("edge exited: \(e.stderrText().suffix(3000))") }
            if let r = try? HTTP.get(port: adminPort, "/health/ready", timeout: 1), r.status == 200, pidFromFile() == e.pid { return }
            OS.sleepMs(50)
        }
        throw HarnessError("edge not ready")
    }

    private func pidFromFile() -> Int32? {
        guard let t = OS.readFile(pidPath) else { return nil }
        return Int32(t.split(separator: "\n").first ?? "")
    }

    /// Gone or a zombie (its parent, this test, reaps it later).
    private func exits(_ pid: Int32, within seconds: Double) -> Bool {
        let deadline = OS.now() + seconds
        while OS.now() < deadline {
            guard let stat = OS.readFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return true }
            if stat[stat.index(after: close)...].hasPrefix(" Z") { return true }
            OS.sleepMs(50)
        }
        return false
    }

    private func upgrade(_ extra: [String] = []) throws -> CommandResult {
        try runCommand(try Paths.edgeBinary(), ["upgrade", "--config", configPath, "--timeout", "40"] + extra, timeout: 60)
    }

    func testUpgradeUnderLoadDropsNothing() throws {
        try startEdge()
        let oldPid = try XCTUnwrap(old?.pid)
        let seconds = 10
        let wrk = try ManagedProcess(name: "wrk", executable: try Paths.require("wrk"),
                                     arguments: ["-t2", "-c16", "-d\(seconds)s", "http://127.0.0.1:\(port)/"], dir: dir)
        helpers.append(wrk)
        let py = try Paths.require("python3")
        let conns = try ManagedProcess(name: "newconns", executable: py,
                                       arguments: ["-u", Paths.repoRoot.appendingPathComponent("Tests/IntegrationTests/newconns.py").path,
                                                   String(port), String(seconds - 1), "2"], dir: dir)
        helpers.append(conns)
        OS.sleepMs(3_000)
        let r = try upgrade()
        XCTAssertEqual(r.status, 0, "edge upgrade: \(r.stderr)\(r.stdoutText)")
        XCTAssertTrue(r.stdoutText.contains("upgraded: new pid"), r.stdoutText)
        let newPid = try XCTUnwrap(pidFromFile())
        extraPids.append(newPid)
        XCTAssertNotEqual(newPid, oldPid, "the pid file names the new process")
        XCTAssertTrue(exits(oldPid, within: 15), "the old process drains and exits")
        XCTAssertEqual(kill(newPid, 0), 0, "the new process runs")
        guard wrk.wait(timeout: Double(seconds) + 20) != nil, conns.wait(timeout: Double(seconds) + 20) != nil else {
            return XCTFail("load did not finish")
        }
        let report = wrk.stdoutText()
        print("wrk through the upgrade:\n\(report)")
        XCTAssertFalse(report.contains("Socket errors"), "socket errors through the upgrade:\n\(report)")
        XCTAssertFalse(report.contains("Non-2xx"), "failed responses through the upgrade:\n\(report)")
        XCTAssertTrue(report.contains("requests in"), report)
        let line = conns.stdoutText().split(separator: "\n").last.map(String.init) ?? ""
        let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "newconns: \(conns.stderrText())")
        print("new connections through the upgrade: \(line)")
        XCTAssertEqual(o["failed"] as? Int, 0, "refused or failed new connections: \(line)")
        XCTAssertGreaterThan(o["ok"] as? Int ?? 0, 100)
        // The new process serves the data plane and the admin API (both sockets handed over).
        XCTAssertEqual(try HTTP.get(port: port, "/").status, 200)
        let ready = try HTTP.get(port: adminPort, "/health/ready")
        XCTAssertEqual(ready.status, 200)
        // And it can be upgraded again (its own listeners hand over the same way).
        let again = try upgrade()
        XCTAssertEqual(again.status, 0, "second upgrade: \(again.stderr)")
        if let third = pidFromFile() { extraPids.append(third); XCTAssertNotEqual(third, newPid) }
        XCTAssertEqual(try HTTP.get(port: port, "/").status, 200)
    }

    func testBrokenNewBinaryLeavesTheOldServing() throws {
        try startEdge()
        let oldPid = try XCTUnwrap(old?.pid)
        let script = dir.appendingPathComponent("broken.sh").path
        try "#!/bin/sh\necho broken >&2\nexit 1\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let r = try upgrade(["--binary", script])
        XCTAssertEqual(r.status, 1, "a failed upgrade exits 1: \(r.stdoutText)")
        XCTAssertTrue(r.stderr.contains("keeps serving"), r.stderr)
        XCTAssertEqual(pidFromFile(), oldPid)
        XCTAssertTrue(old?.isRunning ?? false)
        XCTAssertEqual(try HTTP.get(port: port, "/").status, 200)
        XCTAssertEqual(try HTTP.get(port: adminPort, "/health/ready").status, 200, "not draining")

        // A new process that rejects the config (same binary, config broken meanwhile) fails the same way.
        try (config() + "\nbogus_field: 1\n").write(toFile: configPath, atomically: true, encoding: .utf8)
        let edge = try Paths.edgeBinary()
        let r2 = try runCommand(edge, ["upgrade", "--pid-file", pidPath, "--timeout", "40"], timeout: 60)
        XCTAssertEqual(r2.status, 1, "bad config in the new process: \(r2.stdoutText)")
        XCTAssertEqual(pidFromFile(), oldPid)
        XCTAssertTrue(old?.isRunning ?? false)
        XCTAssertEqual(try HTTP.get(port: port, "/").status, 200)
    }
}
