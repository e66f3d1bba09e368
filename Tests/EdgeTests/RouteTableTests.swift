import XCTest
import Protocols
@testable import Edge

/// A request as a test writes it; `RouteTable.match(_:_:)` builds the
/// `RequestView` the reactor would (head bytes + header ranges) and matches it
/// as worker 0.
struct TestRequest {
    var host = ""
    var path = "/"
    var query = ""
    var method: HTTPMethod = .get
    var headers: [(String, String)] = []
}

extension RouteTable {
    func match(_ r: TestRequest, listener: Int = 0, worker: Int = 0) -> Int {
        var head: [UInt8] = []
        var fields: [HeaderField] = []
        for (n, v) in r.headers {
            let nameOff = head.count
            head += Array(n.utf8) + Array(": ".utf8)
            let valueOff = head.count
            head += Array(v.utf8) + [13, 10]
            fields.append(HeaderField(name: ByteRange(offset: Int32(nameOff), length: Int32(n.utf8.count)),
                                      value: ByteRange(offset: Int32(valueOff), length: Int32(v.utf8.count)), kind: .other))
        }
        let host = Array(r.host.utf8), path = Array(r.path.utf8), query = Array(r.query.utf8), ip = Array("10.0.0.1".utf8)
        return host.withUnsafeBytes { h in path.withUnsafeBytes { p in query.withUnsafeBytes { q in
            head.withUnsafeBytes { hd in fields.withUnsafeBufferPointer { f in ip.withUnsafeBytes { c in
                self.match(listener: listener, RequestView(host: h, path: p, query: q, method: r.method, head: hd, headers: f, clientIP: c),
                           worker: worker)
            } } } } } }
    }
}

/// Route compilation as the reactor sees it: direct responses, clusters,
/// endpoints, splits, rewrites and edits in the flat arrays.
final class RouteTableTests: XCTestCase {
    static func table(_ yaml: String, generation: Int = 1) throws -> RouteTable {
        RouteTableCompiler.compile(try ConfigLoader.parse(yaml: yaml, file: "t.yaml"), generation: generation)
    }

    private func match(_ t: RouteTable, host: String, path: String, _ m: HTTPMethod = .get) -> Int {
        t.match(TestRequest(host: host, path: path, method: m))
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
        let t = try Self.table(yaml)
        XCTAssertEqual(match(t, host: "api.example.com", path: "/v1/users"), 0)
        XCTAssertEqual(match(t, host: "API.Example.COM", path: "/v1/users"), 0, "host is case-insensitive")
        XCTAssertEqual(match(t, host: "api.example.com.", path: "/v1/users"), 0, "FQDN trailing dot")
        XCTAssertEqual(match(t, host: "api.example.com", path: "/v1/users", .delete), 2, "method not in set falls through")
        XCTAssertEqual(match(t, host: "other.com", path: "/v1/users"), 2)
        XCTAssertEqual(match(t, host: "x", path: "/exact"), 1)
        XCTAssertEqual(match(t, host: "x", path: "/exactly"), 2, "exact path does not match a longer one")
        XCTAssertEqual(match(t, host: "", path: "/"), 2)
        XCTAssertEqual(match(t, host: "", path: "*"), -1, "path_prefix / needs a leading slash")
        XCTAssertEqual(t.match(listener: 7, RequestView(host: .init(start: nil, count: 0), path: .init(start: nil, count: 0),
                                                        query: .init(start: nil, count: 0), method: .get, head: .init(start: nil, count: 0),
                                                        headers: .init(start: nil, count: 0), clientIP: .init(start: nil, count: 0)), worker: 0),
                       -1, "unknown listener")
    }

    func testDirectResponseIsPrecompiled() throws {
        let t = try Self.table(yaml)
        let r = t.routes[1]
        XCTAssertEqual(r.cluster, -1)
        let head = String(decoding: r.directHead.buffer, as: UTF8.self)
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200 OK\r\n"), head)
        XCTAssertTrue(head.contains("Content-Length: 6\r\n"), head)
        XCTAssertEqual(String(decoding: r.directBody.buffer, as: UTF8.self), "exact\n")
    }

    func testWeightsExpandIntoRoundRobinSlots() throws {
        let t = try Self.table(yaml)
        let c = t.clusters[0]
        XCTAssertEqual(c.endpointCount, 2)
        XCTAssertEqual(c.slotCount, 4)
        XCTAssertEqual(t.endpoints[1].weight, 3)
        let slots = (0..<Int(c.slotCount)).map { t.endpointSlots[Int(c.firstSlot) + $0] }
        XCTAssertEqual(slots.filter { $0 == 1 }.count, 3)
        XCTAssertEqual(String(decoding: t.endpointKey(1).buffer, as: UTF8.self), "127.0.0.1:9001")
        XCTAssertEqual(t.endpointKey(99).count, 0)
        XCTAssertEqual(t.endpointKey(-1).count, 0)
    }

    func testActionsRewritesAndEdits() throws {
        let t = try Self.table("""
        listeners:
          - name: web
            address: 127.0.0.1:18081
            routes:
              - match: { path_prefix: /api/ }
                clusters: [ { name: a, weight: 90 }, { name: b, weight: 0 }, { name: c, weight: 10 } ]
                prefix_rewrite: /v2/
                host_rewrite: internal.svc:8080
                timeout: 3s
                request_headers: { add: { X-A: "1" }, set: { X-Env: prod }, remove: [ X-Debug ] }
                response_headers: { set: [ { name: Cache-Control, value: no-store } ] }
              - match: { path_prefix: /s/ }
                cluster: b
                strip_prefix: true
        clusters:
          - { name: a, endpoints: ["127.0.0.1:9000"] }
          - { name: b, endpoints: ["127.0.0.1:9001"] }
          - name: c
            endpoints: [ "127.0.0.1:9002", { address: "127.0.0.1:9003", weight: 2 } ]
            balance: consistent_hash
            hash_on: { header: X-User }
        """, generation: 7)
        XCTAssertEqual(t.generation, 7)
        let r = t.routes[0]
        XCTAssertEqual(r.cluster, -2)
        XCTAssertEqual(r.splitCount, 2, "zero-weight arm dropped")
        XCTAssertEqual(r.splitTotalWeight, 100)
        XCTAssertEqual(t.splits[Int(r.firstSplit)].cluster, 0)
        XCTAssertEqual(t.splits[Int(r.firstSplit)].cumulativeWeight, 90)
        XCTAssertEqual(t.splits[Int(r.firstSplit) + 1].cluster, 2)
        XCTAssertEqual(t.splits[Int(r.firstSplit) + 1].cumulativeWeight, 100)
        XCTAssertTrue(r.hasPrefixRewrite)
        XCTAssertEqual(String(decoding: r.prefixRewrite.buffer, as: UTF8.self), "/v2/")
        XCTAssertEqual(String(decoding: r.hostRewrite.buffer, as: UTF8.self), "internal.svc:8080")
        XCTAssertEqual(r.timeoutMs, 3000)
        let edits = (0..<Int(r.requestEditCount)).map { t.headerEdits[Int(r.firstRequestEdit) + $0] }
        XCTAssertEqual(edits.map(\.op), [.remove, .set, .add])
        XCTAssertEqual(edits.map { String(decoding: $0.name.buffer, as: UTF8.self) }, ["X-Debug", "X-Env", "X-A"])
        XCTAssertEqual(edits.map { String(decoding: $0.lowerName.buffer, as: UTF8.self) }, ["x-debug", "x-env", "x-a"])
        XCTAssertEqual(edits.map { String(decoding: $0.value.buffer, as: UTF8.self) }, ["", "prod", "1"])
        XCTAssertEqual(r.responseEditCount, 1)
        XCTAssertEqual(t.headerEdits[Int(r.firstResponseEdit)].op, .set)
        XCTAssertTrue(t.routes[1].stripPrefix)
        XCTAssertEqual(t.routes[1].cluster, 1)

        let c = t.clusters[2]
        XCTAssertEqual(c.balance, .consistentHash)
        XCTAssertEqual(c.hashSource, .header)
        XCTAssertEqual(String(decoding: c.hashName.buffer, as: UTF8.self), "x-user")
        XCTAssertGreaterThan(c.maglevSize, 2)
        let entries = (0..<Int(c.maglevSize)).map { t.maglev[Int(c.firstMaglev) + $0] }
        XCTAssertEqual(Set(entries), [0, 1], "Maglev entries are endpoint offsets in the cluster")
        XCTAssertEqual(t.clusters[0].maglevSize, 0)
    }

    /// Every buffer, arena chunk, regex and match-data block is freed with the
    /// table: recompiling a 1,000-route config (with regexes) many times must
    /// not grow RSS. Memory only, no timing.
    func testRecompileDoesNotLeak() throws {
        var y = "listeners:\n  - name: web\n    address: 127.0.0.1:18081\n    routes:\n"
        for i in 0..<1000 {
            switch i % 4 {
            case 0: y += "      - { match: { host: h\(i).example.com, path_prefix: /p\(i)/ }, cluster: api, request_headers: { set: { X-R: \"\(i)\" } } }\n"
            case 1: y += "      - { match: { host: \"*.w\(i).example.com\", path: /e\(i) }, clusters: [ { name: api, weight: 1 }, { name: ch, weight: 1 } ] }\n"
            case 2: y += "      - { match: { path_regex: \"/r\(i)/[0-9]+\", headers: [ { name: X-Id, regex: \"[a-z]+\(i)\" } ] }, cluster: api }\n"
            default: y += "      - { match: { path_prefix: /d\(i)/ }, direct_response: { status: 200, body: \"route \(i)\" } }\n"
            }
        }
        y += "clusters:\n  - { name: api, endpoints: [\"127.0.0.1:9000\"] }\n"
        y += "  - { name: ch, endpoints: [\"127.0.0.1:9001\", \"127.0.0.1:9002\"], balance: consistent_hash }\n"
        let config = try ConfigLoader.parse(yaml: y, file: "t.yaml")
        func rssKiB() -> Int {
            guard let f = fopen("/proc/self/statm", "r") else { return 0 }
            defer { fclose(f) }
            var size = 0, resident = 0
            guard withUnsafeMutablePointer(to: &size, { s in withUnsafeMutablePointer(to: &resident) { r in
                withVaList([s, r]) { vfscanf(f, "%ld %ld", $0) } } }) == 2 else { return 0 }
            return resident * Int(sysconf(Int32(_SC_PAGESIZE))) / 1024
        }
        func churn(_ n: Int) {
            for g in 0..<n {
                let t = RouteTableCompiler.compile(config, generation: g)
                XCTAssertEqual(t.match(TestRequest(path: "/r2/42", headers: [("X-Id", "ab2")])), 2)
            }
        }
        churn(10)
        let after10 = rssKiB()
        churn(150)
        let after160 = rssKiB()
        print("RouteTableTests: RSS after 10 compiles \(after10) KiB, after 160: \(after160) KiB")
        XCTAssertLessThan(Double(after160), Double(after10) * 1.05 + 1024, "RSS grew: \(after10) → \(after160) KiB")
    }
}
