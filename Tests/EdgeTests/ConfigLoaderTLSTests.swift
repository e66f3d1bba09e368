import XCTest
@testable import Edge

/// `listeners[].tls`: each problem is a `file:line: field: problem` error.
final class ConfigLoaderTLSTests: XCTestCase {
    private func yaml(_ listener: String) -> String {
        """
        listeners:
          - name: websecure
            address: 127.0.0.1:8443
        \(listener)
            cluster: up
        clusters:
          - name: up
            endpoints: [ "127.0.0.1:9000" ]
        """
    }

    private func error(_ listener: String) -> String {
        do {
            _ = try ConfigLoader.parse(yaml: yaml(listener), file: "/etc/edge/edge.yaml")
            return "no error"
        } catch {
            return error.description
        }
    }

    func testErrors() {
        let cases: [(String, String)] = [
            ("    protocol: https",
             "/etc/edge/edge.yaml:2: listeners[0]: protocol https listeners need a 'tls' block with at least one certificate"),
            ("    protocol: http\n    tls: { certificates: [] }",
             "/etc/edge/edge.yaml:5: listeners[0].tls: 'tls' settings apply to protocol https, tls and dtls listeners only"),
            ("    protocol: https\n    tls: { certificates: [] }",
             "/etc/edge/edge.yaml:5: listeners[0].tls.certificates: at least one certificate is required"),
            ("    protocol: https\n    tls:\n      certificates:\n        - { cert: certs/a.pem }",
             "/etc/edge/edge.yaml:7: listeners[0].tls.certificates[0]: missing required field 'key'"),
            ("    protocol: https\n    tls:\n      certificates:\n        - { cert: certs/a.pem, key: certs/a.key }",
             "/etc/edge/edge.yaml:7: listeners[0].tls.certificates[0].cert: cannot read certificate file '/etc/edge/certs/a.pem': No such file or directory"),
            ("    protocol: https\n    tls:\n      certificates: [ { cert: a.pem, key: a.key } ]\n      min_version: \"1.1\"",
             "/etc/edge/edge.yaml:7: listeners[0].tls.min_version: unknown TLS version '1.1', expected one of: 1.2, 1.3"),
            ("    protocol: https\n    tls:\n      certificates: [ { cert: a.pem, key: a.key } ]\n      alpn: [h3]",
             "/etc/edge/edge.yaml:7: listeners[0].tls.alpn[0]: unknown ALPN protocol 'h3', expected one of: h2, http/1.1"),
            ("    protocol: https\n    tls:\n      certificates: [ { cert: a.pem, key: a.key } ]\n      client_auth: { ca: ca.pem, mode: sometimes }",
             "/etc/edge/edge.yaml:7: listeners[0].tls.client_auth.mode: unknown client_auth mode 'sometimes', expected one of: optional, require"),
            ("    protocol: https\n    tls:\n      certificates: [ { cert: a.pem, key: a.key, server_names: [\"bad name\"] } ]",
             "/etc/edge/edge.yaml:6: listeners[0].tls.certificates[0].server_names[0]: 'bad name' is not a host name or a '*.example.com' wildcard"),
            ("    protocol: https\n    tls:\n      certificates: [ { cert: a.pem, key: a.key } ]\n      session_tickets: maybe",
             "/etc/edge/edge.yaml:7: listeners[0].tls.session_tickets: expected on or off, got 'maybe'"),
        ]
        for (listener, expected) in cases {
            XCTAssertEqual(error(listener), expected, listener)
        }
    }

    // MARK: protocol: tls

    /// Certificates for configs that must load (the demo set `edge gen-certs` writes).
    private func demoCerts() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("edge-tlsrelay-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        _ = try CertificateFactory.writeDemoSet(hostname: "localhost", dir: dir, days: 2)
        return dir
    }

    private func tlsRelay(_ body: String, certs: String) -> String {
        """
        listeners:
          - name: redis
            address: 127.0.0.1:6380
            protocol: tls
            tls:
              certificates: [ { cert: \(certs)/server.pem, key: \(certs)/server.key } ]
        \(body)
        clusters:
          - name: up
            endpoints: [ "127.0.0.1:6379" ]
        """
    }

    private func tlsRelayError(_ body: String, certs: String) -> String {
        do {
            _ = try ConfigLoader.parse(yaml: tlsRelay(body, certs: certs), file: "/etc/edge/edge.yaml")
            return "no error"
        } catch {
            return error.description
        }
    }

    func testTLSRelayErrors() throws {
        let certs = try demoCerts()
        defer { try? FileManager.default.removeItem(atPath: certs) }
        XCTAssertEqual(error("    protocol: tls"),
                       "/etc/edge/edge.yaml:2: listeners[0]: protocol tls listeners need a 'tls' block with at least one certificate")
        let cases: [(String, String)] = [
            ("", "/etc/edge/edge.yaml:2: listeners[0]: listener 'redis' (protocol tls) needs 'cluster: NAME' to relay to"),
            ("    cluster: nope", "/etc/edge/edge.yaml:7: listeners[0].cluster: unknown cluster 'nope' (known: up)"),
            ("    cluster: up\n    routes: [ { match: { sni: a.example }, cluster: up } ]",
             "/etc/edge/edge.yaml:8: listeners[0].routes: protocol tls listeners relay to one cluster; 'routes' are for http and tcp (sni)"),
            ("    cluster: up\n    tcp: { relay: splice }",
             "/etc/edge/edge.yaml:8: listeners[0].tcp.relay: 'relay' does not apply to protocol tls listeners (their relays always copy through user space); only idle_timeout does"),
            ("    cluster: up\n    tcp: { sni_timeout: 1s }",
             "/etc/edge/edge.yaml:8: listeners[0].tcp.sni_timeout: 'sni_timeout' does not apply to protocol tls listeners (their relays always copy through user space); only idle_timeout does"),
            ("    cluster: up\n    http: { idle_timeout: 1s }",
             "/etc/edge/edge.yaml:8: listeners[0].http: 'http' settings apply to protocol http and https listeners only"),
            ("    cluster: up\n    policies: [ auth ]",
             "/etc/edge/edge.yaml:8: listeners[0].policies: policies apply to protocol http and https listeners (a tls listener relays bytes it does not parse)"),
            ("    cluster: up\n    tcp: { idle_timeout: soon }",
             "/etc/edge/edge.yaml:8: listeners[0].tcp.idle_timeout: expected a duration like 5s, got 'soon'"),
        ]
        for (body, expected) in cases {
            XCTAssertEqual(tlsRelayError(body, certs: certs), expected, body)
        }
        // ALPN on a TLS relay: any protocol id, but not an empty list or an over-long id.
        let alpnCases: [(String, String)] = [
            ("alpn: []", "/etc/edge/edge.yaml:7: listeners[0].tls.alpn: list at least one protocol, or leave 'alpn' out"),
            ("alpn: [\"\(String(repeating: "x", count: 256))\"]", "/etc/edge/edge.yaml:7: listeners[0].tls.alpn[0]: an ALPN protocol id is at most 255 bytes"),
        ]
        for (alpn, expected) in alpnCases {
            let yaml = tlsRelay("    cluster: up", certs: certs).replacingOccurrences(
                of: "server.key } ]", with: "server.key } ]\n      \(alpn)")
            var got = "no error"
            do { _ = try ConfigLoader.parse(yaml: yaml, file: "/etc/edge/edge.yaml") } catch { got = error.description }
            XCTAssertEqual(got, expected, alpn)
        }
    }

    func testTLSRelayLoads() throws {
        let certs = try demoCerts()
        defer { try? FileManager.default.removeItem(atPath: certs) }
        let body = "    cluster: up\n    proxy_protocol: accept\n    tcp: { idle_timeout: 30s }"
        let config = try ConfigLoader.parse(yaml: tlsRelay(body, certs: certs), file: "/etc/edge/edge.yaml")
        let l = try XCTUnwrap(config.listeners.first)
        XCTAssertEqual(l.proto, .tls)
        XCTAssertEqual(l.streamCluster, "up")
        XCTAssertEqual(l.streamIdleTimeoutMs, 30_000)
        XCTAssertTrue(l.acceptsProxyProtocol)
        XCTAssertEqual(l.tls?.alpn, [], "a TLS relay offers no ALPN unless configured")
        let withALPN = tlsRelay("    cluster: up", certs: certs).replacingOccurrences(
            of: "server.key } ]", with: "server.key } ]\n      alpn: [redis, postgresql]")
        XCTAssertEqual(try ConfigLoader.parse(yaml: withALPN, file: "/e.yaml").listeners.first?.tls?.alpn, ["redis", "postgresql"])
        let table = RouteTableCompiler.compile(config)
        XCTAssertTrue(table.listeners[0].isStream)
        XCTAssertNotNil(table.listeners[0].tlsContext)
        XCTAssertEqual(table.listeners[0].streamCluster, 0)
    }

    /// PROXY protocol is accepted in front of TLS (https and tls listeners).
    func testProxyProtocolOnHTTPS() throws {
        let certs = try demoCerts()
        defer { try? FileManager.default.removeItem(atPath: certs) }
        let yaml = tlsRelay("    cluster: up\n    proxy_protocol: accept", certs: certs).replacingOccurrences(of: "protocol: tls", with: "protocol: https")
        let config = try ConfigLoader.parse(yaml: yaml, file: "/etc/edge/edge.yaml")
        XCTAssertTrue(config.listeners[0].acceptsProxyProtocol)
    }
}
