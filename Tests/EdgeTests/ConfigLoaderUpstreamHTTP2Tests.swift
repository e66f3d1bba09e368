import XCTest
@testable import Edge

/// `clusters[].protocol`: values, defaults and the errors a user sees.
final class ConfigLoaderUpstreamHTTP2Tests: XCTestCase {
    private func config(_ clusterExtra: String) -> String {
        """
        listeners:
          - { name: web, address: 127.0.0.1:8080, routes: [ { cluster: api } ] }
        clusters:
          - name: api
            endpoints: [ "127.0.0.1:9000" ]
        \(clusterExtra)
        """
    }

    func testDefaultAndValues() throws {
        XCTAssertEqual(try ConfigLoader.parse(yaml: config(""), file: "edge.yaml").clusters[0].upstreamProtocol, .http1)
        XCTAssertEqual(try ConfigLoader.parse(yaml: config("    protocol: http2"), file: "edge.yaml").clusters[0].upstreamProtocol, .http2)
        XCTAssertEqual(try ConfigLoader.parse(yaml: config("    protocol: http1"), file: "edge.yaml").clusters[0].upstreamProtocol, .http1)
        let tls = try ConfigLoader.parse(yaml: config("    protocol: http2\n    tls: { verify: false }"), file: "edge.yaml").clusters[0]
        XCTAssertEqual(tls.upstreamProtocol, .http2)
        XCTAssertNotNil(tls.tls, "http2 over TLS offers ALPN h2")
    }

    func testErrors() {
        let cases: [(String, String)] = [
            ("    protocol: http3", "edge.yaml:6: clusters[0].protocol: unknown protocol"),
            ("    protocol: [http2]", "edge.yaml:6: clusters[0].protocol:"),
            ("    protocol: auto", "edge.yaml:6: clusters[0].protocol: 'auto' (pick h2 or http/1.1 by ALPN) is not supported yet"),
            ("    protocol: http2\n    proxy_protocol: v2", "edge.yaml:6: clusters[0].protocol: http2 multiplexes many clients"),
        ]
        for (extra, prefix) in cases {
            XCTAssertThrowsError(try ConfigLoader.parse(yaml: config(extra), file: "edge.yaml"), extra) {
                XCTAssertTrue("\($0)".hasPrefix(prefix), "\(extra): \($0)")
            }
        }
    }
}
