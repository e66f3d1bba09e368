import Foundation
import Glibc
import XCTest

/// Health checks, outlier ejection, circuit breaking and retries against real
/// upstream.py processes that are killed and restarted.
final class ResilienceTests: XCTestCase {
    var fleet: Fleet!
    /// Upstreams this test restarted itself (stopped in tearDown).
    var restarted: [ManagedProcess] = []

    override func setUpWithError() throws {
        fleet = try Fleet()
    }

    override func tearDown() {
        if let f = fleet, testRun?.hasSucceeded == false { print("--- edge stderr ---\n\(f.edgeStderr.suffix(6000))") }
        fleet?.stop()
        restarted.forEach { $0.stop() }
    }

    private func metricsText() throws -> String {
        try HTTP.get(port: fleet.adminPort, "/metrics").text
    }

    /// Sum of the metric lines that start with `prefix`.
    private func metric(_ prefix: String) throws -> Int {
        var total = 0
        for line in try metricsText().split(separator: "\n") where line.hasPrefix(prefix) {
            if let v = line.split(separator: " ").last, let n = Int(v) { total += n }
        }
        return total
    }

    /// Waits (bounded) until `metric(prefix) == value`; returns whether it happened.
    private func waitMetric(_ prefix: String, _ value: Int, seconds: Double) -> Bool {
        let deadline = OS.now() + seconds
        while OS.now() < deadline {
            if (try? metric(prefix)) == value { return true }
            OS.sleepMs(50)
        }
        return false
    }

    private func restartUpstream(_ name: String) throws {
        let port = fleet.port(name)
        let py = try Paths.require("python3")
        let p = try ManagedProcess(name: "up-\(name)-2", executable: py,
                                   arguments: ["-u", Paths.upstreamScript, "serve", "--port", String(port), "--name", name], dir: fleet.dir)
        restarted.append(p)
        let deadline = OS.now() + 10
        while OS.now() < deadline {
            if Ports.connectErrno(port) == 0 { return }
            OS.sleepMs(30)
        }
        throw HarnessError("upstream \(name) did not restart: \(p.stderrText())")
    }

    private func pool(_ names: [String], extra: String, balance: String = "round_robin") -> String {
        let eps = names.map { "\"127.0.0.1:\(fleet.port($0))\"" }.joined(separator: ", ")
        return """
          - name: pool
            endpoints: [ \(eps) ]
            balance: \(balance)
        \(extra)
        """
    }

    private func startEdge(_ clusters: String) throws {
        try fleet.writeConfig(fleet.yaml(routes: """
              - match: { path_prefix: "/" }
                cluster: pool
        """, clusters: clusters))
        try fleet.startEdge()
    }

    /// wrk output: (requests, non-2xx/3xx responses, socket errors).
    private func parseWrk(_ out: String) -> (Int, Int, Int) {
        var requests = 0, bad = 0, errors = 0
        for line in out.split(separator: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.contains("requests in") { requests = Int(t.split(separator: " ").first ?? "") ?? 0 }
            if t.hasPrefix("Non-2xx or 3xx responses:") { bad = Int(t.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0 }
            if t.hasPrefix("Socket errors:") {
                for part in t.dropFirst("Socket errors:".count).split(separator: ",") {
                    errors += Int(part.split(separator: " ").last ?? "") ?? 0
                }
            }
        }
        return (requests, bad, errors)
    }

    /// An endpoint killed under wrk load is ejected / checked out; with retries
    /// on connect failures and resets the client sees at most a handful of
    /// errors (the bound asserted: ≤ 3 non-2xx, no socket errors); once it
    /// restarts the health check brings it back and it serves again. The retry
    /// budget is 100% so all 8 requests in flight on the killed endpoint may be
    /// retried at once (the default 20%, at least 3, would let 5 of them fail).
    func testKilledEndpointIsEjectedAndReturns() throws {
        let wrk = try Paths.require("wrk")
        for n in ["a", "b", "c"] { try fleet.startUpstream(n) }
        try startEdge(pool(["a", "b", "c"], extra: """
            health_check: { type: http, path: /status/200, interval: 200ms, timeout: 150ms, healthy_threshold: 2, unhealthy_threshold: 2 }
            outlier_detection: { consecutive_5xx: 3, consecutive_connect_failures: 1, base_ejection_time: 30s, max_ejection_percent: 50% }
            retry: { on: [connect-failure, reset], attempts: 3, backoff: 1ms..10ms, budget: 100% }
        """))
        let b = "cluster=\"pool\",endpoint=\"127.0.0.1:\(fleet.port("b"))\""
        XCTAssertTrue(waitMetric("edge_endpoint_healthy{\(b)}", 1, seconds: 3))
        let load = try ManagedProcess(name: "wrk", executable: wrk,
                                      arguments: ["-t1", "-c8", "-d10s", "http://127.0.0.1:\(fleet.listenPort)/echo"], dir: fleet.dir)
        defer { load.stop() }
        OS.sleepMs(2000)
        fleet.upstreams["b"]?.process.stop()   // SIGKILL mid-load
        XCTAssertTrue(waitMetric("edge_endpoint_healthy{\(b)}", 0, seconds: 3), "b must fail its health checks")
        XCTAssertGreaterThan(try metric("edge_endpoint_ejections_total{\(b)}"), 0, "b must have been ejected by outlier detection")
        OS.sleepMs(2000)
        try restartUpstream("b")
        XCTAssertTrue(waitMetric("edge_endpoint_healthy{\(b)}", 1, seconds: 4), "b must pass its checks again after restarting")
        XCTAssertEqual(try metric("edge_endpoint_ejected{\(b)}"), 0, "passing checks end the ejection")
        XCTAssertNotNil(load.wait(timeout: 20), "wrk must finish")
        let (requests, bad, errors) = parseWrk(load.stdoutText())
        print("killed endpoint under load: \(requests) requests, \(bad) non-2xx, \(errors) socket errors, retries \(try metric("edge_upstream_retries_total"))")
        XCTAssertGreaterThan(requests, 100, "wrk output: \(load.stdoutText())")
        XCTAssertLessThanOrEqual(bad, 3, "client-visible 5xx after the endpoint died")
        XCTAssertEqual(errors, 0, "wrk output: \(load.stdoutText())")
        // Back in rotation: it serves its share again.
        let counts = try fleet.countUpstreams("/echo", n: 30)
        XCTAssertGreaterThan(counts["b"] ?? 0, 5, "b must serve again after it recovered: \(counts)")
    }

    /// Without active checks, an endpoint that refuses connections is ejected
    /// by outlier detection alone and then skipped by every balancing policy.
    func testOutlierEjectionSkipsDeadEndpointForEveryPolicy() throws {
        for policy in ["round_robin", "weighted_round_robin", "least_connections", "random_two", "consistent_hash", "least_latency"] {
            fleet?.stop()
            fleet = try Fleet()
            for n in ["a", "b"] { try fleet.startUpstream(n) }
            let dead = try Ports.free()
            let eps = "\"127.0.0.1:\(fleet.port("a"))\", \"127.0.0.1:\(fleet.port("b"))\", \"127.0.0.1:\(dead)\""
            try startEdge("""
              - name: pool
                endpoints: [ \(eps) ]
                balance: \(policy)
            \(policy == "consistent_hash" ? "    hash_on: { header: X-K }" : "")
                outlier_detection: { consecutive_connect_failures: 1, base_ejection_time: 60s, max_ejection_percent: 50% }
            """)
            // Provoke the connect failure that ejects it (one 502 at most per key/cycle).
            var failures = 0
            for k in 0..<30 {
                let r = try HTTP.get(port: fleet.listenPort, "/echo", headers: ["X-K: \(k)"])
                if r.status != 200 { failures += 1 }
            }
            XCTAssertTrue(waitMetric("edge_endpoint_ejected{cluster=\"pool\",endpoint=\"127.0.0.1:\(dead)\"}", 1, seconds: 3), policy)
            let counts = try fleet.countUpstreams("/echo", n: 60)
            XCTAssertEqual(counts.values.reduce(0, +), 60, "\(policy): every request must be served once the dead one is ejected: \(counts)")
            XCTAssertGreaterThan(failures, 0, "\(policy): the dead endpoint should have been tried at least once")
        }
    }

    /// max_requests 2: two slow requests fill the cluster, a third is answered
    /// 503 circuit_open at once, and the two in flight still finish with 200.
    func testCircuitBreakerAnswers503WhileInFlightFinish() throws {
        try fleet.startUpstream("a")
        try startEdge(pool(["a"], extra: "    circuit_breakers: { max_requests: 2, max_connections: 10 }"))
        let slow = try (0..<2).map { _ in try RawClient(port: fleet.listenPort, timeout: 10) }
        defer { slow.forEach { $0.close() } }
        for c in slow { try c.send("GET /slow?ms=2000 HTTP/1.1\r\nHost: x\r\n\r\n") }
        OS.sleepMs(400)
        let t0 = OS.now()
        let over = try HTTP.get(port: fleet.listenPort, "/echo")
        let took = OS.now() - t0
        XCTAssertEqual(over.status, 503)
        XCTAssertEqual(over.header("x-edge-error"), "circuit_open")
        XCTAssertLessThan(took, 1.5, "refused while the slow requests still run (not queued behind them)")
        for c in slow { XCTAssertEqual(try c.readResponse().status, 200) }
        XCTAssertGreaterThanOrEqual(try metric("edge_circuit_open_total"), 1)
        // Capacity is back once they finished.
        XCTAssertEqual(try HTTP.get(port: fleet.listenPort, "/echo").status, 200)
    }

    /// max_connections 1 with the only connection busy: a concurrent request
    /// cannot open a second one and gets 503 circuit_open.
    func testCircuitBreakerMaxConnections() throws {
        try fleet.startUpstream("a")
        try startEdge(pool(["a"], extra: "    circuit_breakers: { max_connections: 1 }"))
        let slow = try RawClient(port: fleet.listenPort, timeout: 10)
        defer { slow.close() }
        try slow.send("GET /slow?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n")
        OS.sleepMs(400)
        let over = try HTTP.get(port: fleet.listenPort, "/echo")
        XCTAssertEqual(over.status, 503)
        XCTAssertEqual(over.header("x-edge-error"), "circuit_open")
        XCTAssertEqual(try slow.readResponse().status, 200)
        // The connection went back to the pool: the next request reuses it.
        XCTAssertEqual(try HTTP.get(port: fleet.listenPort, "/echo").status, 200)
    }

    /// A refused connect is retried on the other endpoint: every response is
    /// 200 from "a", and the ones that first tried the dead endpoint say
    /// `x-edge-attempts: 2`.
    func testRetriesLandOnAnotherEndpoint() throws {
        try fleet.startUpstream("a")
        let dead = try Ports.free()
        try startEdge("""
          - name: pool
            endpoints: [ "127.0.0.1:\(fleet.port("a"))", "127.0.0.1:\(dead)" ]
            retry: { on: [connect-failure], attempts: 2, backoff: 1ms..5ms }
        """)
        var retried = 0
        for _ in 0..<20 {
            let r = try HTTP.get(port: fleet.listenPort, "/echo")
            XCTAssertEqual(r.status, 200, r.summary)
            XCTAssertEqual(r.header("X-Upstream-Name"), "a")
            if r.header("x-edge-attempts") == "2" { retried += 1 }
        }
        XCTAssertGreaterThanOrEqual(retried, 5, "round robin sends about half of the first attempts to the dead endpoint")
        XCTAssertEqual(try metric("edge_upstream_retries_total"), retried)
    }

    /// A 503 from the upstream is retried when asked (`on: [503]`); with both
    /// endpoints answering 503 the attempts run out and the client gets the
    /// last 503 with `x-edge-attempts: 3`. A POST with a body is not retried.
    func testRetryOnStatusAndAttemptsExhausted() throws {
        for n in ["a", "b"] { try fleet.startUpstream(n) }
        try startEdge(pool(["a", "b"], extra: "    retry: { on: [503], attempts: 3, backoff: 1ms..5ms }"))
        let r = try HTTP.get(port: fleet.listenPort, "/status/503")
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.header("x-edge-attempts"), "3")
        XCTAssertEqual(try metric("edge_upstream_retries_total"), 2)
        let c = try RawClient(port: fleet.listenPort, timeout: 10)
        defer { c.close() }
        try c.send("POST /status/503 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        let p = try c.readResponse()
        XCTAssertEqual(p.status, 503)
        XCTAssertNil(p.header("x-edge-attempts"), "a request with a body is not retried")
    }

    private func startTool(_ name: String, _ args: [String]) throws -> ManagedProcess {
        let py = try Paths.require("python3")
        let p = try ManagedProcess(name: name, executable: py, arguments: ["-u", Paths.l4tools] + args, dir: fleet.dir)
        restarted.append(p)
        return p
    }

    /// TCP connect checks and UDP send/expect checks mark a stopped endpoint
    /// unhealthy and a restarted one healthy again; traffic avoids it meanwhile.
    func testTCPAndUDPHealthChecks() throws {
        for n in ["a", "b"] { try fleet.startUpstream(n) }
        let udpPort = try Ports.free()
        let echo = try startTool("udp-echo", ["udp-echo", "--port", String(udpPort)])
        OS.sleepMs(300)
        try startEdge(pool(["a", "b"], extra: "    health_check: { type: tcp, interval: 100ms, timeout: 80ms, healthy_threshold: 1, unhealthy_threshold: 1 }") + """

          - name: dns
            endpoints: [ "127.0.0.1:\(udpPort)" ]
            health_check: { type: udp, send: ping, expect: ping, interval: 100ms, timeout: 80ms, healthy_threshold: 1, unhealthy_threshold: 2 }
        """)
        let b = "edge_endpoint_healthy{cluster=\"pool\",endpoint=\"127.0.0.1:\(fleet.port("b"))\"}"
        let u = "edge_endpoint_healthy{cluster=\"dns\",endpoint=\"127.0.0.1:\(udpPort)\"}"
        XCTAssertTrue(waitMetric(b, 1, seconds: 3))
        XCTAssertTrue(waitMetric(u, 1, seconds: 3))
        let udpOK = "edge_health_checks_total{cluster=\"dns\",endpoint=\"127.0.0.1:\(udpPort)\",result=\"ok\"}"
        let deadline = OS.now() + 5
        while OS.now() < deadline, (try? metric(udpOK)) ?? 0 == 0 { OS.sleepMs(50) }
        XCTAssertGreaterThan(try metric(udpOK), 0, "udp probes must get their echo")
        fleet.upstreams["b"]?.process.stop()
        echo.stop()
        XCTAssertTrue(waitMetric(b, 0, seconds: 3), "tcp check must notice b is gone")
        XCTAssertTrue(waitMetric(u, 0, seconds: 3), "udp check must notice the echo server is gone")
        let counts = try fleet.countUpstreams("/echo", n: 20)
        XCTAssertEqual(counts["a"], 20, "the unhealthy endpoint gets no traffic: \(counts)")
        try restartUpstream("b")
        _ = try startTool("udp-echo-2", ["udp-echo", "--port", String(udpPort)])
        XCTAssertTrue(waitMetric(b, 1, seconds: 3), "tcp check must bring b back")
        XCTAssertTrue(waitMetric(u, 1, seconds: 3), "udp check must bring the echo server back")
    }

    /// Ejection state is keyed by cluster + endpoint address, so a reload of
    /// the same config keeps the dead endpoint out (no new round of 502s).
    func testEjectionSurvivesReload() throws {
        try fleet.startUpstream("a")
        let dead = try Ports.free()
        let clusters = """
          - name: pool
            endpoints: [ "127.0.0.1:\(fleet.port("a"))", "127.0.0.1:\(dead)" ]
            outlier_detection: { consecutive_connect_failures: 1, base_ejection_time: 60s, max_ejection_percent: 50% }
        """
        try startEdge(clusters)
        for _ in 0..<4 { _ = try HTTP.get(port: fleet.listenPort, "/echo") }
        let ejected = "edge_endpoint_ejected{cluster=\"pool\",endpoint=\"127.0.0.1:\(dead)\"}"
        XCTAssertTrue(waitMetric(ejected, 1, seconds: 3))
        XCTAssertEqual(try fleet.reload().0, 200)
        XCTAssertEqual(try metric(ejected), 1, "still ejected after the reload")
        let counts = try fleet.countUpstreams("/echo", n: 20)
        XCTAssertEqual(counts["a"], 20, counts.description)
    }

    /// panic_threshold: with 2 of 3 endpoints failing checks (33% usable < 50%)
    /// health is ignored and all three get traffic again; with panic_threshold 0
    /// and every endpoint down the cluster answers 503 no_endpoint.
    func testPanicThreshold() throws {
        for n in ["a", "b", "c"] { try fleet.startUpstream(n) }
        // TCP checks; b and c are stopped below.
        try startEdge(pool(["a", "b", "c"], extra: """
            health_check: { type: tcp, interval: 100ms, timeout: 80ms, healthy_threshold: 1, unhealthy_threshold: 1 }
            panic_threshold: 50%
        """))
        fleet.upstreams["b"]?.process.stop()
        fleet.upstreams["c"]?.process.stop()
        XCTAssertTrue(waitMetric("edge_endpoint_healthy{cluster=\"pool\"", 1, seconds: 3), "only a stays healthy")
        // Panic: every endpoint is used, so about 2/3 of requests meet a dead one.
        var failed = 0, ok = 0
        for _ in 0..<30 {
            let r = try HTTP.get(port: fleet.listenPort, "/echo")
            if r.status == 200 { ok += 1 } else { failed += 1 }
        }
        XCTAssertGreaterThan(failed, 5, "in panic mode dead endpoints are used too (ok \(ok))")
        XCTAssertGreaterThan(ok, 5)
        // panic_threshold 0: all down -> 503 no_endpoint, never a dead one.
        fleet.upstreams["a"]?.process.stop()
        try fleet.writeConfig(fleet.yaml(routes: """
              - match: { path_prefix: "/" }
                cluster: pool
        """, clusters: pool(["a", "b", "c"], extra: """
            health_check: { type: tcp, interval: 100ms, timeout: 80ms, healthy_threshold: 1, unhealthy_threshold: 1 }
            panic_threshold: 0%
        """)))
        XCTAssertEqual(try fleet.reload().0, 200)
        XCTAssertTrue(waitMetric("edge_endpoint_healthy{cluster=\"pool\"", 0, seconds: 3))
        OS.sleepMs(100)
        let r = try HTTP.get(port: fleet.listenPort, "/echo")
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.header("x-edge-error"), "no_endpoint")
    }

    /// least_latency (peak EWMA, power of two choices): with "b" answering
    /// 60 ms slower than "a", almost all traffic goes to "a" (measured split;
    /// round robin would send half to b).
    func testLeastLatencyShiftsTrafficAwayFromSlowEndpoint() throws {
        try fleet.startUpstream("a")
        let slowPort = try Ports.free()
        let py = try Paths.require("python3")
        restarted.append(try ManagedProcess(name: "up-b-slow", executable: py,
            arguments: ["-u", Paths.upstreamScript, "serve", "--port", String(slowPort), "--name", "b", "--delay-ms", "60"], dir: fleet.dir))
        let deadline = OS.now() + 10
        while OS.now() < deadline && Ports.connectErrno(slowPort) != 0 { OS.sleepMs(30) }
        try startEdge("""
          - name: pool
            endpoints: [ "127.0.0.1:\(fleet.port("a"))", "127.0.0.1:\(slowPort)" ]
            balance: least_latency
        """)
        let counts = try fleet.countUpstreams("/echo", n: 200)
        print("least_latency split with b 60 ms slower: \(counts)")
        XCTAssertEqual(counts.values.reduce(0, +), 200)
        XCTAssertGreaterThan(counts["b"] ?? 0, 0, "the slow endpoint is measured at least once")
        XCTAssertLessThan(counts["b"] ?? 0, 20, "the slow endpoint must get well under its round-robin half: \(counts)")
    }

    /// `mirror: { cluster: shadow, percent: 100 }`: the shadow upstream gets a
    /// copy of every body-less request while clients get answers from "a";
    /// a POST with a body is not mirrored.
    func testMirroredUpstreamReceivesCopies() throws {
        try fleet.startUpstream("a")
        try fleet.startUpstream("shadow")
        try fleet.writeConfig(fleet.yaml(routes: """
              - match: { path_prefix: "/" }
                cluster: pool
                mirror: { cluster: shadow, percent: 100 }
        """, clusters: """
          - name: pool
            endpoints: [ "127.0.0.1:\(fleet.port("a"))" ]
          - name: shadow
            endpoints: [ "127.0.0.1:\(fleet.port("shadow"))" ]
        """))
        try fleet.startEdge()
        let counts = try fleet.countUpstreams("/echo", n: 30)
        XCTAssertEqual(counts["a"], 30, counts.description)
        let c = try RawClient(port: fleet.listenPort, timeout: 10)
        defer { c.close() }
        try c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        XCTAssertEqual(try c.readResponse().status, 200)
        var seen = -1
        let deadline = OS.now() + 5
        while OS.now() < deadline {
            let stats = try HTTP.get(port: fleet.port("shadow"), "/_stats").text
            if let j = try? JSONSerialization.jsonObject(with: Data(stats.utf8)) as? [String: Any], let n = j["requests"] as? Int {
                seen = n
                if n >= 30 { break }
            }
            OS.sleepMs(100)
        }
        XCTAssertEqual(seen, 30, "the shadow must get exactly the 30 body-less requests")
        XCTAssertEqual(try metric("edge_mirrored_requests_total"), 30)
    }
}
