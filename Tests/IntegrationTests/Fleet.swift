import Foundation
import Glibc

/// A test world with several named upstream.py servers and a config the test
/// writes itself (reload, routing and balancing tests). Stopped by PID.
final class Fleet {
    let dir: URL
    let listenPort: UInt16
    let adminPort: UInt16
    let configPath: String
    private(set) var upstreams: [String: (port: UInt16, process: ManagedProcess)] = [:]
    private(set) var edge: ManagedProcess?

    init() throws {
        dir = try Paths.makeTempDir("fleet")
        listenPort = try Ports.free()
        adminPort = try Ports.free()
        configPath = dir.appendingPathComponent("edge.yaml").path
    }

    /// Starts `upstream.py serve --name NAME` on a free port.
    @discardableResult
    func startUpstream(_ name: String) throws -> UInt16 {
        let port = try Ports.free()
        let py = try Paths.require("python3")
        let p = try ManagedProcess(name: "up-\(name)", executable: py,
                                   arguments: ["-u", Paths.upstreamScript, "serve", "--port", String(port), "--name", name], dir: dir)
        upstreams[name] = (port, p)
        let deadline = OS.now() + 10
        while OS.now() < deadline {
            if Ports.connectErrno(port) == 0 { return port }
            OS.sleepMs(30)
        }
        throw HarnessError("upstream \(name) did not start: \(p.stderrText())")
    }

    func port(_ name: String) -> UInt16 { upstreams[name]?.port ?? 0 }

    /// Config header with runtime/admin and one http listener whose routes are `routes` (6-space indented YAML).
    func yaml(routes: String, clusters: String, workers: Int = 1, extraListeners: String = "", pidFile: String? = nil) -> String {
        var y = """
        runtime:
          workers: \(workers)
          drain_timeout: 5s

        """
        if let pidFile { y += "  pid_file: \"\(pidFile)\"\n" }
        y += """
        admin:
          address: "127.0.0.1:\(adminPort)"
        listeners:
          - name: web
            address: "127.0.0.1:\(listenPort)"
            routes:
        \(routes)
        \(extraListeners)
        clusters:
        \(clusters)

        """
        return y
    }

    func writeConfig(_ text: String) throws {
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    func startEdge() throws {
        let bin = try Paths.edgeBinary()
        edge = try ManagedProcess(name: "edge", executable: bin, arguments: ["run", "--config", configPath], dir: dir)
        let deadline = OS.now() + 10
        while OS.now() < deadline {
            if edge?.isRunning != true { throw HarnessError("edge exited: \(edge?.stderrText() ?? "")") }
            if let r = try? HTTP.get(port: adminPort, "/health/ready", timeout: 1), r.status == 200 { return }
            OS.sleepMs(50)
        }
        throw HarnessError("edge not ready: \(edge?.stderrText() ?? "")")
    }

    /// POST /reload on the admin API: (status, body).
    func reload() throws -> (Int, String) {
        let c = try RawClient(port: adminPort, timeout: 30)
        defer { c.close() }
        try c.send("POST /reload HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        let r = try c.readResponse()
        return (r.status, r.text)
    }

    func post(_ path: String) throws -> HTTPResponse {
        let c = try RawClient(port: adminPort, timeout: 10)
        defer { c.close() }
        try c.send("POST \(path) HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return try c.readResponse()
    }

    /// `n` keep-alive GETs on one connection; returns X-Upstream-Name counts.
    func countUpstreams(_ path: String, n: Int, headers: (Int) -> [String] = { _ in [] }) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        var c = try RawClient(port: listenPort, timeout: 10)
        defer { c.close() }
        for i in 0..<n {
            let r: HTTPResponse
            do { r = try HTTP.request(c, path, port: listenPort, headers: headers(i)) } catch {
                c.close(); c = try RawClient(port: listenPort, timeout: 10)
                r = try HTTP.request(c, path, port: listenPort, headers: headers(i))
            }
            guard r.status == 200 else { throw HarnessError("request \(i) \(path): \(r.summary)") }
            counts[r.header("X-Upstream-Name") ?? "?", default: 0] += 1
        }
        return counts
    }

    var edgeStderr: String { edge?.stderrText() ?? "" }

    func stop() {
        edge?.stop()
        for (_, u) in upstreams { u.process.stop() }
    }
}
