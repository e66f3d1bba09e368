import XCTest
import Protocols
@testable import Edge

/// The loader end to end: a full valid config, and one case per error class
/// with the exact `file:line: field: problem` a user would see.
final class ConfigLoaderTests: XCTestCase {
    static let full = """
    runtime:
      workers: auto
      drain_timeout: 15s
      log_format: json
      log_level: debug
      buffer_size: 32KiB
      buffer_count: 2048
      max_connections_per_worker: 1000
    admin:
      address: 127.0.0.1:9901
    listeners:
      - name: web
        address: 0.0.0.0:8080
        protocol: http
        http:
          max_request_line: 4KiB
          max_header_bytes: 16KiB
          max_headers: 50
          max_body: 1MiB
          header_timeout: 5s
          idle_timeout: 2m
          body_timeout: 250ms
        routes:
          - match: { host: "API.example.com", path_prefix: "/v1/", methods: [GET, post] }
            cluster: api
            strip_prefix: true
            timeout: 5s
          - match: { path: "/teapot" }
            direct_response:
              status: 418
              headers: { x-tea: earl-grey }
              body: "short and stout\\n"
          - match: { path_prefix: "/" }
            direct_response: { status: 200, headers: [ { name: x-a, value: "1" }, { name: x-a, value: "2" } ], body: "hello from edge\\n" }
      - name: v6
        address: "[::1]:8081"
        cluster: web
    clusters:
      - name: api
        endpoints: [ "127.0.0.1:9000", { address: "127.0.0.1:9001", weight: 3 } ]
        balance: weighted_round_robin
        connect_timeout: 1s
        max_idle: 8
        idle_timeout: 30s
      - name: web
        endpoints: [ "localhost:9002", "[::1]:9003" ]
    """

    func testFullConfig() throws {
        let c = try ConfigLoader.parse(yaml: Self.full, file: "edge.yaml")
        XCTAssertNil(c.runtime.workers)
        XCTAssertEqual(c.runtime.drainTimeoutMs, 15_000)
        XCTAssertEqual(c.runtime.logFormat, "json")
        XCTAssertEqual(c.runtime.logLevel, "debug")
        XCTAssertEqual(c.runtime.bufferSize, 32768)
        XCTAssertEqual(c.runtime.bufferCount, 2048)
        XCTAssertEqual(c.runtime.maxConnectionsPerWorker, 1000)
        XCTAssertEqual(c.admin.address?.text, "127.0.0.1:9901")
        XCTAssertEqual(c.admin.address?.port, 9901)

        XCTAssertEqual(c.listeners.count, 2)
        let web = c.listeners[0]
        XCTAssertEqual(web.name, "web")
        XCTAssertEqual(web.address.family, AF_INET)
        XCTAssertEqual(web.address.port, 8080)
        XCTAssertEqual(web.proto, .http)
        XCTAssertEqual(web.location.line, 12)
        XCTAssertEqual(web.http.limits.maxRequestLine, 4096)
        XCTAssertEqual(web.http.limits.maxHeaderBytes, 16384)
        XCTAssertEqual(web.http.limits.maxHeaderCount, 50)
        XCTAssertEqual(web.http.maxBodyBytes, 1 << 20)
        XCTAssertEqual(web.http.headerTimeoutMs, 5000)
        XCTAssertEqual(web.http.idleTimeoutMs, 120_000)
        XCTAssertEqual(web.http.bodyTimeoutMs, 250)

        XCTAssertEqual(web.routes.count, 3)
        let r0 = web.routes[0]
        XCTAssertEqual(r0.match.host, "api.example.com")
        XCTAssertEqual(r0.match.pathPrefix, "/v1/")
        XCTAssertEqual(r0.match.methods, ["GET", "POST"])
        XCTAssertTrue(r0.stripPrefix)
        XCTAssertEqual(r0.timeoutMs, 5000)
        XCTAssertEqual(r0.location.line, 24)
        guard case .cluster("api") = r0.action else { return XCTFail("route 0 should go to api") }

        let r1 = web.routes[1]
        XCTAssertEqual(r1.match.pathExact, "/teapot")
        guard case .direct(let d1) = r1.action else { return XCTFail("route 1 should be direct") }
        XCTAssertEqual(d1.status, 418)
        XCTAssertEqual(d1.headers.map(\.0), ["x-tea"])
        XCTAssertEqual(d1.headers.map(\.1), ["earl-grey"])
        XCTAssertEqual(d1.body, "short and stout\n")

        guard case .direct(let d2) = web.routes[2].action else { return XCTFail("route 2 should be direct") }
        XCTAssertEqual(d2.headers.map { "\($0.0)=\($0.1)" }, ["x-a=1", "x-a=2"])
        XCTAssertEqual(d2.body, "hello from edge\n")
        XCTAssertEqual(web.routes[2].timeoutMs, 30_000)

        let v6 = c.listeners[1]
        XCTAssertEqual(v6.address.family, AF_INET6)
        XCTAssertEqual(v6.address.port, 8081)
        XCTAssertEqual(v6.routes.count, 1)
        guard case .cluster("web") = v6.routes[0].action else { return XCTFail("listener cluster shorthand") }
        XCTAssertNil(v6.routes[0].match.pathPrefix)

        XCTAssertEqual(c.clusters.map(\.name), ["api", "web"])
        let api = c.clusters[0]
        XCTAssertEqual(api.balance, .weightedRoundRobin)
        XCTAssertEqual(api.endpoints.map(\.address.text), ["127.0.0.1:9000", "127.0.0.1:9001"])
        XCTAssertEqual(api.endpoints.map(\.weight), [1, 3])
        XCTAssertEqual(api.connectTimeoutMs, 1000)
        XCTAssertEqual(api.maxIdlePerEndpoint, 8)
        XCTAssertEqual(api.idleTimeoutMs, 30_000)
        let webCluster = c.clusters[1]
        XCTAssertEqual(webCluster.balance, .roundRobin)
        XCTAssertEqual(webCluster.endpoints[0].address.canonicalKey, "127.0.0.1:9002")
        XCTAssertEqual(webCluster.endpoints[1].address.family, AF_INET6)
        XCTAssertEqual(c.summary, "config OK: 2 listeners, 4 routes, 2 clusters")
    }

    func testDefaults() throws {
        let c = try ConfigLoader.parse(yaml: """
        listeners:
          - name: web
            address: 127.0.0.1:8080
            routes:
              - direct_response: { status: 204 }
        """, file: "edge.yaml")
        XCTAssertNil(c.runtime.workers)
        XCTAssertEqual(c.runtime.drainTimeoutMs, 30_000)
        XCTAssertEqual(c.runtime.logFormat, "text")
        XCTAssertEqual(c.admin.address?.text, "127.0.0.1:9901", "admin is on by default")
        XCTAssertEqual(c.listeners[0].proto, .http)
        XCTAssertEqual(c.listeners[0].http.limits, HTTP1Limits())
        XCTAssertEqual(c.clusters.count, 0)
    }

    func testAdminOffAndWorkers() throws {
        let c = try ConfigLoader.parse(yaml: """
        runtime: { workers: 3, drain_timeout: 0s }
        admin: { address: off }
        listeners:
          - { name: web, address: "[::]:8080", routes: [ { direct_response: { status: 200 } } ] }
        """, file: "edge.yaml")
        XCTAssertEqual(c.runtime.workers, 3)
        XCTAssertEqual(c.runtime.drainTimeoutMs, 0)
        XCTAssertNil(c.admin.address)
    }

    func testMaxBodyUnlimited() throws {
        let c = try ConfigLoader.parse(yaml: """
        listeners:
          - name: web
            address: 127.0.0.1:8080
            http: { max_body: unlimited }
            routes: [ { direct_response: { status: 200 } } ]
        """, file: "edge.yaml")
        XCTAssertEqual(c.listeners[0].http.maxBodyBytes, 0)
    }

    func testConnectionLimitsAndSheddingFields() throws {
        let defaults = try ConfigLoader.parse(yaml: Self.base, file: "edge.yaml")
        XCTAssertEqual(defaults.runtime.maxConnections, 0)
        XCTAssertEqual(defaults.runtime.maxLoopLagMs, 50)
        XCTAssertEqual(defaults.listeners[0].maxConnections, 0)
        XCTAssertEqual(defaults.listeners[0].maxConnectionsPerIP, 0)
        XCTAssertEqual(defaults.listeners[0].http.minBodyRate, 512)
        let c = try ConfigLoader.parse(yaml: """
        runtime: { max_connections: 5000, max_loop_lag: 20ms }
        listeners:
          - name: web
            address: 127.0.0.1:8080
            max_connections: 100
            max_connections_per_ip: 10
            http: { min_body_rate: 1KiB }
            routes: [ { direct_response: { status: 200 } } ]
          - name: off
            address: 127.0.0.1:8081
            http: { min_body_rate: off }
            routes: [ { direct_response: { status: 200 } } ]
        """, file: "edge.yaml")
        XCTAssertEqual(c.runtime.maxConnections, 5000)
        XCTAssertEqual(c.runtime.maxLoopLagMs, 20)
        XCTAssertEqual(c.listeners[0].maxConnections, 100)
        XCTAssertEqual(c.listeners[0].maxConnectionsPerIP, 10)
        XCTAssertEqual(c.listeners[0].http.minBodyRate, 1024)
        XCTAssertEqual(c.listeners[1].http.minBodyRate, 0)
        let noShedding = try ConfigLoader.parse(yaml: "runtime: { max_loop_lag: off }\n" + Self.base, file: "edge.yaml")
        XCTAssertEqual(noShedding.runtime.maxLoopLagMs, 0)
        XCTAssertEqual(defaults.runtime.trickleReadIntervalMs, 10)
        let unpaced = try ConfigLoader.parse(yaml: "runtime: { trickle_read_interval: off }\n" + Self.base, file: "edge.yaml")
        XCTAssertEqual(unpaced.runtime.trickleReadIntervalMs, 0)
        let paced = try ConfigLoader.parse(yaml: "runtime: { trickle_read_interval: 25ms }\n" + Self.base, file: "edge.yaml")
        XCTAssertEqual(paced.runtime.trickleReadIntervalMs, 25)
        XCTAssertThrowsError(try ConfigLoader.parse(yaml: "runtime: { trickle_read_interval: 5s }\n" + Self.base, file: "edge.yaml")) {
            XCTAssertEqual("\($0)", "edge.yaml:1: runtime.trickle_read_interval: at most 1s (reads of a trickling head wait this long), got 5000ms")
        }
        XCTAssertThrowsError(try ConfigLoader.parse(yaml: """
        listeners:
          - { name: dns, address: "127.0.0.1:5353", protocol: udp, cluster: api, max_connections_per_ip: 3 }
        clusters:
          - { name: api, endpoints: ["127.0.0.1:53"] }
        """, file: "edge.yaml")) {
            XCTAssertEqual("\($0)", "edge.yaml:2: listeners[0].max_connections_per_ip: max_connections_per_ip applies to tcp and http listeners")
        }
    }

    /// A small valid config that the error cases below edit one line of.
    static let base = """
    listeners:
      - name: web
        address: 127.0.0.1:8080
        routes:
          - cluster: api
    clusters:
      - name: api
        endpoints: ["127.0.0.1:9000"]
    """

    func testBaseIsValid() throws {
        XCTAssertEqual(try ConfigLoader.parse(yaml: Self.base, file: "edge.yaml").summary,
                       "config OK: 1 listener, 1 route, 1 cluster")
    }

    /// (description, yaml, expected error text)
    static let errorCases: [(String, String, String)] = [
        ("unknown root key", base + "\nlistener: []",
         "edge.yaml:9: listener: unknown field 'listener', expected one of: runtime, admin, listeners, clusters, access_log, metrics, tracing, consumers, policies, redis"),
        ("unknown cluster key (typo)", base.replacingOccurrences(of: "endpoints:", with: "endpoint:"),
         "edge.yaml:8: clusters[0].endpoint: unknown field 'endpoint', expected one of: name, endpoints, balance, hash_on, connect_timeout, max_idle, idle_timeout, dns_refresh, proxy_protocol, tls, protocol, allow_metadata_addresses, health_check, outlier_detection, panic_threshold, circuit_breakers, retry"),
        ("unknown route key", base.replacingOccurrences(of: "- cluster: api", with: "- cluster: api\n        timout: 5s"),
         "edge.yaml:6: listeners[0].routes[0].timout: unknown field 'timout', expected one of: match, cluster, clusters, direct_response, strip_prefix, prefix_rewrite, host_rewrite, request_headers, response_headers, timeout, mirror, cache, name, access_log, policies, compression"),
        ("duplicate key", base.replacingOccurrences(of: "- name: api", with: "- name: api\n    name: api2"),
         "edge.yaml:8: clusters[0].name: field 'name' is given twice"),
        ("unknown cluster", """
        listeners:
          - name: web
            address: 127.0.0.1:8080
            routes:
              - cluster: web
              - cluster: apii
        clusters:
          - { name: web, endpoints: ["127.0.0.1:9001"] }
          - { name: api, endpoints: ["127.0.0.1:9000"] }
        """, "edge.yaml:6: listeners[0].routes[1].cluster: unknown cluster 'apii' (known: api, web)"),
        ("unknown cluster, none defined", """
        listeners:
          - name: web
            address: 127.0.0.1:8080
            routes: [ { cluster: api } ]
        """, "edge.yaml:4: listeners[0].routes[0].cluster: unknown cluster 'api' (no clusters are defined)"),
        ("bad duration", base.replacingOccurrences(of: "- cluster: api", with: "- cluster: api\n        timeout: abc"),
         "edge.yaml:6: listeners[0].routes[0].timeout: expected a duration like 5s, got 'abc'"),
        ("duration without unit", base.replacingOccurrences(of: "- cluster: api", with: "- cluster: api\n        timeout: 30"),
         "edge.yaml:6: listeners[0].routes[0].timeout: duration needs a unit: ms, s, m, h (e.g. '30s'), got '30'"),
        ("zero timeout", base.replacingOccurrences(of: "- cluster: api", with: "- cluster: api\n        timeout: 0s"),
         "edge.yaml:6: listeners[0].routes[0].timeout: must be at least 1ms, got '0s'"),
        ("bad size unit", "runtime: { buffer_size: 16KB }\n" + base,
         "edge.yaml:1: runtime.buffer_size: expected a size like 64KiB (units: B, KiB, MiB, GiB; a bare number is bytes), got '16KB'"),
        ("size out of range", "runtime: { buffer_size: 2MiB }\n" + base,
         "edge.yaml:1: runtime.buffer_size: must be between 512B and 1MiB, got '2MiB'"),
        ("buffer_count not a power of two", "runtime: { buffer_count: 1000 }\n" + base,
         "edge.yaml:1: runtime.buffer_count: must be a power of two (io_uring buffer ring), got 1000"),
        ("workers word", "runtime: { workers: many }\n" + base,
         "edge.yaml:1: runtime.workers: expected 'auto' or a number of workers, got 'many'"),
        ("workers zero", "runtime: { workers: 0 }\n" + base,
         "edge.yaml:1: runtime.workers: must be between 1 and 1024, got 0"),
        ("log level", "runtime: { log_level: verbose }\n" + base,
         "edge.yaml:1: runtime.log_level: unknown log level 'verbose', expected one of: trace, debug, info, notice, warning, error, critical"),
        ("missing port", base.replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1"),
         "edge.yaml:3: listeners[0].address: missing port in '127.0.0.1'; expected host:port like 127.0.0.1:8080"),
        ("bad host name", base.replacingOccurrences(of: "127.0.0.1:9000", with: "back_end.local:9000"),
         "edge.yaml:8: clusters[0].endpoints[0]: 'back_end.local' is not a valid host name (letters, digits, '-' and '.'; labels of 1 to 63) in 'back_end.local:9000'"),
        ("listener host name", base.replacingOccurrences(of: "127.0.0.1:8080", with: "backend.local:8080"),
         "edge.yaml:3: listeners[0].address: host names are not supported yet; use an IP literal (got 'backend.local')"),
        ("listener port 0", base.replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:0"),
         "edge.yaml:3: listeners[0].address: port must be a number between 1 and 65535, got '0' in '127.0.0.1:0'"),
        ("port too big", base.replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:65536"),
         "edge.yaml:3: listeners[0].address: port must be a number between 1 and 65535, got '65536' in '127.0.0.1:65536'"),
        ("bad IPv4", base.replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.256:80"),
         "edge.yaml:3: listeners[0].address: invalid IPv4 address '127.0.0.256' in '127.0.0.256:80'"),
        ("IPv6 without brackets", base.replacingOccurrences(of: "127.0.0.1:8080", with: "\"::1:8080\""),
         "edge.yaml:3: listeners[0].address: IPv6 addresses need brackets, e.g. [::1]:8080, got '::1:8080'"),
        ("endpoint weight", base.replacingOccurrences(of: "[\"127.0.0.1:9000\"]", with: "[ { address: \"127.0.0.1:9000\", weight: 0 } ]"),
         "edge.yaml:8: clusters[0].endpoints[0].weight: must be between 1 and 10000, got 0"),
        ("duplicate listener name", base.replacingOccurrences(of: "clusters:", with: """
          - name: web
            address: 127.0.0.1:8081
            routes: [ { cluster: api } ]
        clusters:
        """), "edge.yaml:6: listeners[1]: duplicate listener name 'web' (first defined at line 2)"),
        ("duplicate listener address", base.replacingOccurrences(of: "clusters:", with: """
          - name: web2
            address: localhost:8080
            routes: [ { cluster: api } ]
        clusters:
        """), "edge.yaml:6: listeners[1]: listener 'web2' uses address localhost:8080, already used by listener 'web' (line 2)"),
        ("duplicate cluster name", base + "\n  - { name: api, endpoints: [\"127.0.0.1:9001\"] }",
         "edge.yaml:9: clusters[1]: duplicate cluster name 'api' (first defined at line 7)"),
        ("empty endpoints", base.replacingOccurrences(of: "[\"127.0.0.1:9000\"]", with: "[]"),
         "edge.yaml:8: clusters[0].endpoints: cluster 'api' has no endpoints; add at least one host:port"),
        ("missing endpoints", base.replacingOccurrences(of: "    endpoints: [\"127.0.0.1:9000\"]", with: ""),
         "edge.yaml:7: clusters[0]: missing required field 'endpoints'"),
        ("duplicate endpoint", base.replacingOccurrences(of: "[\"127.0.0.1:9000\"]", with: "[\"127.0.0.1:9000\", \"localhost:9000\"]"),
         "edge.yaml:8: clusters[0].endpoints[1]: duplicate endpoint localhost:9000 (same address as 127.0.0.1:9000)"),
        ("bad balance", base + "\n    balance: fastest",
         "edge.yaml:9: clusters[0].balance: unknown balance policy 'fastest', expected one of: round_robin, weighted_round_robin, least_connections, random_two, consistent_hash, least_latency"),
        ("cluster and direct_response", base.replacingOccurrences(of: "- cluster: api", with: "- cluster: api\n        direct_response: { status: 200 }"),
         "edge.yaml:6: listeners[0].routes[0].direct_response: a route takes only one of 'cluster', 'clusters' or 'direct_response'; 'cluster' is already given"),
        ("neither cluster nor direct_response", base.replacingOccurrences(of: "- cluster: api", with: "- match: { path: /x }"),
         "edge.yaml:5: listeners[0].routes[0]: a route needs one of 'cluster', 'clusters' (weighted split) or 'direct_response'"),
        ("tls listener without a tls block", base.replacingOccurrences(of: "    routes:", with: "    protocol: tls\n    routes:"),
         "edge.yaml:2: listeners[0]: protocol tls listeners need a 'tls' block with at least one certificate"),
        ("unknown protocol", base.replacingOccurrences(of: "    routes:", with: "    protocol: htp\n    routes:"),
         "edge.yaml:4: listeners[0].protocol: unknown protocol 'htp', expected one of: http, https, tcp, tls, udp, dtls"),
        ("bad status", base.replacingOccurrences(of: "- cluster: api", with: "- direct_response: { status: 700 }"),
         "edge.yaml:5: listeners[0].routes[0].direct_response.status: must be between 200 and 599, got 700"),
        ("informational status", base.replacingOccurrences(of: "- cluster: api", with: "- direct_response: { status: 101 }"),
         "edge.yaml:5: listeners[0].routes[0].direct_response.status: must be between 200 and 599, got 101"),
        ("status not a number", base.replacingOccurrences(of: "- cluster: api", with: "- direct_response: { status: ok }"),
         "edge.yaml:5: listeners[0].routes[0].direct_response.status: expected an integer, got 'ok'"),
        ("body on 204", base.replacingOccurrences(of: "- cluster: api", with: "- direct_response: { status: 204, body: x }"),
         "edge.yaml:5: listeners[0].routes[0].direct_response.status: status 204 must not have a body"),
        ("reserved header", base.replacingOccurrences(of: "- cluster: api", with: "- direct_response: { status: 200, headers: { Content-Length: 5 } }"),
         "edge.yaml:5: listeners[0].routes[0].direct_response.headers: header 'Content-Length' is set by Edge and cannot be configured"),
        ("bad method token", base.replacingOccurrences(of: "- cluster: api", with: "- cluster: api\n        match: { methods: [GET, \"PO ST\"] }"),
         "edge.yaml:6: listeners[0].routes[0].match.methods[1]: 'PO ST' is not an HTTP method token"),
        ("empty methods", base.replacingOccurrences(of: "- cluster: api", with: "- cluster: api\n        match: { methods: [] }"),
         "edge.yaml:6: listeners[0].routes[0].match.methods: methods must not be empty (leave it out to match any method)"),
        ("methods not a list", base.replacingOccurrences(of: "- cluster: api", with: "- cluster: api\n        match: { methods: GET }"),
         "edge.yaml:6: listeners[0].routes[0].match.methods: expected a list, got a scalar ('GET')"),
        ("path_prefix without slash", base.replacingOccurrences(of: "- cluster: api", with: "- cluster: api\n        match: { path_prefix: v1 }"),
         "edge.yaml:6: listeners[0].routes[0].match.path_prefix: must start with '/', got 'v1'"),
        ("path and path_prefix", base.replacingOccurrences(of: "- cluster: api", with: "- cluster: api\n        match: { path_prefix: /a, path: /b }"),
         "edge.yaml:6: listeners[0].routes[0].match.path: give only one of 'path', 'path_prefix' or 'path_regex'; 'path_prefix' is already given"),
        ("strip_prefix without prefix", base.replacingOccurrences(of: "- cluster: api", with: "- cluster: api\n        strip_prefix: true"),
         "edge.yaml:6: listeners[0].routes[0].strip_prefix: strip_prefix needs match.path_prefix"),
        ("strip_prefix not bool", base.replacingOccurrences(of: "- cluster: api", with: "- cluster: api\n        match: { path_prefix: /a }\n        strip_prefix: yes"),
         "edge.yaml:7: listeners[0].routes[0].strip_prefix: expected true or false, got 'yes'"),
        ("host with port", base.replacingOccurrences(of: "- cluster: api", with: "- cluster: api\n        match: { host: \"a.com:80\" }"),
         "edge.yaml:6: listeners[0].routes[0].match.host: host must not include a port (the port is ignored when matching), got 'a.com:80'"),
        ("listener without routes", base.replacingOccurrences(of: "    routes:\n      - cluster: api\n", with: ""),
         "edge.yaml:2: listeners[0]: listener 'web' has no routes; add 'routes' (or 'cluster' for a catch-all)"),
        ("listener with empty routes", base.replacingOccurrences(of: "    routes:\n      - cluster: api\n", with: "    routes: []\n"),
         "edge.yaml:4: listeners[0].routes: listener 'web' has no routes"),
        ("routes and cluster", base.replacingOccurrences(of: "    routes:", with: "    cluster: api\n    routes:"),
         "edge.yaml:5: listeners[0].routes: give either 'routes' or 'cluster' on a listener, not both"),
        ("block mapping error points at its key", base.replacingOccurrences(of: "- cluster: api", with: "- direct_response:\n          body: hi"),
         "edge.yaml:5: listeners[0].routes[0].direct_response: missing required field 'status'"),
        ("block list error points at its key", base.replacingOccurrences(of: "[\"127.0.0.1:9000\"]", with: "\n      - 127.0.0.1:9000\n      - 127.0.0.1:9000"),
         "edge.yaml:10: clusters[0].endpoints[1]: duplicate endpoint 127.0.0.1:9000"),
        ("routes wrong type", base.replacingOccurrences(of: "    routes:\n      - cluster: api\n", with: "    routes: api\n"),
         "edge.yaml:4: listeners[0].routes: expected a list, got a scalar ('api')"),
        ("listener not a mapping", "listeners: [ web ]",
         "edge.yaml:1: listeners[0]: expected a mapping with fields: name, address, protocol, routes, cluster, http, proxy_protocol, proxy_protocol_timeout, tcp, udp, max_connections, max_connections_per_ip, tls, policies, http2, http3"),
        ("missing name", base.replacingOccurrences(of: "  - name: web\n    address", with: "  - address"),
         "edge.yaml:2: listeners[0]: missing required field 'name'"),
        ("bad name", base.replacingOccurrences(of: "- name: web", with: "- name: \"my web\""),
         "edge.yaml:2: listeners[0].name: names may use letters, digits, '_', '-' and '.' (at most 64), got 'my web'"),
        ("no listeners", "clusters: []",
         "edge.yaml:1: config: missing required field 'listeners'"),
        ("empty file", "",
         "edge.yaml:1: listeners: the config is empty; at least one listener is required"),
        ("header limits", base.replacingOccurrences(of: "    routes:", with: "    http: { max_request_line: 64KiB }\n    routes:"),
         "edge.yaml:4: listeners[0].http.max_request_line: max_request_line (65536 bytes) must not exceed max_header_bytes (32768 bytes)"),
        ("admin collides with listener", "admin: { address: \"127.0.0.1:8080\" }\n" + base,
         "edge.yaml:1: admin.address: 127.0.0.1:8080 is also the address of listeners[0] 'web'"),
        ("admin port", "admin: { address: \"127.0.0.1:x\" }\n" + base,
         "edge.yaml:1: admin.address: port must be a number between 1 and 65535, got 'x' in '127.0.0.1:x'"),
        ("yaml syntax", "listeners:\n  - name: a\n   address: x\n",
         "edge.yaml:3: YAML syntax error: did not find expected '-' indicator while parsing a block collection"),
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

    /// `n` listeners on consecutive ports, all relaying to cluster `api`.
    static func manyListeners(_ n: Int) -> String {
        var y = "listeners:\n"
        for i in 0..<n { y += "  - { name: l\(i), address: \"127.0.0.1:\(20000 + i)\", cluster: api }\n" }
        return y + "clusters:\n  - { name: api, endpoints: [\"127.0.0.1:9000\"] }\n"
    }

    /// Every worker accepts on at most 64 sockets: a 65th listener is refused
    /// by the loader instead of silently never being accepted on.
    func testListenerCountLimit() throws {
        XCTAssertEqual(ConfigLoader.maxListeners, 64)
        XCTAssertLessThanOrEqual(ConfigLoader.maxListeners, Reactor.maxAcceptSlots)
        XCTAssertLessThanOrEqual(ConfigLoader.maxListeners, Admission.maxListenerSlots)
        XCTAssertEqual(try ConfigLoader.parse(yaml: Self.manyListeners(64), file: "edge.yaml").summary,
                       "config OK: 64 listeners, 64 routes, 1 cluster")
        XCTAssertThrowsError(try ConfigLoader.parse(yaml: Self.manyListeners(65), file: "edge.yaml")) {
            XCTAssertEqual("\($0)", "edge.yaml:1: listeners: 65 listeners, at most 64 are supported (each worker accepts on at most 64 sockets)")
        }
    }

    func testLoadMissingFile() {
        do {
            _ = try ConfigLoader.load(path: "/nonexistent/edge.yaml")
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.description, "/nonexistent/edge.yaml: cannot read: No such file or directory")
        }
    }

    func testLoadFromFile() throws {
        let path = NSTemporaryDirectory() + "edge-test-\(getpid()).yaml"
        try Self.base.write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        let c = try ConfigLoader.load(path: path)
        XCTAssertEqual(c.listeners.first?.name, "web")
        XCTAssertEqual(c.listeners.first?.location.file, path)
    }
}
