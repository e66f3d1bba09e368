import XCTest
import Protocols
@testable import Edge

/// Route compilation and matching as the reactor sees it (file order, host
/// case-insensitive without port, path exact/prefix, method sets).
final class RouteTableTests: XCTestCase {
    private func table(_ yaml: String) throws -> RouteTable {
        RouteTableCompiler.compile(try ConfigLoader.parse(yaml: yaml, file: "t.yaml"))
    }

    private func match(_ t: RouteTable, host: String, path: String, _ m: HTTPMethod = .get) -> Int {
        let h = Array(host.utf8), p = Array(path.utf8)
        return h.withUnsafeBytes { hb in p.withUnsafeBytes { pb in t.match(listener: 0, host: hb, path: pb, method: m) } }
    }

    let yaml = """
    listeners:
      - name: web
        address: 127.0.0.1:18081
        routes:
          - match: { host: api.example.com, path_prefix: /v1/, methods: [GET, POST] }
            cluster: api
          - match: { path: /exact }
            direct_response: { status: 200, body: "exact\\n" }
          - match: { path_prefix: / }
            direct_response: { status: 404, body: "fallback\\n" }
    clusters:
      - name: api
        endpoints: [ "127.0.0.1:9000", { address: "127.0.0.1:9001", weight: 3 } ]
    """

    func testMatchingRules() throws {
        let t = try table(yaml)
        XCTAssertEqual(match(t, host: "api.example.com", path: "/v1/users"), 0)
        XCTAssertEqual(match(t, host: "API.Example.COM", path: "/v1/users"), 0, "host is case-insensitive")
        XCTAssertEqual(match(t, host: "api.example.com", path: "/v1/users", .delete), 2, "method not in set falls through")
        XCTAssertEqual(match(t, host: "other.com", path: "/v1/users"), 2)
        XCTAssertEqual(match(t, host: "x", path: "/exact"), 1)
        XCTAssertEqual(match(t, host: "x", path: "/exactly"), 2, "exact path does not match a longer one")
        XCTAssertEqual(match(t, host: "", path: "/"), 2)
    }

    func testDirectResponseIsPrecompiled() throws {
        let t = try table(yaml)
        let r = t.routes[1]
        XCTAssertEqual(r.cluster, -1)
        let head = String(decoding: r.directHead.buffer, as: UTF8.self)
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200 OK\r\n"), head)
        XCTAssertTrue(head.contains("Content-Length: 6\r\n"), head)
        XCTAssertEqual(String(decoding: r.directBody.buffer, as: UTF8.self), "exact\n")
    }

    func testWeightsExpandIntoRoundRobinSlots() throws {
        let t = try table(yaml)
        let c = t.clusters[0]
        XCTAssertEqual(c.endpointCount, 2)
        XCTAssertEqual(c.slotCount, 4)
        let slots = (0..<Int(c.slotCount)).map { t.endpointSlots[Int(c.firstSlot) + $0] }
        XCTAssertEqual(slots.filter { $0 == 1 }.count, 3)
    }
}
