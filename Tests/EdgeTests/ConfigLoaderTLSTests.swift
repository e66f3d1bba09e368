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
             "/etc/edge/edge.yaml:5: listeners[0].tls: 'tls' settings apply to protocol https and dtls listeners only"),
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
}
