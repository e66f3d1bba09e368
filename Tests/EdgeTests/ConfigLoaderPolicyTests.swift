import XCTest
@testable import Edge

/// `consumers:`, `policies:` and `policies: [...]` references: one valid
/// config read back and compiled, then one case per error (`file:line: field: problem`).
final class ConfigLoaderPolicyTests: XCTestCase {
    static let full = """
    consumers:
      - name: alice
        api_keys: [ "k-alice-1" ]
        basic: { username: alice, password_hash: "$2y$05$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01" }
        groups: [ engineering ]
    policies:
      - { name: keys, api_key: { header: X-API-Key, query: api_key } }
      - { name: eng-only, acl: { allow_groups: [engineering] } }
      - { name: per-consumer, rate_limit: { key: consumer, rate: 100/s, burst: 200 } }
      - { name: office, ip: { allow: [ "10.0.0.0/8", "::1/128" ], deny: [] } }
      - { name: cors, cors: { origins: [ "https://app.example" ], methods: [GET, POST], headers: [Authorization], credentials: true, max_age: 600s } }
      - { name: secure, security_headers: { hsts: "max-age=31536000", frame_options: DENY, content_type_options: nosniff } }
    listeners:
      - name: web
        address: 127.0.0.1:8080
        policies: [ secure ]
        routes:
          - match: { path_prefix: "/api/" }
            cluster: api
            policies: [ cors, keys, eng-only, per-consumer ]
          - match: { path_prefix: "/" }
            cluster: api
    clusters:
      - name: api
        endpoints: [ "127.0.0.1:9000" ]
    """

    func testFullPolicyConfigLoadsAndCompiles() throws {
        let c = try ConfigLoader.parse(yaml: Self.full, file: "edge.yaml")
        XCTAssertEqual(c.consumers.map(\.name), ["alice"])
        XCTAssertEqual(c.consumers[0].apiKeys, ["k-alice-1"])
        XCTAssertEqual(c.policies.map(\.name), ["keys", "eng-only", "per-consumer", "office", "cors", "secure"])
        XCTAssertEqual(c.listeners[0].routes[0].policies?.names, ["cors", "keys", "eng-only", "per-consumer"])
        guard case .rateLimit(let rl) = c.policies[2].kind else { return XCTFail("rate_limit") }
        XCTAssertEqual(rl.count, 100); XCTAssertEqual(rl.periodMs, 1000); XCTAssertEqual(rl.burst, 200); XCTAssertEqual(rl.key, .consumer)
        let table = RouteTableCompiler.compile(c)
        let hot = try XCTUnwrap(table.policyHot).pointee
        XCTAssertEqual(hot.chains.count, 2)
        let api = hot.chains[0]
        XCTAssertEqual(api.earlyCount, 1); XCTAssertEqual(api.authCount, 1); XCTAssertEqual(api.admissionCount, 2)
        XCTAssertEqual(hot.steps[Int(api.first)].kind, .cors)
        XCTAssertEqual(hot.chains[1].security, 0, "the listener default applies to routes that name no policies")
        XCTAssertEqual(PolicyHash.lookup(hot.keySlots, UnsafeRawBufferPointer(start: "k-alice-1", count: 9), seed: hot.hashSeed), 0)
    }

    func testConfigWithoutPoliciesCompilesToNothing() throws {
        let yaml = Self.full.replacingOccurrences(of: "    policies: [ secure ]\n", with: "")
            .replacingOccurrences(of: "        policies: [ cors, keys, eng-only, per-consumer ]\n", with: "")
        let table = RouteTableCompiler.compile(try ConfigLoader.parse(yaml: yaml, file: "edge.yaml"))
        XCTAssertNil(table.policyHot, "no route with policies: the hot path sees nil")
    }

    private func assertError(_ from: String, _ to: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        let yaml = Self.full.replacingOccurrences(of: from, with: to)
        XCTAssertNotEqual(yaml, Self.full, "replacement did not apply", file: file, line: line)
        XCTAssertThrowsError(try ConfigLoader.parse(yaml: yaml, file: "edge.yaml"), file: file, line: line) { e in
            XCTAssertEqual((e as? ConfigError)?.description, expected, file: file, line: line)
        }
    }

    func testPolicyErrorsNameFileLineAndField() {
        assertError("policies: [ cors, keys, eng-only, per-consumer ]", "policies: [ cors, nope ]",
                    "edge.yaml:20: listeners[0].routes[0].policies: no policy named 'nope' in 'policies:'")
        assertError("policies: [ cors, keys, eng-only, per-consumer ]", "policies: [ cors, eng-only ]",
                    "edge.yaml:20: listeners[0].routes[0].policies: acl policy 'eng-only' needs an authentication policy (api_key, basic, jwt or hmac) in the same list")
        assertError("rate: 100/s", "rate: 100/d",
                    "edge.yaml:9: policies[2].rate_limit.rate: expected a rate like 100/s (per s, m or h), got '100/d'")
        assertError("\"10.0.0.0/8\"", "\"10.0.0.0/33\"",
                    "edge.yaml:10: policies[3].ip.allow[0]: prefix length must be 0...32, got '33'")
        assertError("\"10.0.0.0/8\"", "\"ten/8\"",
                    "edge.yaml:10: policies[3].ip.allow[0]: 'ten' is not an IPv4 or IPv6 address")
        assertError("allow_groups: [engineering]", "allow_groups: [ops]",
                    "edge.yaml:8: policies[1].acl.allow_groups[0]: no consumer is in group 'ops'")
        assertError("password_hash: \"$2y$05$", "password_hash: \"plain",
                    "edge.yaml:4: consumers[0].basic.password_hash: expected a crypt(3) hash such as `htpasswd -nbB user pass` prints ($2y$..., $6$..., $y$...)")
        assertError("origins: [ \"https://app.example\" ]", "origins: [ \"*\" ]",
                    "edge.yaml:11: policies[4].cors.origins: 'credentials: true' cannot be used with origin '*' (browsers refuse it); list the origins")
        assertError("origins: [ \"https://app.example\" ]", "origins: [ \"app.example/\" ]",
                    "edge.yaml:11: policies[4].cors.origins[0]: an origin is '*' or scheme://host[:port] with no path, got 'app.example/'")
        assertError("burst: 200", "burst: 0",
                    "edge.yaml:9: policies[2].rate_limit.burst: must be between 1 and 1000000, got 0")
        assertError("key: consumer,", "key: cookie,",
                    "edge.yaml:9: policies[2].rate_limit.key: unknown rate-limit key 'cookie', expected one of: consumer, client_ip, route")
        assertError("burst: 200 }", "burst: 200, shared: redis }",
                    "edge.yaml:9: policies[2].rate_limit.shared: 'shared: redis' needs a top-level 'redis: { address: ... }' block (or write the address here: shared: { redis: { address: ... } })")
        assertError("{ name: keys, api_key: { header: X-API-Key, query: api_key } }", "{ name: keys, api_key: {} }",
                    "edge.yaml:7: policies[0].api_key: api_key needs 'header', 'query' or both")
        assertError("{ name: eng-only,", "{ name: keys,",
                    "edge.yaml:8: policies[1].name: policy 'keys' is defined twice")
        assertError("  - { name: secure,", "  - { name: j, jwt: {} }\n  - { name: secure,",
                    "edge.yaml:12: policies[5].jwt: missing required field 'jwks_file'")
        assertError("  - { name: secure,", "  - { name: j, jwt: { jwks_file: /nonexistent/jwks.json, algorithms: [RS256] } }\n  - { name: secure,",
                    "edge.yaml:12: policies[5].jwt.jwks_file: cannot read '/nonexistent/jwks.json': No such file or directory")
        assertError("    groups: [ engineering ]\n", "    groups: [ engineering ]\n    hmac: { key_id: alice, secret: short }\n",
                    "edge.yaml:6: consumers[0].hmac.secret: an HMAC secret has 16 to 1024 bytes, got 5")
        assertError("    groups: [ engineering ]\n", "    groups: [ engineering ]\n    hmac: { key_id: alice, secret: { env: EDGE_TEST_UNSET_SECRET } }\n",
                    "edge.yaml:6: consumers[0].hmac.secret.env: environment variable EDGE_TEST_UNSET_SECRET is not set")
        assertError("frame_options: DENY", "frame_option: DENY",
                    "edge.yaml:12: policies[5].security_headers.frame_option: unknown field 'frame_option', expected one of: hsts, frame_options, content_type_options, referrer_policy, content_security_policy")
    }

    func testMetadataEndpointsNeedAnExplicitAllow() throws {
        assertError("endpoints: [ \"127.0.0.1:9000\" ]", "endpoints: [ \"169.254.169.254:80\" ]",
                    "edge.yaml:25: clusters[0].endpoints[0]: endpoint 169.254.169.254:80 is a link-local / cloud-metadata address (169.254.0.0/16, fe80::/10, fd00:ec2::254); set 'allow_metadata_addresses: true' on cluster 'api' if that is intended")
        assertError("endpoints: [ \"127.0.0.1:9000\" ]", "endpoints: [ \"[fd00:ec2::254]:80\" ]",
                    "edge.yaml:25: clusters[0].endpoints[0]: endpoint [fd00:ec2::254]:80 is a link-local / cloud-metadata address (169.254.0.0/16, fe80::/10, fd00:ec2::254); set 'allow_metadata_addresses: true' on cluster 'api' if that is intended")
        let allowed = Self.full.replacingOccurrences(of: "endpoints: [ \"127.0.0.1:9000\" ]",
                                                     with: "endpoints: [ \"169.254.169.254:80\" ]\n    allow_metadata_addresses: true")
        XCTAssertEqual(try ConfigLoader.parse(yaml: allowed, file: "edge.yaml").clusters[0].allowMetadataAddresses, true)
    }

    func testDuplicateAPIKeysAcrossConsumersAreRefused() {
        let yaml = Self.full.replacingOccurrences(of: "    groups: [ engineering ]\n", with: "    groups: [ engineering ]\n  - name: bob\n    api_keys: [ \"k-alice-1\" ]\n")
        XCTAssertThrowsError(try ConfigLoader.parse(yaml: yaml, file: "edge.yaml")) { e in
            XCTAssertEqual((e as? ConfigError)?.description, "edge.yaml:7: consumers[1].api_keys[0]: this API key is already given to consumer 'alice'")
        }
    }
}
