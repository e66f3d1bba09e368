import XCTest
import Logging
import Synchronization
@testable import Edge

/// Test double for the server's status view.
final class FakeStatusProvider: AdminStatusProvider {
    struct Values { var total = 2, ready = 2, draining = false, lagging: [(worker: Int, behind: Int)] = [] }
    let values = Mutex(Values())
    var totalWorkers: Int { values.withLock { $0.total } }
    var readyWorkers: Int { values.withLock { $0.ready } }
    var isDraining: Bool { values.withLock { $0.draining } }
    var laggingWorkers: [(worker: Int, behind: Int)] { values.withLock { $0.lagging } }
    func renderMetrics() -> String { "# TYPE edge_requests_total counter\nedge_requests_total 7\n" }
    func reload() -> ReloadStatus { ReloadStatus(generation: 2, ok: false, message: "t.yaml:3: x: bad", unixTime: 0) }
    var lastReload: ReloadStatus { ReloadStatus(generation: 1, ok: true, message: "initial config", unixTime: 0) }
    func beginDrain() { values.withLock { $0.draining = true } }
}

/// The admin endpoint over real loopback sockets, plus its pure routing.
final class AdminServerTests: XCTestCase {
    func testRoutesWithoutSockets() {
        let p = FakeStatusProvider()
        XCTAssertEqual(AdminRoutes.respond(method: "GET", path: "/health/live", provider: p).body, "live\n")
        XCTAssertEqual(AdminRoutes.respond(method: "GET", path: "/health/ready", provider: p).status, 200)
        XCTAssertEqual(AdminRoutes.respond(method: "GET", path: "/health", provider: p).body,
                       #"{"status":"ok","workers":{"total":2,"ready":2},"draining":false}"# + "\n")
        p.values.withLock { $0.ready = 1 }
        let notReady = AdminRoutes.respond(method: "GET", path: "/health/ready", provider: p)
        XCTAssertEqual(notReady.status, 503)
        XCTAssertEqual(notReady.body, "not ready\n")
        p.values.withLock { $0.ready = 2; $0.lagging = [(1, 3)] }
        let stuck = AdminRoutes.respond(method: "GET", path: "/health/ready", provider: p)
        XCTAssertEqual(stuck.status, 503)
        XCTAssertEqual(stuck.body, "not ready: worker 1 is 3 config publication(s) behind\n")
        p.values.withLock { $0.lagging = []; $0.draining = true }
        XCTAssertEqual(AdminRoutes.respond(method: "GET", path: "/health/ready", provider: p).body, "draining\n")
        XCTAssertEqual(AdminRoutes.respond(method: "POST", path: "/health", provider: p).status, 405)
        let rejected = AdminRoutes.respond(method: "POST", path: "/reload", provider: p)
        XCTAssertEqual(rejected.status, 400)
        XCTAssertTrue(rejected.body.contains(#""message":"t.yaml:3: x: bad""#), rejected.body)
        XCTAssertTrue(AdminRoutes.respond(method: "GET", path: "/reload", provider: p).body.contains(#""ok":true"#))
        XCTAssertEqual(AdminRoutes.respond(method: "GET", path: "/drain", provider: p).status, 405)
        XCTAssertEqual(AdminRoutes.respond(method: "GET", path: "/nope", provider: p).status, 404)
    }

    func testRequestParsing() {
        XCTAssertEqual(AdminRequest(head: Array("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n".utf8)),
                       AdminRequest(head: Array("GET /metrics HTTP/1.0\r\n\r\n".utf8)))
        XCTAssertNil(AdminRequest(head: Array("GET metrics HTTP/1.1\r\n\r\n".utf8)))
        XCTAssertNil(AdminRequest(head: Array("GET /  HTTP/1.1\r\n\r\n".utf8)))
        XCTAssertNil(AdminRequest(head: Array("GET / HTTP/2\r\n\r\n".utf8)))
        XCTAssertEqual(AdminRequest.headEnd(Array("GET / HTTP/1.1\r\n\r\nxyz".utf8)), 18)
        XCTAssertNil(AdminRequest.headEnd(Array("GET / HTTP/1.1\r\n".utf8)))
    }

    func testServerOverLoopback() throws {
        let provider = FakeStatusProvider()
        let addr = try ConfigValues.socketAddress("127.0.0.1:0", allowPortZero: true)
        let server = try AdminServer(address: addr, provider: provider, logger: Logger(label: "test"))
        server.start()
        defer { server.stop() }
        let port = server.port
        XCTAssertNotEqual(port, 0)

        var r = try Self.request(port, "GET /health/ready HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(r.hasPrefix("HTTP/1.1 200 OK\r\n"), r)
        XCTAssertTrue(r.contains("Content-Length: 6\r\n"), r)
        XCTAssertTrue(r.contains("Connection: close\r\n"), r)
        XCTAssertTrue(r.hasSuffix("\r\n\r\nready\n"), r)

        provider.values.withLock { $0.ready = 0 }
        r = try Self.request(port, "GET /health/ready HTTP/1.1\r\n\r\n")
        XCTAssertTrue(r.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"), r)
        XCTAssertTrue(r.hasSuffix("not ready\n"), r)

        r = try Self.request(port, "GET /health HTTP/1.1\r\n\r\n")
        XCTAssertTrue(r.contains("Content-Type: application/json"), r)
        XCTAssertTrue(r.hasSuffix(#"{"status":"starting","workers":{"total":2,"ready":0},"draining":false}"# + "\n"), r)

        r = try Self.request(port, "GET /metrics HTTP/1.1\r\n\r\n")
        XCTAssertTrue(r.hasPrefix("HTTP/1.1 200 OK\r\n"), r)
        XCTAssertTrue(r.hasSuffix("edge_requests_total 7\n"), r)

        r = try Self.request(port, "GET /nope HTTP/1.1\r\n\r\n")
        XCTAssertTrue(r.hasPrefix("HTTP/1.1 404 Not Found\r\n"), r)

        r = try Self.request(port, "POST /health HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        XCTAssertTrue(r.hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n"), r)
        XCTAssertTrue(r.contains("Allow: GET, HEAD\r\n"), r)

        r = try Self.request(port, "HEAD /health/live HTTP/1.1\r\n\r\n")
        XCTAssertTrue(r.hasPrefix("HTTP/1.1 200 OK\r\n") && r.hasSuffix("\r\n\r\n"), r)

        r = try Self.request(port, "garbage\r\n\r\n")
        XCTAssertTrue(r.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), r)

        r = try Self.request(port, "GET /" + String(repeating: "a", count: 9000))
        XCTAssertTrue(r.hasPrefix("HTTP/1.1 431 "), r)
    }

    func testBindErrorMessage() throws {
        let addr = try ConfigValues.socketAddress("127.0.0.1:0", allowPortZero: true)
        let first = try AdminServer(address: addr, provider: FakeStatusProvider(), logger: Logger(label: "test"))
        let taken = first.boundAddress
        XCTAssertThrowsError(try AdminServer(address: taken, provider: FakeStatusProvider(), logger: Logger(label: "test"))) {
            XCTAssertEqual("\($0)", "admin: cannot bind \(taken.text): Address already in use")
        }
        first.stop()
    }

    func testStopWithoutStartAndTwice() throws {
        let addr = try ConfigValues.socketAddress("127.0.0.1:0", allowPortZero: true)
        let server = try AdminServer(address: addr, provider: FakeStatusProvider(), logger: Logger(label: "test"))
        server.stop()
        server.start()  // no-op after stop
        server.stop()
    }

    // MARK: raw socket client

    struct ClientError: Error { var what: String }

    /// Sends `text` to 127.0.0.1:port and reads until the server closes.
    static func request(_ port: UInt16, _ text: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ClientError(what: "socket") }
        defer { close(fd) }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        sin.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let rc = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw ClientError(what: "connect: \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
