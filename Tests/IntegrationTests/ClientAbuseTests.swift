// Slow and abusive clients against the real binary: slowloris (header timeout
// from accept, partial heads not pinning ring buffers), slow POST (min_body_rate),
// slow readers (body_timeout while sending), connection limits (global,
// per listener, per client IP) and load shedding.

import Foundation
import XCTest

final class ClientAbuseTests: EdgeTestCase {

    /// Starts the Python upstream and edge with `listeners` / `runtime` YAML
    /// written here (the harness's generated config has fixed timeouts).
    private func startCustom(runtime: String = "", http: String, listener: String = "",
                             routes: String = "", extraListeners: String = "") throws -> EdgeHarness {
        let h = try EdgeHarness()
        harness = h
        try h.startUpstream()
        let yaml = """
        runtime:
          workers: 1
          drain_timeout: 1s
        \(runtime)
        admin:
          address: "127.0.0.1:\(h.adminPort)"
        listeners:
          - name: web
            address: "127.0.0.1:\(h.listenPort)"
        \(listener)
            http:
        \(http)
            routes:
        \(routes)
              - match: { path: "/direct" }
                direct_response: { status: 200, body: "direct\\n" }
              - match: { path_prefix: "/" }
                cluster: up
        \(extraListeners)
        clusters:
          - name: up
            endpoints: [ "127.0.0.1:\(h.upstreamPort)" ]
            connect_timeout: 1s
        """
        try yaml.write(toFile: h.configPath, atomically: true, encoding: .utf8)
        try h.startEdge(binary: try Paths.edgeBinary())
        return h
    }

    private func metric(_ h: EdgeHarness, _ name: String) throws -> Int {
        var total = 0
        for line in try h.metricsText().split(separator: "\n") where line.hasPrefix(name) {
            if let v = line.split(separator: " ").last, let n = Int(v) { total += n }
        }
        return total
    }

    // MARK: slowloris

    func testSilentConnectionIsClosedAtHeaderTimeout() throws {
        let h = try startCustom(http: "      header_timeout: 800ms\n      idle_timeout: 60s")
        let c = try RawClient(port: h.listenPort, timeout: 5)
        let t0 = OS.now()
        let (bytes, closed) = c.readToClose(timeout: 5)
        let waited = OS.now() - t0
        XCTAssertTrue(closed, "a connection that never sends a request must be closed at header_timeout, not idle_timeout")
        XCTAssertTrue(bytes.isEmpty, "nothing was asked, so nothing is answered; got \(String(decoding: bytes, as: UTF8.self))")
        XCTAssertGreaterThan(waited, 0.6)
        XCTAssertLessThan(waited, 3.0, "closed after \(waited)s; header_timeout is 800ms")
    }

    func testTricklingHeadGets408AtHeaderTimeout() throws {
        let h = try startCustom(http: "      header_timeout: 1s")
        let c = try RawClient(port: h.listenPort, timeout: 5)
        let t0 = OS.now()
        try c.send("GET /echo HTTP/1.1\r\nHost: a\r\n")
        var got408 = false
        // One header line every 200 ms: each read is progress, but the head never completes.
        for k in 0..<20 {
            OS.sleepMs(200)
            do { try c.send("X-Pad-\(k): \(k)\r\n") } catch { break }
            if OS.now() - t0 > 3 { break }
        }
        if let r = try? c.readResponse() { got408 = r.status == 408 }
        XCTAssertTrue(got408, "slowloris head must get 408 once header_timeout passes")
        XCTAssertTrue(c.waitForClose(timeout: 3))
        XCTAssertEqual(try HTTP.get(port: h.listenPort, "/direct").status, 200)
    }

    /// With a 64-buffer ring, 400 connections each holding a partial head would
    /// starve every other client if partial heads stayed in ring buffers.
    func testPartialHeadsDoNotStarveOtherClients() throws {
        let h = try startCustom(runtime: "  buffer_count: 64", http: "      header_timeout: 30s")
        var holders: [RawClient] = []
        for _ in 0..<400 {
            let c = try RawClient(port: h.listenPort, timeout: 5)
            try c.send("GET /echo HTTP/1.1\r\nHost: a\r\nX-Partial: ")
            holders.append(c)
        }
        OS.sleepMs(300)
        let t0 = OS.now()
        for _ in 0..<20 {
            let r = try HTTP.get(port: h.listenPort, "/echo", timeout: 3)
            XCTAssertEqual(r.status, 200)
        }
        XCTAssertLessThan(OS.now() - t0, 3.0)
        // The held heads are still intact: finishing one completes a real request.
        try holders[7].send("done\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(try holders[7].readResponse().status, 200)
        holders.forEach { $0.close() }
    }

    /// A head sent a byte per packet is read on the pacing tick (one recv per
    /// `trickle_read_interval`, not per packet) and still completes; the same
    /// connection then reads its next request as it arrives. Small keep-alive
    /// requests, each in one packet, are never paced.
    func testTricklingHeadIsReadPacedAndStillServed() throws {
        let h = try startCustom(http: "      header_timeout: 30s")
        let keepAlive = try RawClient(port: h.listenPort, timeout: 5)
        for _ in 0..<100 {
            try keepAlive.send("GET /direct HTTP/1.1\r\nHost: a\r\n\r\n")
            XCTAssertEqual(try keepAlive.readResponse().status, 200)
        }
        XCTAssertEqual(try metric(h, "edge_paced_heads_total"), 0, "one-packet heads must never be paced")

        let c = try RawClient(port: h.listenPort, timeout: 10)
        try c.send("GET /direct HTTP/1.1\r\nHost: a\r\nX-Slow: ")
        for byte in Array("0123456789abcdefghijklmnopqrstuvwxyz0123".utf8) {
            try c.send([byte])
            OS.sleepMs(2)
        }
        XCTAssertEqual(try metric(h, "edge_paced_heads_total"), 1, "a head trickled in 40 one-byte packets is paced")
        try c.send("\r\n\r\n")
        XCTAssertEqual(try c.readResponse().status, 200)
        // Paced reading ends with the head: the next request is read at once.
        let t0 = OS.now()
        try c.send("GET /direct HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(try c.readResponse().status, 200)
        XCTAssertLessThan(OS.now() - t0, 2.0)
        XCTAssertEqual(try metric(h, "edge_paced_heads_total"), 1)
        c.close(); keepAlive.close()
    }

    // MARK: slow POST

    func testSlowBodyIsCutByMinBodyRateWhileSteadyBodyPasses() throws {
        let h = try startCustom(http: "      body_timeout: 30s\n      min_body_rate: 1000")
        let total = 30_000
        let slow = try RawClient(port: h.listenPort, timeout: 20)
        let steady = try RawClient(port: h.listenPort, timeout: 20)
        try slow.send("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: \(total)\r\n\r\n")
        try steady.send("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: \(total)\r\n\r\n")
        // slow: 10 B/s; steady: 2,500 B/s (both well inside body_timeout silences).
        let t0 = OS.now()
        var sentSteady = 0
        var slowCut = false
        var tick = 0
        while OS.now() - t0 < 16 && sentSteady < total {
            OS.sleepMs(100)
            tick += 1
            let n = min(250, total - sentSteady)
            try steady.send([UInt8](repeating: 0x61, count: n))
            sentSteady += n
            if !slowCut && tick % 10 == 0 {
                do { try slow.send([UInt8](repeating: 0x62, count: 10)) } catch { slowCut = true }
            }
        }
        let slowResponse = try? slow.readResponse()
        XCTAssertEqual(slowResponse?.status, 408, "a body below min_body_rate must get 408")
        XCTAssertTrue(slow.waitForClose(timeout: 3))
        let r = try steady.readResponse()
        XCTAssertEqual(r.status, 200, "a body above min_body_rate must pass: \(r.summary)")
        XCTAssertEqual(try r.json()["length"] as? Int, total)
        XCTAssertGreaterThanOrEqual(try metric(h, "edge_slow_request_bodies_total"), 1)
    }

    // MARK: slow read

    func testClientThatStopsReadingIsCutAfterBodyTimeout() throws {
        let h = try startCustom(http: "      body_timeout: 1s")
        let c = try RawClient(port: h.listenPort, timeout: 10)
        var small: Int32 = 4096
        setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        try c.send("GET /bytes?n=200000000 HTTP/1.1\r\nHost: a\r\n\r\n")
        // Do not read: Edge's sends stall, then body_timeout cuts the exchange.
        var cut = false
        let deadline = OS.now() + 8
        while OS.now() < deadline {
            OS.sleepMs(250)
            if (try? metric(h, "edge_slow_readers_total")) ?? 0 >= 1 { cut = true; break }
        }
        XCTAssertTrue(cut, "edge must give up on a client that stops reading (body_timeout 1s)")
        // Draining what is buffered ends in a close, well short of 200 MB.
        let (count, closed) = drain(c.fd, timeout: 5)
        XCTAssertTrue(closed)
        XCTAssertLessThan(count, 100_000_000)
        XCTAssertEqual(try metric(h, "edge_connections_active"), 0)
        XCTAssertEqual(try HTTP.get(port: h.listenPort, "/direct").status, 200)
    }

    /// Reads and counts bytes until EOF/reset (true) or a read timeout (false).
    private func drain(_ fd: Int32, timeout: Double) -> (Int, Bool) {
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var buf = [UInt8](repeating: 0, count: 65536)
        var total = 0
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { total += n; continue }
            if n == 0 || errno == ECONNRESET { return (total, true) }
            if errno == EINTR { continue }
            return (total, false)
        }
    }

    func testLocalAnswerToClientThatNeverReadsIsCut() throws {
        // 64 KiB direct answers: 200 of them are far more than socket buffers hold.
        let big = String(repeating: "x", count: 65536)
        let h = try startCustom(http: "      body_timeout: 1s",
                                routes: "      - match: { path: \"/big\" }\n        direct_response: { status: 200, body: \"\(big)\" }")
        let c = try RawClient(port: h.listenPort, timeout: 10)
        var small: Int32 = 4096
        setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        // Thousands of pipelined requests whose answers are never read.
        let one = "GET /big HTTP/1.1\r\nHost: a\r\n\r\n"
        try c.send(String(repeating: one, count: 200))
        OS.sleepMs(3500)
        XCTAssertEqual(try metric(h, "edge_connections_active"), 0, "a client that never reads must not hold its connection")
    }

    // MARK: connection limits

    private func expectRefused(_ port: UInt16, status: Int, cause: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let c = try RawClient(port: port, timeout: 3)
            try? c.send("GET /direct HTTP/1.1\r\nHost: a\r\n\r\n")
            let r = try c.readResponse()
            XCTAssertEqual(r.status, status, file: file, line: line)
            XCTAssertEqual(r.header("x-edge-error"), cause, file: file, line: line)
        } catch {
            XCTFail("expected a \(status) refusal, got \(error)", file: file, line: line)
        }
    }

    private func holdConnections(_ port: UInt16, _ n: Int) throws -> [RawClient] {
        var held: [RawClient] = []
        for _ in 0..<n {
            let c = try RawClient(port: port, timeout: 3)
            // A keep-alive request proves the connection is admitted and stays open.
            let r = try HTTP.request(c, "/direct", port: port)
            XCTAssertEqual(r.status, 200)
            held.append(c)
        }
        return held
    }

    func testListenerMaxConnections() throws {
        let h = try startCustom(http: "      header_timeout: 30s", listener: "    max_connections: 5")
        var held = try holdConnections(h.listenPort, 5)
        expectRefused(h.listenPort, status: 503, cause: "connection_limit")
        held.removeLast().close()
        OS.sleepMs(200)
        held += try holdConnections(h.listenPort, 1)
        XCTAssertGreaterThanOrEqual(try metric(h, "edge_connections_refused_total{worker=\"0\",reason=\"connection_limit\"}"), 1)
        held.forEach { $0.close() }
    }

    func testGlobalMaxConnectionsSpansListeners() throws {
        let second = try Ports.free()
        let h = try startCustom(runtime: "  max_connections: 4", http: "      header_timeout: 30s",
                                extraListeners: """
                                  - name: second
                                    address: "127.0.0.1:\(second)"
                                    routes:
                                      - match: { path_prefix: "/" }
                                        direct_response: { status: 200, body: "second\\n" }
                                """)
        var held = try holdConnections(h.listenPort, 2)
        held += try holdConnections(second, 2)
        expectRefused(h.listenPort, status: 503, cause: "connection_limit")
        expectRefused(second, status: 503, cause: "connection_limit")
        held.removeFirst().close()
        OS.sleepMs(200)
        held += try holdConnections(second, 1)
        held.forEach { $0.close() }
    }

    func testPerClientIPCap() throws {
        let h = try startCustom(http: "      header_timeout: 30s", listener: "    max_connections_per_ip: 3")
        var held = try holdConnections(h.listenPort, 3)
        expectRefused(h.listenPort, status: 429, cause: "client_connection_limit")
        // Another client address is not affected.
        let other = try Curl.run(["--interface", "127.0.0.2", "http://127.0.0.1:\(h.listenPort)/direct"], timeout: 5)
        XCTAssertEqual(other.status, 200, "127.0.0.2 must not share 127.0.0.1's cap: \(other.stderr)")
        held.removeLast().close()
        OS.sleepMs(200)
        held += try holdConnections(h.listenPort, 1)
        held.forEach { $0.close() }
    }

    /// Behind a balancer speaking PROXY protocol every connection comes from the
    /// balancer: the cap applies to the address the header conveys.
    func testPerClientIPCapUsesProxyProtocolAddress() throws {
        let h = try startCustom(http: "      header_timeout: 30s",
                                listener: "    proxy_protocol: accept\n    max_connections_per_ip: 2")
        func open(_ ip: String) throws -> (RawClient, HTTPResponse) {
            let c = try RawClient(port: h.listenPort, timeout: 3)
            try c.send("PROXY TCP4 \(ip) 127.0.0.1 40000 \(h.listenPort)\r\nGET /direct HTTP/1.1\r\nHost: a\r\n\r\n")
            return (c, try c.readResponse())
        }
        let (a1, r1) = try open("203.0.113.7")
        let (a2, r2) = try open("203.0.113.7")
        XCTAssertEqual([r1.status, r2.status], [200, 200])
        let (_, r3) = try open("203.0.113.7")
        XCTAssertEqual(r3.status, 429)
        XCTAssertEqual(r3.header("x-edge-error"), "client_connection_limit")
        let (b1, r4) = try open("203.0.113.8")
        XCTAssertEqual(r4.status, 200, "another client behind the same balancer is not capped")
        a1.close()
        OS.sleepMs(200)
        let (a3, r5) = try open("203.0.113.7")
        XCTAssertEqual(r5.status, 200, "closing one connection frees its slot")
        [a2, b1, a3].forEach { $0.close() }
    }

    // MARK: load shedding

    /// A config whose every request costs ~0.5 ms of route matching (2,000
    /// regex routes before the catch-all) saturates the reactor under wrk.
    /// With max_loop_lag 2ms, new connections are then refused fast with 503
    /// `overloaded`, while connections established before keep being served.
    func testSaturatedReactorShedsNewConnections() throws {
        let wrk = try Paths.require("wrk")
        var routes = ""
        for i in 0..<2000 {
            routes += "      - match: { path_regex: \"/r\(i)/[a-z]+[0-9]*x\" }\n        direct_response: { status: 200, body: \"r\" }\n"
        }
        let h = try startCustom(runtime: "  max_loop_lag: 2ms", http: "      header_timeout: 30s", routes: routes)
        let established = try holdConnections(h.listenPort, 10)
        let load = try ManagedProcess(name: "wrk", executable: wrk,
                                      arguments: ["-t1", "-c60", "-d8s", "http://127.0.0.1:\(h.listenPort)/expensive"],
                                      dir: h.dir)
        defer { load.stop() }
        OS.sleepMs(1500)
        var shed = 0, admitted = 0, slowestRefusal = 0.0
        var establishedOK = 0, establishedFailed = 0
        for round in 0..<30 {
            let t0 = OS.now()
            if let c = try? RawClient(port: h.listenPort, timeout: 3) {
                try? c.send("GET /direct HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                if let r = try? c.readResponse() {
                    if r.status == 503 && r.header("x-edge-error") == "overloaded" {
                        shed += 1
                        slowestRefusal = max(slowestRefusal, OS.now() - t0)
                    } else if r.status == 200 { admitted += 1 }
                }
            }
            let c = established[round % established.count]
            if let r = try? HTTP.request(c, "/direct", port: h.listenPort), r.status == 200 { establishedOK += 1 } else { establishedFailed += 1 }
            OS.sleepMs(100)
        }
        let lag = (try? metric(h, "edge_loop_lag_microseconds")) ?? -1
        XCTAssertGreaterThan(shed, 0, "new connections must be shed while the reactor lags (admitted \(admitted)); lag gauge \(lag) µs")
        XCTAssertLessThan(slowestRefusal, 0.5, "a shed connection must be refused fast; slowest took \(slowestRefusal)s")
        XCTAssertEqual(establishedFailed, 0, "established connections must keep being served (ok \(establishedOK))")
        XCTAssertGreaterThan(try metric(h, "edge_connections_refused_total{worker=\"0\",reason=\"overloaded\"}"), 0)
        _ = load.wait(timeout: 15)
        // Once the load is gone, new connections are admitted again.
        OS.sleepMs(500)
        XCTAssertEqual(try HTTP.get(port: h.listenPort, "/direct").status, 200)
        established.forEach { $0.close() }
    }
}
