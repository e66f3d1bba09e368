import XCTest
import Protocols
@testable import Edge

/// The routing keys of the config: match conditions, split actions, rewrites,
/// header edits, balancing keys, host-name endpoints and `runtime.pid_file`.
/// One valid config read back field by field, then one case per error.
final class ConfigLoaderRoutingTests: XCTestCase {
    static let full = """
    runtime: { pid_file: /run/edge.pid }
    listeners:
      - name: web
        address: 127.0.0.1:8080
        routes:
          - match:
              host: "*.Example.com"
              path_regex: "/items/[0-9]+"
              methods: [GET]
              headers:
                - { name: X-Env, exact: canary }
                - { name: X-Debug, present: true }
                - { name: X-Id, regex: "^[0-9]+$" }
              query:
                - { name: v, exact: "2" }
                - { name: trace, present: false }
                - { name: page, regex: "[0-9]+" }
            clusters: [ { name: a, weight: 90 }, { name: b, weight: 10 } ]
            host_rewrite: internal.svc
            request_headers:
              add: { X-From: edge }
              set: { X-Env: prod }
              remove: [ Cookie ]
            response_headers: { remove: [ Server ] }
          - match: { host: "*", path_prefix: /api/ }
            cluster: a
            prefix_rewrite: /v2/
            timeout: 2s
          - match: { host: "Exact.Example.com.", path: /x }
            cluster: b
    clusters:
      - name: a
        endpoints: [ "127.0.0.1:9000" ]
        balance: consistent_hash
        hash_on: { cookie: session }
      - name: b
        endpoints: [ "127.0.0.1:9001" ]
        balance: consistent_hash
        dns_refresh: 10s
      - name: c
        endpoints: [ "127.0.0.1:9002" ]
        balance: consistent_hash
        hash_on: client_ip
      - name: d
        endpoints: [ "127.0.0.1:9003" ]
        balance: random_two
    """

    func testFullRoutingConfig() throws {
        let c = try ConfigLoader.parse(yaml: Self.full, file: "edge.yaml")
        XCTAssertEqual(c.runtime.pidFile, "/run/edge.pid")
        let r0 = c.listeners[0].routes[0]
        XCTAssertEqual(r0.match.host, "*.example.com")
        XCTAssertEqual(r0.match.pathRegex, "/items/[0-9]+")
        XCTAssertEqual(r0.match.headers.map(\.name), ["X-Env", "X-Debug", "X-Id"])
        guard case .exact("canary") = r0.match.headers[0].kind, case .present(true) = r0.match.headers[1].kind,
              case .regex("^[0-9]+$") = r0.match.headers[2].kind else { return XCTFail("header kinds") }
        XCTAssertEqual(r0.match.query.map(\.name), ["v", "trace", "page"])
        guard case .exact("2") = r0.match.query[0].kind, case .present(false) = r0.match.query[1].kind,
              case .regex("[0-9]+") = r0.match.query[2].kind else { return XCTFail("query kinds") }
        guard case .weighted(let arms) = r0.action else { return XCTFail("weighted action") }
        XCTAssertEqual(arms.map(\.name), ["a", "b"])
        XCTAssertEqual(arms.map(\.weight), [90, 10])
        XCTAssertEqual(r0.hostRewrite, "internal.svc")
        XCTAssertEqual(r0.requestHeaders.add.map { "\($0.0)=\($0.1)" }, ["X-From=edge"])
        XCTAssertEqual(r0.requestHeaders.set.map { "\($0.0)=\($0.1)" }, ["X-Env=prod"])
        XCTAssertEqual(r0.requestHeaders.remove, ["Cookie"])
        XCTAssertEqual(r0.responseHeaders.remove, ["Server"])
        let r1 = c.listeners[0].routes[1]
        XCTAssertNil(r1.match.host, "'*' means any host")
        XCTAssertEqual(r1.prefixRewrite, "/v2/")
        XCTAssertEqual(c.listeners[0].routes[2].match.host, "exact.example.com", "lower-cased, trailing dot dropped")
        XCTAssertEqual(c.clusters[0].hashOn, .cookie("session"))
        XCTAssertEqual(c.clusters[1].hashOn, .clientIP)
        XCTAssertEqual(c.clusters[1].dnsRefreshMs, 10_000)
        XCTAssertEqual(c.clusters[0].dnsRefreshMs, 30_000)
        XCTAssertEqual(c.clusters[2].hashOn, .clientIP)
        XCTAssertEqual(c.clusters[3].balance, .randomTwo)
        XCTAssertNil(c.clusters[0].endpoints[0].hostName)

        // And it compiles and routes.
        let t = RouteTableCompiler.compile(c)
        XCTAssertEqual(t.match(TestRequest(host: "Exact.example.com", path: "/x")), 2)
        XCTAssertEqual(t.match(TestRequest(host: "exact.example.com", path: "/api/x")), 1)
        let canary = TestRequest(host: "a.example.com", path: "/items/7", query: "page=3&v=2",
                                 headers: [("X-Env", "canary"), ("X-Debug", "1"), ("X-Id", "12")])
        XCTAssertEqual(t.match(canary), 0)
        var traced = canary
        traced.query += "&trace=1"
        XCTAssertEqual(t.match(traced), -1)
    }

    func testHostNameEndpoints() throws {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count)
        let host = String(cString: name)
        guard ConfigValues.isHostName(host), (try? ConfigValues.endpointAddress("\(host):9000")) != nil else {
            throw XCTSkip("this machine's host name '\(host)' does not resolve")
        }
        let c = try ConfigLoader.parse(yaml: ConfigLoaderTests.base.replacingOccurrences(of: "\"127.0.0.1:9000\"", with: "\"\(host):9000\""), file: "edge.yaml")
        let e = c.clusters[0].endpoints[0]
        XCTAssertEqual(e.hostName, host)
        XCTAssertEqual(e.address.text, "\(host):9000")
        XCTAssertEqual(e.address.port, 9000)
        XCTAssertTrue(e.address.family == AF_INET || e.address.family == AF_INET6)
        let local = try ConfigValues.endpointAddress("localhost:9000")
        XCTAssertNil(local.hostName, "localhost is fixed to 127.0.0.1, never re-resolved")
        XCTAssertEqual(local.0.canonicalKey, "127.0.0.1:9000")
    }

    func testUnresolvableHostNameIsKeptWithAWarning() throws {
        // RFC 6761: .invalid never resolves. The reason text comes from gai_strerror.
        let yaml = ConfigLoaderTests.base.replacingOccurrences(of: "\"127.0.0.1:9000\"", with: "\"db.edge-test.invalid:5432\"")
        let c = try ConfigLoader.parse(yaml: yaml, file: "edge.yaml")
        let e = c.clusters[0].endpoints[0]
        XCTAssertEqual(e.hostName, "db.edge-test.invalid")
        XCTAssertEqual(e.address.family, AF_UNSPEC)
        XCTAssertEqual(e.address.port, 5432)
        XCTAssertTrue(e.resolveFailure?.hasPrefix("cannot resolve host 'db.edge-test.invalid': ") == true, "\(e.resolveFailure ?? "nil")")
        XCTAssertEqual(c.warnings.count, 1)
        XCTAssertTrue(c.warnings[0].hasPrefix("edge.yaml:8: clusters[0].endpoints[0]: cannot resolve host 'db.edge-test.invalid': "), c.warnings[0])
        XCTAssertThrowsError(try ConfigValues.endpointAddress("db.edge-test.invalid:5432"))
    }

    static let base = ConfigLoaderTests.base
    /// Replaces the route line (line 5) with `route` (which may span lines).
    static func route(_ route: String) -> String {
        base.replacingOccurrences(of: "      - cluster: api", with: route)
    }
    static func cluster(_ extra: String) -> String { base + "\n" + extra }

    static let errorCases: [(String, String, String)] = [
        ("bad path_regex", route("      - { match: { path_regex: \"/a(b\" }, cluster: api }"),
         "edge.yaml:5: listeners[0].routes[0].match.path_regex: invalid regex '/a(b': missing closing parenthesis at offset 4"),
        ("path and path_regex", route("      - { match: { path: /a, path_regex: \"/b\" }, cluster: api }"),
         "edge.yaml:5: listeners[0].routes[0].match.path_regex: give only one of 'path', 'path_prefix' or 'path_regex'; 'path' is already given"),
        ("wildcard in the middle", route("      - { match: { host: \"a.*.com\" }, cluster: api }"),
         "edge.yaml:5: listeners[0].routes[0].match.host: a wildcard host must be a leading '*.' followed by a domain (e.g. '*.example.com'), or '*' for any host; got 'a.*.com'"),
        ("wildcard without domain", route("      - { match: { host: \"*.\" }, cluster: api }"),
         "edge.yaml:5: listeners[0].routes[0].match.host: '*.' is not a valid host name"),
        ("header condition without test", route("      - { match: { headers: [ { name: X-A } ] }, cluster: api }"),
         "edge.yaml:5: listeners[0].routes[0].match.headers[0]: a header condition needs one of 'exact', 'present' or 'regex'"),
        ("header condition with two tests", route("      - { match: { headers: [ { name: X-A, exact: a, regex: b } ] }, cluster: api }"),
         "edge.yaml:5: listeners[0].routes[0].match.headers[0].regex: a header condition takes only one of 'exact', 'present' or 'regex'; 'exact' is already given"),
        ("bad header name", route("      - { match: { headers: [ { name: \"X A\", present: true } ] }, cluster: api }"),
         "edge.yaml:5: listeners[0].routes[0].match.headers[0].name: 'X A' is not a valid header name"),
        ("bad header regex", route("      - { match: { headers: [ { name: X-Id, regex: \"[0-9\" } ] }, cluster: api }"),
         "edge.yaml:5: listeners[0].routes[0].match.headers[0].regex: invalid regex '[0-9': missing terminating ] for character class at offset 4"),
        ("present not a bool", route("      - { match: { headers: [ { name: X-A, present: yes } ] }, cluster: api }"),
         "edge.yaml:5: listeners[0].routes[0].match.headers[0].present: expected true or false, got 'yes'"),
        ("empty headers", route("      - { match: { headers: [] }, cluster: api }"),
         "edge.yaml:5: listeners[0].routes[0].match.headers: must not be empty (leave it out for no header conditions)"),
        ("unknown header condition key", route("      - { match: { headers: [ { name: X-A, prefix: a } ] }, cluster: api }"),
         "edge.yaml:5: listeners[0].routes[0].match.headers[0].prefix: unknown field 'prefix', expected one of: name, exact, present, regex"),
        ("bad query name", route("      - { match: { query: [ { name: \"a=b\", present: true } ] }, cluster: api }"),
         "edge.yaml:5: listeners[0].routes[0].match.query[0].name: 'a=b' is not a valid query parameter name (no spaces, '&', '=' or '#'; compared raw, not percent-decoded)"),
        ("bad query regex", route("      - { match: { query: [ { name: q, regex: \"*\" } ] }, cluster: api }"),
         "edge.yaml:5: listeners[0].routes[0].match.query[0].regex: invalid regex '*': quantifier does not follow a repeatable item at offset 0"),
        ("split to unknown cluster", route("      - clusters: [ { name: api, weight: 90 }, { name: canary, weight: 10 } ]"),
         "edge.yaml:5: listeners[0].routes[0].clusters[1].name: unknown cluster 'canary' (known: api)"),
        ("split weight too big", route("      - clusters: [ { name: api, weight: 10001 } ]"),
         "edge.yaml:5: listeners[0].routes[0].clusters[0].weight: must be between 0 and 10000, got 10001"),
        ("split weights all zero", route("      - clusters: [ { name: api, weight: 0 } ]"),
         "edge.yaml:5: listeners[0].routes[0].clusters: the weights of a split must not all be 0"),
        ("split arm twice", route("      - clusters: [ { name: api, weight: 1 }, { name: api, weight: 2 } ]"),
         "edge.yaml:5: listeners[0].routes[0].clusters[1]: cluster 'api' appears twice in the split; give it one arm with the summed weight"),
        ("empty split", route("      - clusters: []"),
         "edge.yaml:5: listeners[0].routes[0].clusters: a weighted split needs at least one {name, weight}"),
        ("split without weight", route("      - clusters: [ { name: api } ]"),
         "edge.yaml:5: listeners[0].routes[0].clusters[0]: missing required field 'weight'"),
        ("cluster and clusters", route("      - { cluster: api, clusters: [ { name: api, weight: 1 } ] }"),
         "edge.yaml:5: listeners[0].routes[0].clusters: a route takes only one of 'cluster', 'clusters' or 'direct_response'; 'cluster' is already given"),
        ("prefix_rewrite without prefix", route("      - { cluster: api, prefix_rewrite: /v2/ }"),
         "edge.yaml:5: listeners[0].routes[0].prefix_rewrite: prefix_rewrite needs match.path_prefix"),
        ("prefix_rewrite and strip_prefix", route("      - { match: { path_prefix: /a/ }, cluster: api, strip_prefix: true, prefix_rewrite: /b/ }"),
         "edge.yaml:5: listeners[0].routes[0].prefix_rewrite: give either 'strip_prefix: true' or 'prefix_rewrite', not both (prefix_rewrite: \"/\" strips)"),
        ("prefix_rewrite not a path", route("      - { match: { path_prefix: /a/ }, cluster: api, prefix_rewrite: v2 }"),
         "edge.yaml:5: listeners[0].routes[0].prefix_rewrite: must start with '/', got 'v2'"),
        ("bad host_rewrite", route("      - { cluster: api, host_rewrite: \"a/b\" }"),
         "edge.yaml:5: listeners[0].routes[0].host_rewrite: 'a/b' is not a valid host (host or host:port, no spaces, '/', '*' or '@')"),
        ("hop-by-hop edit", route("      - { cluster: api, request_headers: { set: { Connection: close } } }"),
         "edge.yaml:5: listeners[0].routes[0].request_headers.set: header 'Connection' is hop-by-hop; Edge manages it per connection and it cannot be edited"),
        ("remove upgrade", route("      - { cluster: api, request_headers: { remove: [ upgrade ] } }"),
         "edge.yaml:5: listeners[0].routes[0].request_headers.remove[0]: header 'upgrade' is hop-by-hop; Edge manages it per connection and it cannot be edited"),
        ("framing edit", route("      - { cluster: api, response_headers: { add: { Transfer-Encoding: chunked } } }"),
         "edge.yaml:5: listeners[0].routes[0].response_headers.add: header 'Transfer-Encoding' frames the message; Edge sets it and it cannot be edited"),
        ("content-length edit", route("      - { cluster: api, request_headers: { add: [ { name: content-length, value: \"1\" } ] } }"),
         "edge.yaml:5: listeners[0].routes[0].request_headers.add[0].name: header 'content-length' frames the message; Edge sets it and it cannot be edited"),
        ("host edit", route("      - { cluster: api, request_headers: { set: { Host: x } } }"),
         "edge.yaml:5: listeners[0].routes[0].request_headers.set: header 'Host' cannot be edited here; use the route's 'host_rewrite'"),
        ("empty edits", route("      - { cluster: api, request_headers: {} }"),
         "edge.yaml:5: listeners[0].routes[0].request_headers: give at least one of: add, set, remove"),
        ("unknown edit op", route("      - { cluster: api, response_headers: { append: { a: b } } }"),
         "edge.yaml:5: listeners[0].routes[0].response_headers.append: unknown field 'append', expected one of: add, set, remove"),
        ("edit value with newline", route("      - { cluster: api, request_headers: { add: { X-A: \"a\\nb\" } } }"),
         "edge.yaml:5: listeners[0].routes[0].request_headers.add.X-A: header values must not contain CR, LF or NUL"),
        ("direct response with rewrite", route("      - { direct_response: { status: 200 }, host_rewrite: x }"),
         "edge.yaml:5: listeners[0].routes[0].host_rewrite: 'host_rewrite' changes the request sent upstream; a direct_response route sends none"),
        ("direct response with response edits", route("      - { direct_response: { status: 200 }, response_headers: { set: { a: b } } }"),
         "edge.yaml:5: listeners[0].routes[0].response_headers: a direct_response route sets its headers in direct_response.headers"),
        ("hash_on without consistent_hash", cluster("    hash_on: client_ip"),
         "edge.yaml:9: clusters[0].hash_on: hash_on needs 'balance: consistent_hash' (balance is round_robin)"),
        ("bad hash_on word", cluster("    balance: consistent_hash\n    hash_on: ip"),
         "edge.yaml:10: clusters[0].hash_on: unknown hash_on source (or {header: NAME} / {cookie: NAME}) 'ip', expected one of: client_ip"),
        ("hash_on two sources", cluster("    balance: consistent_hash\n    hash_on: { header: a, cookie: b }"),
         "edge.yaml:10: clusters[0].hash_on: give exactly one of {header: NAME} or {cookie: NAME}"),
        ("hash_on unknown source", cluster("    balance: consistent_hash\n    hash_on: { query: a }"),
         "edge.yaml:10: clusters[0].hash_on.query: unknown field 'query', expected one of: header, cookie"),
        ("hash_on bad header", cluster("    balance: consistent_hash\n    hash_on: { header: \"X A\" }"),
         "edge.yaml:10: clusters[0].hash_on.header: 'X A' is not a valid header name"),
        ("dns_refresh too short", cluster("    dns_refresh: 100ms"),
         "edge.yaml:9: clusters[0].dns_refresh: must be at least 1000ms, got '100ms'"),
        ("relative pid_file", "runtime: { pid_file: edge.pid }\n" + base,
         "edge.yaml:1: runtime.pid_file: must be an absolute file path like /run/edge.pid, got 'edge.pid'"),
        ("empty pid_file", "runtime: { pid_file: \"\" }\n" + base,
         "edge.yaml:1: runtime.pid_file: must not be empty"),
    ]

    func testErrors() {
        for (name, yaml, expected) in Self.errorCases {
            do {
                _ = try ConfigLoader.parse(yaml: yaml, file: "edge.yaml")
                XCTFail("\(name): expected an error, config was accepted")
            } catch {
                XCTAssertEqual(error.description, expected, name)
            }
        }
    }
}
