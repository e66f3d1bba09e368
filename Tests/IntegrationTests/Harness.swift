// Integration-test harness: runs the real `edge` binary against the Python test
// upstream (upstream.py) and talks to it with curl and raw sockets.
//
// Nothing here skips silently: a missing `edge` binary, a missing python3 or
// an edge that never becomes ready fails the test with a message saying why.
//
// Binary lookup: $EDGE_BIN, else <repo>/.build/release/edge, else
// <repo>/.build/debug/edge.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Errors and paths

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = message }
}

enum Paths {
    /// <repo>/ (this file lives in <repo>/Tests/IntegrationTests/).
    static let repoRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var upstreamScript: String {
        repoRoot.appendingPathComponent("Tests/IntegrationTests/upstream.py").path
    }

    static var allocSource: String {
        repoRoot.appendingPathComponent("Benchmarks/alloc/alloc_count.c").path
    }

    static func edgeBinary() throws -> String {
        let fm = FileManager.default
        if let p = ProcessInfo.processInfo.environment["EDGE_BIN"], !p.isEmpty {
            guard fm.isExecutableFile(atPath: p) else {
                throw HarnessError("EDGE_BIN=\(p) is not an executable file")
            }
            return p
        }
        var tried: [String] = []
        for rel in [".build/release/edge", ".build/debug/edge"] {
            let p = repoRoot.appendingPathComponent(rel).path
            tried.append(p)
            if fm.isExecutableFile(atPath: p) { return p }
        }
        throw HarnessError("""
            edge binary not found (EDGE_BIN unset; tried \(tried.joined(separator: ", "))). \
            Build it with `swift build -c release --product edge` or set EDGE_BIN.
            """)
    }

    /// Resolve a command on PATH (like `command -v`).
    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        for dir in ["/usr/sbin", "/sbin", "/usr/local/sbin"] {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    static func require(_ name: String) throws -> String {
        guard let p = which(name) else {
            throw HarnessError("required tool `\(name)` not found on PATH (run `make deps`)")
        }
        return p
    }

    static func makeTempDir(_ tag: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("edge-it-\(tag)-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}

// MARK: - Small OS helpers

enum OS {
    static let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    /// Read a whole (possibly /proc) file with read(2); /proc files report size 0.
    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        var out = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, 8192) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// VmRSS of a process in KiB.
    static func rssKiB(pid: Int32) -> Int? {
        guard let s = readFile("/proc/\(pid)/status") else { return nil }
        for line in s.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let digits = line.dropFirst(6).filter { $0.isNumber }
            return Int(digits)
        }
        return nil
    }

    /// Parse a Linux CPU list ("0-3,6,8-9") into CPU numbers.
    static func parseCPUList(_ text: String) -> [Int] {
        var cpus: [Int] = []
        for part in text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",") {
            let bounds = part.split(separator: "-")
            if bounds.count == 2, let a = Int(bounds[0]), let b = Int(bounds[1]), a <= b {
                cpus.append(contentsOf: a...b)
            } else if let a = Int(part) {
                cpus.append(a)
            }
        }
        return cpus
    }

    static func statusField(_ status: String, _ field: String) -> String? {
        for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
            return line.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    static func sleepMs(_ ms: Int) { usleep(UInt32(ms) * 1000) }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

// MARK: - Ports

enum Ports {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var handedOut = Set<UInt16>()

    /// A currently free TCP port on 127.0.0.1 (bind port 0, read it, close).
    /// Never returns the same port twice within one test process.
    static func free() throws -> UInt16 {
        for _ in 0..<50 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw HarnessError("socket(): errno \(errno)") }
            defer { close(fd) }
            var addr = loopback(port: 0)
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard rc == 0 else { throw HarnessError("bind(0): errno \(errno)") }
            var out = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &out) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
            }
            let port = UInt16(bigEndian: out.sin_port)
            let fresh: Bool = lock.withLock { handedOut.insert(port).inserted }
            if fresh { return port }
        }
        throw HarnessError("could not find a free port")
    }

    static func loopback(port: UInt16) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        return a
    }

    /// connect() to 127.0.0.1:port; returns 0 on success (socket closed again) or errno.
    static func connectErrno(_ port: UInt16, timeout: Double = 2) -> Int32 {
        do {
            let c = try RawClient(port: port, timeout: timeout)
            c.close()
            return 0
        } catch let e as RawClient.ConnectError {
            return e.errno
        } catch {
            return -1
        }
    }

    /// A listening socket whose accept queue is full, so further connects hang
    /// (used to provoke upstream connect timeouts without leaving 127.0.0.1).
    static func blackhole() throws -> (port: UInt16, fds: [Int32]) {
        let ls = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard ls >= 0 else { throw HarnessError("socket(): errno \(errno)") }
        var addr = loopback(port: 0)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(ls, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0, listen(ls, 0) == 0 else { throw HarnessError("blackhole bind/listen: errno \(errno)") }
        var out = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &out) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(ls, $0, &len) }
        }
        let port = UInt16(bigEndian: out.sin_port)
        var fds = [ls]
        for _ in 0..<3 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            var a = loopback(port: port)
            _ = withUnsafePointer(to: &a) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            fds.append(fd)
        }
        OS.sleepMs(100)
        return (port, fds)
    }
}

// MARK: - Processes

/// A child process with stdout/stderr captured to files. Stopped by PID.
final class ManagedProcess: @unchecked Sendable {
    let name: String
    let process = Process()
    let stdoutPath: String
    let stderrPath: String

    init(name: String, executable: String, arguments: [String], environment: [String: String]? = nil,
         dir: URL) throws {
        OS.ignoreSIGPIPE
        self.name = name
        stdoutPath = dir.appendingPathComponent("\(name).stdout").path
        stderrPath = dir.appendingPathComponent("\(name).stderr").path
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.currentDirectoryURL = dir
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        do {
            try process.run()
        } catch {
            throw HarnessError("could not start \(name) (\(executable)): \(error)")
        }
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    func signal(_ sig: Int32) {
        if process.isRunning { kill(pid, sig) }
    }

    /// Wait up to `timeout` seconds; returns the exit status (or the signal number
    /// + 128 when killed by a signal), nil when still running.
    func wait(timeout: Double) -> Int32? {
        let deadline = OS.now() + timeout
        while process.isRunning && OS.now() < deadline { OS.sleepMs(10) }
        if process.isRunning { return nil }
        process.waitUntilExit()
        return process.terminationReason == .uncaughtSignal
            ? 128 + process.terminationStatus : process.terminationStatus
    }

    func stop() {
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
    }

    func stderrText() -> String { OS.readFile(stderrPath) ?? "" }
    func stdoutText() -> String { OS.readFile(stdoutPath) ?? "" }
}

struct CommandResult {
    var status: Int32
    var stdout: Data
    var stderr: String
    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
}

/// Run a command to completion (stdout/stderr through temp files, so no pipe
/// deadlocks); killed and reported if it exceeds `timeout`.
func runCommand(_ executable: String, _ arguments: [String], timeout: Double = 60,
                environment: [String: String]? = nil) throws -> CommandResult {
    let dir = try Paths.makeTempDir("cmd")
    defer { try? FileManager.default.removeItem(at: dir) }
    let exe = executable.hasPrefix("/") ? executable : try Paths.require(executable)
    let p = try ManagedProcess(name: "cmd", executable: exe, arguments: arguments,
                               environment: environment, dir: dir)
    guard let status = p.wait(timeout: timeout) else {
        p.stop()
        throw HarnessError("command timed out after \(timeout)s: \(executable) \(arguments.joined(separator: " "))\nstderr: \(p.stderrText())")
    }
    let out = FileManager.default.contents(atPath: p.stdoutPath) ?? Data()
    return CommandResult(status: status, stdout: out, stderr: p.stderrText())
}

/// Run a shell pipeline with /bin/sh -c.
func runShell(_ script: String, timeout: Double = 60) throws -> CommandResult {
    try runCommand("/bin/sh", ["-c", script], timeout: timeout)
}

// MARK: - HTTP responses and raw-socket client

struct HTTPResponse {
    var version: String
    var status: Int
    var reason: String
    var headers: [(name: String, value: String)]
    var body: [UInt8]
    /// The connection ended before the announced body was complete.
    var truncated: Bool = false

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    func headerValues(_ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    var text: String { String(decoding: body, as: UTF8.self) }

    func json() throws -> [String: Any] {
        guard let obj = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw HarnessError("response body is not a JSON object: \(text.prefix(300))")
        }
        return obj
    }

    var summary: String {
        let hs = headers.map { "\($0.name): \($0.value)" }.joined(separator: "\n  ")
        return "\(version) \(status) \(reason)\n  \(hs)\n  body(\(body.count)): \(text.prefix(200))"
    }
}

/// Blocking TCP client with a receive buffer, for byte-exact HTTP tests.
final class RawClient {
    struct ConnectError: Error, CustomStringConvertible {
        var errno: Int32
        var description: String { "connect failed: \(String(cString: strerror(errno))) (errno \(errno))" }
    }

    let fd: Int32
    private(set) var buffer: [UInt8] = []
    private var eof = false

    init(port: UInt16, timeout: Double = 10) throws {
        OS.ignoreSIGPIPE
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket(): errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        setTimeout(timeout)
        var addr = Ports.loopback(port: port)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if rc != 0 {
            let e = errno
            Glibc.close(fd)
            throw ConnectError(errno: e)
        }
    }

    deinit { close() }

    private var closed = false
    func close() {
        if !closed { closed = true; Glibc.close(fd) }
    }

    func setTimeout(_ seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw HarnessError("send failed: \(String(cString: strerror(errno)))")
            }
            off += n
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Half-close our side (the peer sees EOF).
    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Receive more bytes; false on EOF/reset. Throws on timeout.
    @discardableResult
    func fill() throws -> Bool {
        if eof { return false }
        var tmp = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = tmp.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 65536, 0) }
            if n > 0 { buffer.append(contentsOf: tmp[0..<n]); return true }
            if n == 0 { eof = true; return false }
            let e = errno
            if e == EINTR { continue }
            if e == ECONNRESET { eof = true; return false }
            if e == EAGAIN || e == EWOULDBLOCK { throw HarnessError("timed out waiting for data from the proxy") }
            throw HarnessError("recv failed: \(String(cString: strerror(e)))")
        }
    }

    private func take(_ n: Int) -> [UInt8] {
        let out = Array(buffer[0..<n])
        buffer.removeFirst(n)
        return out
    }

    private func findCRLFCRLF() -> Int? {
        if buffer.count < 4 { return nil }
        for i in 0...(buffer.count - 4)
        where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i
        }
        return nil
    }

    private func readLine() throws -> [UInt8]? {
        while true {
            if let i = buffer.firstIndex(of: 10) {
                var line = take(i + 1)
                line.removeLast()
                if line.last == 13 { line.removeLast() }
                return line
            }
            if try !fill() { return nil }
        }
    }

    /// Read one response. `headRequest`: the request was HEAD (no body).
    /// `skipInterim`: silently consume 1xx responses.
    func readResponse(headRequest: Bool = false, skipInterim: Bool = true) throws -> HTTPResponse {
        while true {
            var end = findCRLFCRLF()
            while end == nil {
                if try !fill() {
                    throw HarnessError("connection closed before a complete response head (got \(buffer.count) bytes: \(String(decoding: buffer.prefix(200), as: UTF8.self).debugDescription))")
                }
                end = findCRLFCRLF()
            }
            let head = String(decoding: take(end! + 4).dropLast(4), as: UTF8.self)
            var lines = head.components(separatedBy: "\r\n")
            let statusLine = lines.removeFirst()
            let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count >= 2, let status = Int(parts[1]) else {
                throw HarnessError("bad status line: \(statusLine.debugDescription)")
            }
            var headers: [(name: String, value: String)] = []
            for line in lines {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers.append((String(line[..<colon]),
                                line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
            }
            var resp = HTTPResponse(version: String(parts[0]), status: status,
                                    reason: parts.count > 2 ? String(parts[2]) : "",
                                    headers: headers, body: [])
            if status >= 100 && status < 200 {
                if skipInterim { continue }
                return resp
            }
            if headRequest || status == 204 || status == 304 { return resp }
            if let te = resp.header("transfer-encoding"), te.lowercased().contains("chunked") {
                try readChunked(into: &resp)
            } else if let cl = resp.header("content-length") {
                guard let n = Int(cl) else { throw HarnessError("bad content-length \(cl)") }
                while buffer.count < n {
                    if try !fill() { break }
                }
                if buffer.count < n {
                    resp.body = take(buffer.count)
                    resp.truncated = true
                } else {
                    resp.body = take(n)
                }
            } else {
                while try fill() {}
                resp.body = take(buffer.count)
            }
            return resp
        }
    }

    private func readChunked(into resp: inout HTTPResponse) throws {
        while true {
            guard let line = try readLine() else { resp.truncated = true; return }
            let sizeText = String(decoding: line, as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                throw HarnessError("bad chunk size line \(String(decoding: line, as: UTF8.self).debugDescription)")
            }
            if size == 0 {
                while let t = try readLine() { if t.isEmpty { return } }
                resp.truncated = true
                return
            }
            while buffer.count < size + 2 {
                if try !fill() { resp.body += take(min(buffer.count, size)); resp.truncated = true; return }
            }
            resp.body += take(size)
            _ = take(2)
        }
    }

    /// Wait until the peer closes (true) or `timeout` passes without close (false).
    /// Any bytes received meanwhile are kept in the buffer.
    func waitForClose(timeout: Double) -> Bool {
        setTimeout(timeout)
        do {
            while try fill() {}
            return true
        } catch {
            return false
        }
    }

    /// Everything remaining until close (or timeout).
    func readToClose(timeout: Double) -> (bytes: [UInt8], closed: Bool) {
        let closed = waitForClose(timeout: timeout)
        return (take(buffer.count), closed)
    }

    var pending: [UInt8] { buffer }
}

// MARK: - Simple one-shot requests

enum HTTP {
    /// One request on a fresh connection (Connection: close unless given).
    static func get(port: UInt16, _ path: String, host: String? = nil,
                    headers: [String] = [], timeout: Double = 10) throws -> HTTPResponse {
        let c = try RawClient(port: port, timeout: timeout)
        defer { c.close() }
        var req = "GET \(path) HTTP/1.1\r\nHost: \(host ?? "127.0.0.1:\(port)")\r\n"
        for h in headers { req += h + "\r\n" }
        if !headers.contains(where: { $0.lowercased().hasPrefix("connection:") }) {
            req += "Connection: close\r\n"
        }
        req += "\r\n"
        try c.send(req)
        return try c.readResponse()
    }

    /// A keep-alive request on an existing connection.
    static func request(_ c: RawClient, method: String = "GET", _ path: String, port: UInt16,
                        headers: [String] = [], body: [UInt8]? = nil) throws -> HTTPResponse {
        var req = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        for h in headers { req += h + "\r\n" }
        if let body { req += "Content-Length: \(body.count)\r\n" }
        req += "\r\n"
        var bytes = Array(req.utf8)
        if let body { bytes += body }
        try c.send(bytes)
        return try c.readResponse(headRequest: method == "HEAD")
    }
}

// MARK: - curl

struct CurlResult {
    var exitCode: Int32
    var status: Int
    var headers: String       // -D output
    var body: Data
    var stderr: String
    var bodyText: String { String(decoding: body, as: UTF8.self) }
    func json() throws -> [String: Any] {
        guard let o = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw HarnessError("curl body is not a JSON object: \(bodyText.prefix(300))")
        }
        return o
    }
    func header(_ name: String) -> String? {
        for line in headers.components(separatedBy: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            if line[..<colon].lowercased() == name.lowercased() {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }
}

enum Curl {
    static func run(_ args: [String], timeout: Double = 60) throws -> CurlResult {
        let dir = try Paths.makeTempDir("curl")
        defer { try? FileManager.default.removeItem(at: dir) }
        let hdr = dir.appendingPathComponent("headers").path
        let body = dir.appendingPathComponent("body").path
        let r = try runCommand("curl", ["-sS", "--max-time", String(Int(timeout)), "-D", hdr, "-o", body,
                                        "-w", "%{http_code}"] + args, timeout: timeout + 5)
        return CurlResult(exitCode: r.status, status: Int(r.stdoutText.trimmingCharacters(in: .whitespaces)) ?? 0,
                          headers: OS.readFile(hdr) ?? "",
                          body: FileManager.default.contents(atPath: body) ?? Data(),
                          stderr: r.stderr)
    }
}

// MARK: - Config

/// Knobs for the generated test config. Everything not set uses the harness
/// defaults below.
struct EdgeOptions {
    var workers: String = "1"
    var drainTimeout: String = "5s"
    var logFormat: String = "text"
    var maxBody: String? = nil
    var maxRequestLine: String = "4KiB"
    var maxHeaderBytes: String = "16KiB"
    var maxHeaders: Int = 50
    var environment: [String: String] = [:]
    /// Endpoints of cluster `up`; nil = the Python upstream.
    var upEndpoints: [String]? = nil
    /// Raw YAML inserted at the start of the route list (`      - match: ...`, 6-space indent).
    var extraRoutes: String = ""
    /// Raw YAML lines added to the `admin:` section (2-space indent) and at the end (top level).
    var adminExtra: String = ""
    var extraTopLevel: String = ""
    /// Headers sent with the readiness probe (an admin token with auth_reads).
    var readyHeaders: [String] = []
    /// Raw YAML lines added to listener `web` after its `http:` block (4-space indent), e.g. `    http2: { cleartext: true }`.
    var listenerExtra: [String] = []
}

// MARK: - The harness

/// One test's world: a temp dir, the Python upstream, the edge process and the
/// ports they use. Everything is stopped by PID in `stop()`.
final class EdgeHarness {
    let dir: URL
    let options: EdgeOptions
    let listenPort: UInt16
    let adminPort: UInt16
    let upstreamPort: UInt16
    let refusedPort: UInt16
    private(set) var blackholePort: UInt16 = 0
    private var blackholeFDs: [Int32] = []
    private(set) var upstream: ManagedProcess?
    private(set) var edge: ManagedProcess?
    let configPath: String

    init(options: EdgeOptions = EdgeOptions()) throws {
        self.options = options
        dir = try Paths.makeTempDir("edge")
        listenPort = try Ports.free()
        adminPort = try Ports.free()
        upstreamPort = try Ports.free()
        refusedPort = try Ports.free()
        configPath = dir.appendingPathComponent("edge.yaml").path
        let bh = try Ports.blackhole()
        blackholePort = bh.port
        blackholeFDs = bh.fds
    }

    var edgePID: Int32 { edge?.pid ?? -1 }

    func start() throws {
        let bin = try Paths.edgeBinary()
        try startUpstream()
        try config().write(toFile: configPath, atomically: true, encoding: .utf8)
        try startEdge(binary: bin)
    }

    func startUpstream() throws {
        let py = try Paths.require("python3")
        upstream = try ManagedProcess(name: "upstream", executable: py,
                                      arguments: ["-u", Paths.upstreamScript, "serve", "--port", String(upstreamPort)],
                                      dir: dir)
        let deadline = OS.now() + 10
        while OS.now() < deadline {
            if Ports.connectErrno(upstreamPort) == 0 { return }
            if upstream?.isRunning == false { break }
            OS.sleepMs(30)
        }
        throw HarnessError("upstream.py did not start on port \(upstreamPort): \(upstream?.stderrText() ?? "")")
    }

    func startEdge(binary: String) throws {
        var env = ProcessInfo.processInfo.environment
        for (k, v) in options.environment { env[k] = v }
        edge = try ManagedProcess(name: "edge", executable: binary,
                                  arguments: ["run", "--config", configPath], environment: env, dir: dir)
        try waitReady(timeout: 10)
    }

    /// Poll GET /health/ready on the admin port until 200.
    func waitReady(timeout: Double) throws {
        let deadline = OS.now() + timeout
        var last = "no answer"
        while OS.now() < deadline {
            if edge?.isRunning != true {
                let status = edge?.wait(timeout: 1).map(String.init) ?? "?"
                throw HarnessError("edge exited (status \(status)) before becoming ready.\n--- config ---\n\(configText)\n--- edge stderr ---\n\(edge?.stderrText() ?? "")")
            }
            if let r = try? HTTP.get(port: adminPort, "/health/ready", headers: options.readyHeaders, timeout: 1) {
                if r.status == 200 { return }
                last = "status \(r.status)"
            }
            OS.sleepMs(50)
        }
        throw HarnessError("edge not ready after \(timeout)s (/health/ready on 127.0.0.1:\(adminPort): \(last)).\n--- edge stderr ---\n\(edge?.stderrText() ?? "")")
    }

    var configText: String { OS.readFile(configPath) ?? "" }

    func config() -> String {
        let o = options
        let up = (o.upEndpoints ?? ["127.0.0.1:\(upstreamPort)"]).map { "\"\($0)\"" }.joined(separator: ", ")
        var y: [String] = [
            "# Generated by Edge IntegrationTests (Harness.swift).",
            "runtime:",
            "  workers: \(o.workers)",
            "  drain_timeout: \(o.drainTimeout)",
            "  log_format: \(o.logFormat)",
            "admin:",
            "  address: \"127.0.0.1:\(adminPort)\"",
        ]
        if !o.adminExtra.isEmpty { y.append(o.adminExtra) }
        y += [
            "listeners:",
            "  - name: web",
            "    address: \"127.0.0.1:\(listenPort)\"",
            "    protocol: http",
            "    http:",
            "      max_request_line: \(o.maxRequestLine)",
            "      max_header_bytes: \(o.maxHeaderBytes)",
            "      max_headers: \(o.maxHeaders)",
            "      header_timeout: 10s",
            "      idle_timeout: 60s",
            "      body_timeout: 60s",
        ]
        if let mb = o.maxBody { y.append("      max_body: \(mb)") }
        y += o.listenerExtra
        y.append("    routes:")
        if !o.extraRoutes.isEmpty { y.append(o.extraRoutes) }
        y += [
            "      - match: { path: \"/direct\" }",
            "        direct_response:",
            "          status: 201",
            "          headers: { x-direct: \"yes\", content-type: \"text/plain\" }",
            "          body: \"direct body\\n\"",
            "      - match: { host: \"vhost.test\", path_prefix: \"/\" }",
            "        direct_response: { status: 200, body: \"vhost\\n\" }",
            "      - match: { path_prefix: \"/api/\" }",
            "        cluster: up",
            "        strip_prefix: true",
            "      - match: { path_prefix: \"/t500\" }",
            "        cluster: up",
            "        strip_prefix: true",
            "        timeout: 500ms",
            "      - match: { path_prefix: \"/refused\" }",
            "        cluster: refused",
            "        strip_prefix: true",
            "      - match: { path_prefix: \"/blackhole\" }",
            "        cluster: blackhole",
            "        strip_prefix: true",
        ]
        for p in ["/echo", "/status/", "/bytes", "/upload", "/slow", "/close-early", "/garbage", "/conn", "/continue"] {
            y.append("      - match: { path_prefix: \"\(p)\" }")
            y.append("        cluster: up")
        }
        y += [
            "clusters:",
            "  - name: up",
            "    endpoints: [ \(up) ]",
            "    balance: round_robin",
            "    connect_timeout: 1s",
            "    max_idle: 64",
            "    idle_timeout: 30s",
            "  - name: refused",
            "    endpoints: [ \"127.0.0.1:\(refusedPort)\" ]",
            "    connect_timeout: 1s",
            "  - name: blackhole",
            "    endpoints: [ \"127.0.0.1:\(blackholePort)\" ]",
            "    connect_timeout: 300ms",
        ]
        if !o.extraTopLevel.isEmpty { y.append(o.extraTopLevel) }
        return y.joined(separator: "\n") + "\n"
    }

    // MARK: upstream stats

    struct UpstreamStats: Equatable, CustomStringConvertible {
        var connections: Int
        var requests: Int
        var completed: Int
        var description: String { "connections=\(connections) requests=\(requests) completed=\(completed)" }
    }

    /// Counters from the Python upstream (direct, not through edge).
    func stats() throws -> UpstreamStats {
        let r = try HTTP.get(port: upstreamPort, "/_stats")
        let j = try r.json()
        return UpstreamStats(connections: j["connections"] as? Int ?? -1,
                             requests: j["requests"] as? Int ?? -1,
                             completed: j["completed"] as? Int ?? -1)
    }

    // MARK: admin

    func admin(_ path: String) throws -> HTTPResponse {
        try HTTP.get(port: adminPort, path)
    }

    func metricsText() throws -> String {
        let r = try admin("/metrics")
        guard r.status == 200 else { throw HarnessError("/metrics returned \(r.status): \(r.text.prefix(200))") }
        return r.text
    }

    /// All samples of the metrics text: "name{labels}" → value.
    static func parseMetrics(_ text: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let sp = line.lastIndex(of: " ") else { continue }
            let key = line[..<sp].trimmingCharacters(in: .whitespaces)
            if let v = Double(line[line.index(after: sp)...].trimmingCharacters(in: .whitespaces)) {
                out[key] = v
            }
        }
        return out
    }

    /// Per-worker values of a metric: worker label → value.
    static func perWorker(_ metrics: [String: Double], _ name: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for (k, v) in metrics where k.hasPrefix(name + "{") {
            if let r = k.range(of: "worker=\"") {
                let rest = k[r.upperBound...]
                if let q = rest.firstIndex(of: "\"") { out[String(rest[..<q])] = v }
            }
        }
        return out
    }

    // MARK: teardown

    func stop() {
        edge?.stop()
        upstream?.stop()
        for fd in blackholeFDs { close(fd) }
        blackholeFDs = []
    }

    func cleanup() { try? FileManager.default.removeItem(at: dir) }

    func diagnostics() -> String {
        """
        --- edge (pid \(edgePID)) stderr, last 4000 chars [\(edge?.stderrPath ?? "-")] ---
        \(String((edge?.stderrText() ?? "(edge not started)").suffix(4000)))
        --- upstream stderr, last 1500 chars ---
        \(String((upstream?.stderrText() ?? "").suffix(1500)))
        """
    }
}

// MARK: - Base test case

/// Base class: `let h = try startEdge()` in a test; stopped and diagnosed in tearDown.
class EdgeTestCase: XCTestCase {
    var harness: EdgeHarness?

    @discardableResult
    func startEdge(_ options: EdgeOptions = EdgeOptions()) throws -> EdgeHarness {
        let h = try EdgeHarness(options: options)
        harness = h
        try h.start()
        return h
    }

    override func tearDown() {
        if let h = harness {
            h.stop()
            if (testRun?.totalFailureCount ?? 0) > 0 {
                print("=== \(name) failed; diagnostics ===\n--- config [\(h.configPath)] ---\n\(h.configText)\n\(h.diagnostics())")
            } else {
                h.cleanup()
            }
        }
        harness = nil
        super.tearDown()
    }

    /// Run `body` while sampling edge's VmRSS every 100 ms; returns max KiB and sample count.
    func sampleRSS<T>(pid: Int32, _ body: () throws -> T) rethrows -> (result: T, maxKiB: Int, samples: Int) {
        let sampler = RSSSampler(pid: pid)
        sampler.start()
        let r: T
        do { r = try body() } catch { _ = sampler.stop(); throw error }
        let (m, n) = sampler.stop()
        return (r, m, n)
    }
}

final class RSSSampler: @unchecked Sendable {
    private let lock = NSLock()
    private var maxKiB = 0
    private var samples = 0
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)
    let pid: Int32

    init(pid: Int32) { self.pid = pid }

    func start() {
        Thread.detachNewThread { [self] in
            while true {
                let stop = lock.withLock { stopping }
                if stop { break }
                if let kb = OS.rssKiB(pid: pid) {
                    lock.withLock { maxKiB = max(maxKiB, kb); samples += 1 }
                }
                OS.sleepMs(100)
            }
            finished.signal()
        }
    }

    func stop() -> (maxKiB: Int, samples: Int) {
        lock.withLock { stopping = true }
        finished.wait()
        return lock.withLock { (maxKiB, samples) }
    }
}

// MARK: - Test data helpers

enum TestData {
    /// Bytes [offset, offset+count) of upstream.py's pattern: byte[i] = i % 251.
    static func pattern(_ count: Int, offset: Int = 0) -> [UInt8] {
        (0..<count).map { UInt8((offset + $0) % 251) }
    }

    private static let shaLock = NSLock()
    nonisolated(unsafe) private static var shaCache: [Int: String] = [:]

    /// sha256 of the first n pattern bytes (computed by upstream.py, cached).
    static func patternSHA256(_ n: Int) throws -> String {
        if let s = shaLock.withLock({ shaCache[n] }) { return s }
        let py = try Paths.require("python3")
        let r = try runCommand(py, [Paths.upstreamScript, "pattern-sha256", String(n)], timeout: 300)
        guard r.status == 0 else { throw HarnessError("pattern-sha256 failed: \(r.stderr)") }
        let s = r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        shaLock.withLock { shaCache[n] = s }
        return s
    }

    /// A file of n random bytes in dir; returns (path, sha256 hex).
    static func randomFile(_ n: Int, in dir: URL, name: String = "body.bin") throws -> (path: String, sha256: String) {
        let path = dir.appendingPathComponent(name).path
        guard let fh = FileHandle(forReadingAtPath: "/dev/urandom") else { throw HarnessError("no /dev/urandom") }
        let data = fh.readData(ofLength: n)
        fh.closeFile()
        guard FileManager.default.createFile(atPath: path, contents: data) else {
            throw HarnessError("cannot write \(path)")
        }
        return (path, try sha256(file: path))
    }

    static func sha256(file path: String) throws -> String {
        let r = try runCommand("sha256sum", [path])
        guard r.status == 0, let first = r.stdoutText.split(separator: " ").first else {
            throw HarnessError("sha256sum failed: \(r.stderr)")
        }
        return String(first)
    }

    static func sha256(bytes: [UInt8]) throws -> String {
        let dir = try Paths.makeTempDir("sha")
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = dir.appendingPathComponent("b").path
        _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return try sha256(file: p)
    }
}

/// Headers as the upstream saw them (from /echo's JSON).
struct EchoedRequest {
    var json: [String: Any]
    var headers: [(String, String)]

    init(_ response: HTTPResponse) throws {
        json = try response.json()
        headers = ((json["headers"] as? [[String]]) ?? []).compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil }
    }

    init(json: [String: Any]) {
        self.json = json
        headers = ((json["headers"] as? [[String]]) ?? []).compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil }
    }

    func values(_ name: String) -> [String] {
        headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }

    func has(_ name: String) -> Bool { !values(name).isEmpty }

    /// All values of a (list-valued) header joined the way a recipient would combine them.
    func combined(_ name: String) -> String? {
        let v = values(name)
        return v.isEmpty ? nil : v.joined(separator: ", ")
    }

    var method: String { json["method"] as? String ?? "" }
    var path: String { json["path"] as? String ?? "" }
    var query: String { json["query"] as? String ?? "" }
    var version: String { json["version"] as? String ?? "" }
    var bodyLength: Int { json["body_length"] as? Int ?? -1 }
    var bodySHA256: String { json["body_sha256"] as? String ?? "" }
}
