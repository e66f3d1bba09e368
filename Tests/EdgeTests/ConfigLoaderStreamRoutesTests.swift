import XCTest
@testable import Edge

/// `protocol: tcp` SNI routes and relay settings: what loads, what compiles,
/// and the `file:line: field: problem` errors.
final class ConfigLoaderStreamRoutesTests: XCTestCase {
    static let base = """
    listeners:
      - name: tls
        address: "127.0.0.1:8443"
        protocol: tcp
        routes:
          - { match: { sni: "db.example.com" }, cluster: db }
          - { match: { sni: "*.example.com" }, cluster: web }
        cluster: web
    clusters:
      - { name: db, endpoints: ["127.0.0.1:5432"] }
      - { name: web, endpoints: ["127.0.0.1:9000"] }
    """

    func testSNIRoutesLoadAndCompile() throws {
        let c = try ConfigLoader.parse(yaml: Self.base + "\n", file: "edge.yaml")
        let l = c.listeners[0]
        XCTAssertTrue(l.routesBySNI)
        XCTAssertEqual(l.streamCluster, "web")
        XCTAssertEqual(l.routes.map { $0.match.host }, ["db.example.com", "*.example.com", nil])
        XCTAssertEqual(l.relayMode, .auto)
        XCTAssertEqual(l.sniTimeoutMs, 5_000)
        let t = RouteTableCompiler.compile(c)
        XCTAssertTrue(t.listeners[0].isStream)
        XCTAssertTrue(t.listeners[0].relay.routesBySNI)
        XCTAssertEqual(t.listeners[0].streamCluster, 1)
        // Exact before wildcard, default last; no SNI → default only.
        func cluster(_ sni: String) -> Int32 {
            var bytes = Array(sni.utf8)
            return bytes.withUnsafeMutableBytes { host in
                var req = RequestView.stream(clientIP: UnsafeRawBufferPointer(start: nil, count: 0))
                req.host = UnsafeRawBufferPointer(host)
                let r = t.match(listener: 0, req, worker: 0)
                return r >= 0 ? t.routes[r].cluster : -1
            }
        }
        XCTAssertEqual(cluster("db.example.com"), 0)
        XCTAssertEqual(cluster("DB.Example.COM"), 0)
        XCTAssertEqual(cluster("x.example.com"), 1)
        XCTAssertEqual(cluster("example.com"), 1, "apex: not the wildcard, the default")
        XCTAssertEqual(cluster(""), 1)
    }

    func testNoDefaultCluster() throws {
        let yaml = Self.base.replacingOccurrences(of: "    cluster: web\n", with: "")
        let c = try ConfigLoader.parse(yaml: yaml, file: "edge.yaml")
        XCTAssertNil(c.listeners[0].streamCluster)
        let t = RouteTableCompiler.compile(c)
        XCTAssertEqual(t.listeners[0].streamCluster, -1)
        let r = t.match(listener: 0, RequestView.stream(clientIP: UnsafeRawBufferPointer(start: nil, count: 0)), worker: 0)
        XCTAssertEqual(r, -1, "no SNI and no default: no route")
    }

    func testRelaySettings() throws {
        let yaml = Self.base.replacingOccurrences(of: "    cluster: web\n", with: "    cluster: web\n    tcp: { relay: auto, splice_after: 256KiB, sni_timeout: 2s }\n")
        let c = try ConfigLoader.parse(yaml: yaml, file: "edge.yaml")
        XCTAssertEqual(c.listeners[0].spliceAfterBytes, 262_144)
        XCTAssertEqual(c.listeners[0].sniTimeoutMs, 2_000)
        let plain = try ConfigLoader.parse(yaml: """
        listeners:
          - { name: r, address: "127.0.0.1:6380", protocol: tcp, cluster: db, tcp: { relay: splice } }
        clusters:
          - { name: db, endpoints: ["127.0.0.1:6379"] }
        """, file: "edge.yaml")
        XCTAssertEqual(plain.listeners[0].relayMode, .splice)
        XCTAssertFalse(plain.listeners[0].routesBySNI)
        XCTAssertEqual(RouteTableCompiler.compile(plain).listeners[0].relay.mode, .splice)
    }

    static let errorCases: [(String, String, String)] = [
        ("sni on http", """
        listeners:
          - name: web
            address: "127.0.0.1:8080"
            routes: [ { match: { sni: a.example.com }, cluster: web } ]
        clusters:
          - { name: web, endpoints: ["127.0.0.1:9000"] }
        """, "edge.yaml:4: listeners[0].routes[0].match.sni: sni routes relay TLS untouched and apply to protocol tcp listeners; HTTP routes match on 'host'"),
        ("bad sni", base.replacingOccurrences(of: "\"*.example.com\"", with: "\"*.exa mple.com\""),
         "edge.yaml:7: listeners[0].routes[1].match.sni: '*.exa mple.com' is not a server name; use a host name like \"db.example.com\" or a wildcard like \"*.example.com\""),
        ("sni with port", base.replacingOccurrences(of: "\"db.example.com\"", with: "\"db.example.com:443\""),
         "edge.yaml:6: listeners[0].routes[0].match.sni: 'db.example.com:443' is not a server name; use a host name like \"db.example.com\" or a wildcard like \"*.example.com\""),
        ("duplicate sni", base.replacingOccurrences(of: "\"*.example.com\"", with: "\"DB.example.com\""),
         "edge.yaml:7: listeners[0].routes[1].match.sni: sni 'DB.example.com' is already routed at line 6"),
        ("unknown cluster", base.replacingOccurrences(of: "cluster: db }", with: "cluster: nope }"),
         "edge.yaml:6: listeners[0].routes[0].cluster: unknown cluster 'nope' (known: db, web)"),
        ("route without match", base.replacingOccurrences(of: "{ match: { sni: \"db.example.com\" }, cluster: db }", with: "{ cluster: db }"),
         "edge.yaml:6: listeners[0].routes[0]: a tcp route needs 'match: { sni: NAME }' (the listener's 'cluster' is the default)"),
        ("host on tcp", base.replacingOccurrences(of: "{ sni: \"db.example.com\" }", with: "{ host: \"db.example.com\" }"),
         "edge.yaml:6: listeners[0].routes[0].match.host: unknown field 'host', expected one of: sni"),
        ("splice_after without auto", base.replacingOccurrences(of: "    cluster: web\n", with: "    cluster: web\n    tcp: { relay: copy, splice_after: 64KiB }\n"),
         "edge.yaml:9: listeners[0].tcp.splice_after: splice_after applies to relay: auto only"),
        ("unknown relay", base.replacingOccurrences(of: "    cluster: web\n", with: "    cluster: web\n    tcp: { relay: zerocopy }\n"),
         "edge.yaml:9: listeners[0].tcp.relay: unknown relay 'zerocopy', expected one of: auto, copy, splice"),
        ("routes on udp", """
        listeners:
          - { name: u, address: "127.0.0.1:5353", protocol: udp, cluster: dns, routes: [] }
        clusters:
          - { name: dns, endpoints: ["127.0.0.1:53"] }
        """, "edge.yaml:2: listeners[0].routes: protocol udp listeners relay to one cluster; 'routes' are for http and tcp (sni)"),
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
