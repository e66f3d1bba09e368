// Heap allocations on HTTPS: per request on a kept-alive TLS connection
// (target 0, like plain HTTP/1.1) and per full handshake (reported).

import Foundation
import XCTest

final class TLSPerformanceTests: TLSTestCase {
    private func allocations(_ w: TLSWorld) throws -> Double {
        guard let v = try w.metrics()["edge_heap_allocations_total"] else {
            throw HarnessError("edge_heap_allocations_total missing from /metrics although alloc_count.so is preloaded")
        }
        return v
    }

    /// Python client driven step by step through flag files: `step N` runs N
    /// keep-alive requests or N fresh connections, then prints "ok".
    private static let driver = """
        import os, socket, ssl, sys, time
        ctx = ssl.create_default_context(cafile=sys.argv[1])
        port = int(sys.argv[2]); steps = sys.argv[3]
        req = b"GET /conn HTTP/1.1\\r\\nHost: site.test\\r\\n\\r\\n"
        def connect():
            return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="site.test")
        def get(s):
            s.sendall(req)
            data = b""
            while True:
                data += s.recv(65536)
                if b"\\r\\n\\r\\n" in data:
                    head, _, body = data.partition(b"\\r\\n\\r\\n")
                    n = int([l.split(b":")[1] for l in head.split(b"\\r\\n") if l.lower().startswith(b"content-length")][0])
                    if len(body) >= n:
                        assert head.startswith(b"HTTP/1.1 200"), head
                        return
        s = connect()
        for step, spec in enumerate(sys.argv[4:]):
            kind, n = spec.split(":"); n = int(n)
            if kind == "req":
                for _ in range(n): get(s)
            else:
                ctx2 = ssl.create_default_context(cafile=sys.argv[1])
                for _ in range(n):
                    # A fresh context each time: no session to resume, a full handshake.
                    c = ssl.create_default_context(cafile=sys.argv[1]).wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="site.test")
                    get(c); c.close()
            print("step", step, flush=True)
            flag = os.path.join(steps, str(step))
            deadline = time.time() + 60
            while not os.path.exists(flag) and time.time() < deadline: time.sleep(0.02)
        """

    func testAllocationsPerKeptAliveHTTPSRequestAndPerHandshake() throws {
        let libDir = try Paths.makeTempDir("alloc")
        addTeardownBlock { try? FileManager.default.removeItem(at: libDir) }
        let lib = try PerformanceTests.buildAllocCounter(in: libDir)
        let w = try startWorld(tlsBlock: { _ in
            """
                  certificates:
                    - { cert: certs/site.pem, key: certs/site.key }
            """
        }, prepare: { pki in try pki.leaf("site", cn: "/CN=site.test", sans: "DNS:site.test") },
           environment: ["LD_PRELOAD": lib])
        let script = w.pki.file("driver.py"), steps = w.pki.file("steps")
        try FileManager.default.createDirectory(atPath: steps, withIntermediateDirectories: true)
        try Self.driver.write(toFile: script, atomically: true, encoding: .utf8)
        let requests = 3_000, handshakes = 100
        let p = try ManagedProcess(name: "driver", executable: try Paths.require("python3"),
                                   arguments: [script, w.pki.file("ca.pem"), String(w.httpsPort), steps,
                                               "req:1000", "hs:20", "req:\(requests)", "hs:\(handshakes)"],
                                   dir: w.harness.dir)
        defer { p.stop() }
        func waitStep(_ n: Int) throws {
            let deadline = OS.now() + 120
            while !p.stdoutText().contains("step \(n)") {
                if !p.isRunning || OS.now() > deadline { throw HarnessError("driver stopped before step \(n): \(p.stderrText())") }
                OS.sleepMs(20)
            }
        }
        func go(_ n: Int) { FileManager.default.createFile(atPath: "\(steps)/\(n)", contents: Data()) }
        try waitStep(0); go(0)   // warm-up requests
        try waitStep(1)          // warm-up handshakes
        let a = try allocations(w), b = try allocations(w)
        let perRead = b - a
        go(1); try waitStep(2)
        let c = try allocations(w)
        go(2); try waitStep(3)
        let d = try allocations(w)
        go(3)
        let perRequest = (c - b - perRead) / Double(requests)
        let perHandshake = (d - c - perRead) / Double(handshakes)
        print(String(format: "TLS allocations: %.3f per kept-alive HTTPS request, %.1f per full handshake (incl. its one request)",
                     perRequest, perHandshake))
        XCTAssertGreaterThan(a, 0, "counter reads 0")
        XCTAssertLessThanOrEqual(perRequest, 0.05, "heap allocations per kept-alive HTTPS request")
        XCTAssertGreaterThan(perHandshake, 0, "a full handshake allocates (OpenSSL SSL objects); the count must see it")
    }
}
