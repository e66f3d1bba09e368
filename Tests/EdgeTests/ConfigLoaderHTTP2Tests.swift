import XCTest
@testable import Edge

/// `listeners[].http2`: defaults, values, and the errors a user sees.
final class ConfigLoaderHTTP2Tests: XCTestCase {
    private func listener(_ http2: String, proto: String = "http") -> String {
        """
        listeners:
          - name: web
            address: 127.0.0.1:8080
            protocol: \(proto)
            http2: \(http2)
            routes: [ { direct_response: { status: 200 } } ]
        """
    }

    func testDefaultsAndValues() throws {
        let off = try ConfigLoader.parse(yaml: """
        listeners:
          - { name: web, address: 127.0.0.1:8080, routes: [ { direct_response: { status: 200 } } ] }
        """, file: "edge.yaml")
        XCTAssertFalse(off.listeners[0].http2.cleartext)
        let c = try ConfigLoader.parse(yaml: listener("{ cleartext: true, max_concurrent_streams: 50, initial_window: 128KiB, max_frame_size: 32KiB }"), file: "edge.yaml")
        let h = c.listeners[0].http2
        XCTAssertTrue(h.cleartext)
        XCTAssertEqual(h.maxConcurrentStreams, 50)
        XCTAssertEqual(h.initialWindow, 131_072)
        XCTAssertEqual(h.maxFrameSize, 32_768)
        XCTAssertEqual(h.maxHeaderList, 32_768, "defaults to http.max_header_bytes")
    }

    func testErrors() {
        let cases: [(String, String)] = [
            ("{ cleartext: maybe }", "edge.yaml:5: listeners[0].http2.cleartext:"),
            ("{ max_concurrent_streams: 0 }", "edge.yaml:5: listeners[0].http2.max_concurrent_streams:"),
            ("{ max_frame_size: 1KiB }", "edge.yaml:5: listeners[0].http2.max_frame_size:"),
            ("{ initial_window: 1MiB, connection_window: 512KiB }", "edge.yaml:5: listeners[0].http2.connection_window: connection_window"),
            ("{ bogus: 1 }", "edge.yaml:5: listeners[0].http2"),
        ]
        for (yaml, prefix) in cases {
            XCTAssertThrowsError(try ConfigLoader.parse(yaml: listener(yaml), file: "edge.yaml"), yaml) {
                XCTAssertTrue("\($0)".hasPrefix(prefix), "\(yaml): \($0)")
            }
        }
        XCTAssertThrowsError(try ConfigLoader.parse(yaml: """
        listeners:
          - { name: db, address: "127.0.0.1:5432", protocol: tcp, cluster: pg, http2: { cleartext: true } }
        clusters:
          - { name: pg, endpoints: ["127.0.0.1:5433"] }
        """, file: "edge.yaml")) {
            XCTAssertTrue("\($0)".contains("'http2' settings apply to protocol http and https listeners only"), "\($0)")
        }
    }
}
