import Foundation
import XCTest
@testable import Edge

/// `protocol: dtls` listeners: `tls` as on HTTPS listeners, `cluster` and `udp`
/// as on UDP listeners; every problem is a `file:line: field: problem` error.
final class ConfigLoaderDTLSTests: XCTestCase {
    private var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "edge-dtls-config-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        _ = try CertificateFactory.writeDemoSet(hostname: "localhost", dir: dir, days: 2)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    private func yaml(_ listener: String) -> String {
        """
        listeners:
          - name: secure-dns
            address: 127.0.0.1:8853
        \(listener)
        clusters:
          - name: dns
            endpoints: [ "127.0.0.1:53" ]
        """
    }

    private func error(_ listener: String) -> String {
        do {
            _ = try ConfigLoader.parse(yaml: yaml(listener), file: "\(dir)/edge.yaml")
            return "no error"
        } catch {
            return error.description.replacingOccurrences(of: dir, with: "DIR")
        }
    }

    private let certs = "    tls:\n      certificates: [ { cert: server.pem, key: server.key } ]"

    func testValidListenerCompilesToDTLSDatagramSessions() throws {
        let text = yaml("    protocol: dtls\n    cluster: dns\n\(certs)\n      handshake_timeout: 3s\n      max_handshakes: 50\n    udp: { session_timeout: 20s, max_sessions: 300 }")
        let config = try ConfigLoader.parse(yaml: text, file: "\(dir)/edge.yaml")
        let l = try XCTUnwrap(config.listeners.first)
        XCTAssertEqual(l.proto, .dtls)
        XCTAssertEqual(l.streamCluster, "dns")
        XCTAssertEqual(l.udpSessionTimeoutMs, 20_000)
        XCTAssertEqual(l.udpMaxSessions, 300)
        XCTAssertEqual(l.tls?.handshakeTimeoutMs, 3_000)
        XCTAssertEqual(l.tls?.maxHandshakes, 50)
        XCTAssertEqual(l.tls?.minVersion, 0xFEFD)
        XCTAssertTrue(l.isDatagramProtocol)
        let context = try XCTUnwrap(l.tls?.context)
        XCTAssertEqual(context.contexts.count, 1)
        let table = RouteTableCompiler.compile(config)
        let cl = try XCTUnwrap(table.listeners.first)
        XCTAssertTrue(cl.isDatagram)
        XCTAssertTrue(cl.isDTLS)
        XCTAssertNotNil(cl.tlsContext)
        XCTAssertEqual(cl.tlsHandshakeTimeoutMs, 3_000)
        XCTAssertEqual(cl.tlsMaxHandshakes, 50)
        XCTAssertEqual(cl.udpMaxSessions, 300)
    }

    func testErrors() {
        let cases: [(String, String)] = [
            ("    protocol: dtls\n    cluster: dns",
             "DIR/edge.yaml:2: listeners[0]: protocol dtls listeners need a 'tls' block with at least one certificate"),
            ("    protocol: dtls\n\(certs)",
             "DIR/edge.yaml:2: listeners[0]: listener 'secure-dns' (protocol dtls) needs 'cluster: NAME' to relay to"),
            ("    protocol: dtls\n    cluster: nope\n\(certs)",
             "DIR/edge.yaml:5: listeners[0].cluster: unknown cluster 'nope' (known: dns)"),
            ("    protocol: dtls\n    cluster: dns\n\(certs)\n      min_version: \"1.3\"",
             "DIR/edge.yaml:8: listeners[0].tls.min_version: dtls listeners support min_version 1.2 only (OpenSSL 3.0 has no DTLS 1.3)"),
            ("    protocol: dtls\n    cluster: dns\n\(certs)\n      alpn: [h2]",
             "DIR/edge.yaml:8: listeners[0].tls.alpn: alpn does not apply to dtls listeners (they relay datagrams, not HTTP)"),
            ("    protocol: dtls\n    cluster: dns\n\(certs)\n      handshake_timeout: soon",
             "DIR/edge.yaml:8: listeners[0].tls.handshake_timeout: expected a duration like 5s, got 'soon'"),
            ("    protocol: dtls\n    cluster: dns\n\(certs)\n      max_handshakes: 0",
             "DIR/edge.yaml:8: listeners[0].tls.max_handshakes: must be between 1 and 1000000, got 0"),
            ("    protocol: dtls\n    cluster: dns\n    tls:\n      certificates: [ { cert: missing.pem, key: server.key } ]",
             "DIR/edge.yaml:7: listeners[0].tls.certificates[0].cert: cannot read certificate file 'DIR/missing.pem': No such file or directory"),
            ("    protocol: dtls\n    cluster: dns\n    tls:\n      certificates: [ { cert: server.pem, key: client.key } ]",
             "DIR/edge.yaml:7: listeners[0].tls.certificates[0].key: key 'DIR/client.key' does not match certificate 'DIR/server.pem'"),
            ("    protocol: dtls\n    cluster: dns\n\(certs)\n    udp: { session_timeout: 1s, max_sessions: 0 }",
             "DIR/edge.yaml:8: listeners[0].udp.max_sessions: must be between 1 and 1000000, got 0"),
            ("    protocol: dtls\n    cluster: dns\n\(certs)\n    tcp: { idle_timeout: 1s }",
             "DIR/edge.yaml:8: listeners[0].tcp: 'tcp' settings apply to protocol tcp and tls listeners only"),
            ("    protocol: dtls\n    cluster: dns\n\(certs)\n    proxy_protocol: accept",
             "DIR/edge.yaml:8: listeners[0].proxy_protocol: proxy_protocol is for tcp and http listeners"),
            ("    protocol: dtls\n    cluster: dns\n\(certs)\n    max_connections_per_ip: 5",
             "DIR/edge.yaml:8: listeners[0].max_connections_per_ip: max_connections_per_ip applies to tcp and http listeners"),
            ("    protocol: dtls\n    cluster: dns\n\(certs)\n    http: { idle_timeout: 1s }",
             "DIR/edge.yaml:8: listeners[0].http: 'http' settings apply to protocol http and https listeners only"),
            ("    protocol: dtls\n    routes: []\n\(certs)",
             "DIR/edge.yaml:2: listeners[0]: listener 'secure-dns' (protocol dtls) needs 'cluster: NAME' to relay to"),
            ("    protocol: tcp\n    cluster: dns\n    udp: { session_timeout: 1s }",
             "DIR/edge.yaml:6: listeners[0].udp: 'udp' settings apply to protocol udp and dtls listeners only"),
        ]
        for (listener, want) in cases {
            XCTAssertEqual(error(listener), want, listener)
        }
    }
}
