import Atomics
import Glibc
import XCTest
import Protocols
@testable import Edge

/// Balancers skip endpoints whose health cell says unusable, for all five
/// policies; Maglev moves only the keys of the unusable endpoint; panic and
/// "none usable" modes; retries pick another endpoint.
final class HealthyPickTests: XCTestCase {
    /// Ports are unique per test so health cells (a process-wide registry keyed
    /// by cluster + address) do not leak between tests.
    private func table(_ name: String, _ balance: String, ports: [Int]) throws -> RouteTable {
        let eps = ports.map { "\"127.0.0.1:\($0)\"" }.joined(separator: ", ")
        let hash = balance == "consistent_hash" ? "\n    hash_on: { header: x-k }" : ""
        let yaml = """
        listeners:
          - name: web
            address: 127.0.0.1:18099
            routes:
              - match: { path_prefix: / }
                direct_response: { status: 200 }
        clusters:
          - name: \(name)
            balance: \(balance)
            endpoints: [ \(eps) ]
            outlier_detection: { consecutive_5xx: 3 }\(hash)
        """
        return RouteTableCompiler.compile(try ConfigLoader.parse(yaml: yaml, file: "health.yaml"))
    }

    private func set(_ cell: HealthCell, _ v: UInt32) { EndpointHealth.word(cell, EndpointHealth.stateWord).store(v, ordering: .relaxed) }

    private func picks(_ t: RouteTable, _ b: inout ReactorBalancer, n: Int, key: (Int) -> String) -> [Int32] {
        let a = [Int32](repeating: 0, count: t.endpoints.count)
        var out: [Int32] = []
        for i in 0..<n {
            let k = Array(key(i).utf8)
            let head = Array("x-k: ".utf8) + k + [13, 10]
            let f = HeaderField(name: ByteRange(offset: 0, length: 3), value: ByteRange(offset: 5, length: Int32(k.count)), kind: .other)
            let empty = UnsafeRawBufferPointer(start: nil, count: 0)
            let ip = Array("10.0.0.1".utf8)
            let e = head.withUnsafeBytes { hb in [f].withUnsafeBufferPointer { fb in ip.withUnsafeBytes { ib in a.withUnsafeBufferPointer { ap in
                var v = RequestView(host: empty, path: empty, query: empty, method: .get, head: hb, headers: fb, clientIP: ib)
                return withUnsafePointer(to: &v) { b.pick(cluster: 0, request: $0, active: ap.baseAddress!) }
            } } } }
            out.append(e)
        }
        return out
    }

    func testEveryPolicySkipsUnusableEndpoint() throws {
        for (i, policy) in ["round_robin", "weighted_round_robin", "least_connections", "random_two", "consistent_hash", "least_latency"].enumerated() {
            let base = 21_000 + i * 10
            let t = try table("skip-\(policy)", policy, ports: [base, base + 1, base + 2])
            var b = ReactorBalancer(table: t, seed: 3)
            defer { b.deallocate() }
            let before = picks(t, &b, n: 300, key: { "user-\($0)" })
            XCTAssertEqual(Set(before), [0, 1, 2], policy)
            set(t.endpointHealth[1], EndpointHealth.ejected)
            set(t.clusterHealth[0], EndpointHealth.ClusterMode.skipUnusable.rawValue)
            let after = picks(t, &b, n: 300, key: { "user-\($0)" })
            XCTAssertFalse(after.contains(1), "\(policy) picked the ejected endpoint")
            XCTAssertEqual(Set(after), [0, 2], policy)
            if policy == "consistent_hash" {
                for k in 0..<300 where before[k] != 1 {
                    XCTAssertEqual(after[k], before[k], "key user-\(k) moved although its endpoint is usable")
                }
            }
            // Panic: all are used again; none usable: no endpoint.
            set(t.clusterHealth[0], EndpointHealth.ClusterMode.panic.rawValue)
            XCTAssertTrue(picks(t, &b, n: 300, key: { "user-\($0)" }).contains(1), policy)
            set(t.clusterHealth[0], EndpointHealth.ClusterMode.noneUsable.rawValue)
            XCTAssertEqual(Set(picks(t, &b, n: 10, key: { "k\($0)" })), [-1], policy)
            set(t.endpointHealth[1], 0)
            set(t.clusterHealth[0], 0)
        }
    }

    func testRetryEndpointIsAnotherUsableOne() throws {
        let t = try table("retry", "round_robin", ports: [21_100, 21_101, 21_102])
        var b = ReactorBalancer(table: t, seed: 3)
        defer { b.deallocate() }
        XCTAssertEqual(b.retryEndpoint(cluster: 0, previous: 0), 1)
        XCTAssertEqual(b.retryEndpoint(cluster: 0, previous: 2), 0)
        set(t.endpointHealth[1], EndpointHealth.checkFailed)
        XCTAssertEqual(b.retryEndpoint(cluster: 0, previous: 0), 2)
        XCTAssertEqual(b.retryEndpoint(cluster: 9, previous: 0), -1)
        set(t.endpointHealth[1], 0)
    }

    func testStatusLineParsing() {
        XCTAssertEqual(HealthChecker.statusCode(Array("HTTP/1.1 204 No Content\r\n".utf8)), 204)
        XCTAssertNil(HealthChecker.statusCode(Array("HTTP/1.1 20".utf8)))
        XCTAssertNil(HealthChecker.statusCode(Array("SSH-2.0-OpenSSH_9\r\n".utf8)))
        XCTAssertEqual(HealthChecker.statusCode(Array("HTTP/1.1 2x4 Bad\r\n".utf8)), -1)
    }
}
