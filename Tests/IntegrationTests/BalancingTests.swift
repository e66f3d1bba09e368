import Foundation
import Glibc
import XCTest

/// Balancing and weighted splits measured against real upstream processes.
final class BalancingTests: XCTestCase {
    var fleet: Fleet!

    override func setUpWithError() throws {
        fleet = try Fleet()
    }

    override func tearDown() {
        if let f = fleet, testRun?.hasSucceeded == false { print("--- edge stderr ---\n\(f.edgeStderr.suffix(4000))") }
        fleet?.stop()
    }

    private func start(_ names: [String], balance: String, weights: [Int]? = nil, extra: String = "") throws {
        for n in names { try fleet.startUpstream(n) }
        let eps = names.enumerated().map { i, n in
            "{ address: \"127.0.0.1:\(fleet.port(n))\", weight: \(weights?[i] ?? 1) }"
        }.joined(separator: ", ")
        try fleet.writeConfig(fleet.yaml(routes: """
              - match: { path_prefix: "/" }
                cluster: pool
        """, clusters: """
          - name: pool
            endpoints: [ \(eps) ]
            balance: \(balance)
        \(extra)
        """))
        try fleet.startEdge()
    }

    private func assertShares(_ counts: [String: Int], _ expected: [String: Double], tolerance: Double = 0.02,
                              file: StaticString = #filePath, line: UInt = #line) {
        let total = Double(counts.values.reduce(0, +))
        for (name, want) in expected {
            let got = Double(counts[name] ?? 0) / total
            XCTAssertEqual(got, want, accuracy: tolerance, "\(name): \(counts)", file: file, line: line)
        }
    }

    func testWeightedRoundRobinRespectsWeights() throws {
        try start(["a", "b", "c"], balance: "weighted_round_robin", weights: [1, 2, 3])
        let counts = try fleet.countUpstreams("/echo", n: 3000)
        print("weighted_round_robin 1:2:3 over 3000: \(counts)")
        assertShares(counts, ["a": 1.0 / 6, "b": 2.0 / 6, "c": 3.0 / 6])
    }

    func testRoundRobinRespectsWeights() throws {
        try start(["a", "b"], balance: "round_robin", weights: [1, 3])
        let counts = try fleet.countUpstreams("/echo", n: 2000)
        print("round_robin 1:3 over 2000: \(counts)")
        assertShares(counts, ["a": 0.25, "b": 0.75])
    }

    func testRandomTwoSpreadsByWeight() throws {
        try start(["a", "b"], balance: "random_two", weights: [1, 1])
        let counts = try fleet.countUpstreams("/echo", n: 4000)
        print("random_two 1:1 over 4000: \(counts)")
        assertShares(counts, ["a": 0.5, "b": 0.5], tolerance: 0.05)
    }

    /// least_connections sends new requests to the endpoint not busy with a slow one.
    func testLeastConnectionsPrefersIdleEndpoint() throws {
        try start(["a", "b"], balance: "least_connections")
        let slow = try RawClient(port: fleet.listenPort, timeout: 10)
        defer { slow.close() }
        try slow.send("GET /slow?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n")
        OS.sleepMs(300)
        let counts = try fleet.countUpstreams("/echo", n: 40)
        let r = try slow.readResponse()
        let busy = r.header("X-Upstream-Name") ?? "?"
        print("least_connections: slow request on \(busy), fast ones: \(counts)")
        XCTAssertEqual(counts[busy] ?? 0, 0, "requests went to the busy endpoint \(busy): \(counts)")
        XCTAssertEqual(counts.values.reduce(0, +), 40)
    }

    /// Same key → same endpoint; removing one of five endpoints moves about 1/5 of keys.
    func testConsistentHashStickyAndMinimalRemap() throws {
        let names = ["a", "b", "c", "d", "e"]
        try start(names, balance: "consistent_hash", extra: "    hash_on: { header: X-User }")
        var first: [Int: String] = [:]
        for round in 0..<2 {
            let c = try RawClient(port: fleet.listenPort, timeout: 10)
            defer { c.close() }
            for k in 0..<400 {
                let r = try HTTP.request(c, "/echo", port: fleet.listenPort, headers: ["X-User: user-\(k)"])
                let name = r.header("X-Upstream-Name") ?? "?"
                if round == 0 { first[k] = name } else { XCTAssertEqual(name, first[k], "key user-\(k) moved without a change") }
            }
        }
        let used = Set(first.values)
        XCTAssertEqual(used.count, 5, "keys should spread over all endpoints: \(used)")
        // Remove "c" and reload.
        let remaining = names.filter { $0 != "c" }
        let eps = remaining.map { "\"127.0.0.1:\(fleet.port($0))\"" }.joined(separator: ", ")
        try fleet.writeConfig(fleet.yaml(routes: """
              - match: { path_prefix: "/" }
                cluster: pool
        """, clusters: """
          - name: pool
            endpoints: [ \(eps) ]
            balance: consistent_hash
            hash_on: { header: X-User }
        """))
        XCTAssertEqual(try fleet.reload().0, 200)
        var moved = 0, movedFromOthers = 0
        let c = try RawClient(port: fleet.listenPort, timeout: 10)
        defer { c.close() }
        for k in 0..<400 {
            let name = try HTTP.request(c, "/echo", port: fleet.listenPort, headers: ["X-User: user-\(k)"]).header("X-Upstream-Name") ?? "?"
            if name != first[k] { moved += 1; if first[k] != "c" { movedFromOthers += 1 } }
        }
        print("consistent_hash: \(moved)/400 keys moved after removing 1 of 5 (\(movedFromOthers) not from the removed one)")
        XCTAssertLessThanOrEqual(Double(moved) / 400, 0.2 + 0.06)
        XCTAssertLessThanOrEqual(movedFromOthers, 20, "keys on surviving endpoints should mostly stay")
    }

    /// A 90/10 canary split over 10,000 requests lands within 2 percentage points.
    func testWeightedClusterSplit() throws {
        try fleet.startUpstream("stable")
        try fleet.startUpstream("canary")
        try fleet.writeConfig(fleet.yaml(routes: """
              - match: { path_prefix: "/" }
                clusters: [ { name: stable, weight: 90 }, { name: canary, weight: 10 } ]
        """, clusters: """
          - name: stable
            endpoints: [ "127.0.0.1:\(fleet.port("stable"))" ]
          - name: canary
            endpoints: [ "127.0.0.1:\(fleet.port("canary"))" ]
        """))
        try fleet.startEdge()
        let counts = try fleet.countUpstreams("/echo", n: 10_000)
        print("90/10 split over 10000: \(counts)")
        assertShares(counts, ["stable": 0.9, "canary": 0.1])
    }

    /// POST /drain: readiness turns 503 first, the in-flight request completes,
    /// new connections are refused, the process exits 0.
    func testAdminDrain() throws {
        try start(["a"], balance: "round_robin")
        let c = try RawClient(port: fleet.listenPort, timeout: 10)
        defer { c.close() }
        try c.send("GET /slow?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n")
        OS.sleepMs(200)
        XCTAssertEqual(try fleet.post("/drain").status, 202)
        let ready = try HTTP.get(port: fleet.adminPort, "/health/ready")
        XCTAssertEqual(ready.status, 503)
        OS.sleepMs(200)
        XCTAssertEqual(Ports.connectErrno(fleet.listenPort), ECONNREFUSED)
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.header("Connection")?.lowercased(), "close")
        XCTAssertEqual(fleet.edge?.wait(timeout: 10), 0)
    }
}
