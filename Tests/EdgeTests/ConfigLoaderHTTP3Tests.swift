import Foundation
import XCTest
@testable import Edge

/// `listeners[].http3`: defaults, values, and the errors a user sees.
final class ConfigLoaderHTTP3Tests: XCTestCase {
    private var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "edge-h3-config-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                       "-subj", "/CN=a.test", "-keyout", dir + "/a.key", "-out", dir + "/a.pem"]
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "openssl could not make a test certificate")
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    private func listener(_ http3: String, proto: String = "https") -> String {
        """
        listeners:
          - name: web
            address: 127.0.0.1:8443
            protocol: \(proto)
            http3: \(http3)
            tls:
              certificates: [ { cert: \(dir)/a.pem, key: \(dir)/a.key } ]
            routes: [ { direct_response: { status: 200 } } ]
        """
    }

    func testDefaultsAndValues() throws {
        let on = try ConfigLoader.parse(yaml: listener("on"), file: "edge.yaml")
        XCTAssertTrue(on.listeners[0].http3.enabled)
        XCTAssertNotNil(on.listeners[0].quicContext, "GnuTLS credentials built from the TLS listener's files")
        XCTAssertEqual(on.listeners[0].http3.retry, .auto)
        XCTAssertEqual(on.listeners[0].http3.maxFieldSection, 32_768, "defaults to http.max_header_bytes")
        let off = try ConfigLoader.parse(yaml: listener("off"), file: "edge.yaml")
        XCTAssertFalse(off.listeners[0].http3.enabled)
        XCTAssertNil(off.listeners[0].quicContext)
        let c = try ConfigLoader.parse(yaml: listener("{ retry: always, max_connections: 500, max_handshakes: 50, idle_timeout: 5s, handshake_timeout: 2s, max_concurrent_streams: 20, stream_window: 64KiB, connection_window: 1MiB, max_field_section: 8KiB }"), file: "edge.yaml")
        let h = c.listeners[0].http3
        XCTAssertTrue(h.enabled)
        XCTAssertEqual(h.retry, .always)
        XCTAssertEqual(h.maxConnections, 500)
        XCTAssertEqual(h.maxHandshakes, 50)
        XCTAssertEqual(h.idleTimeoutMs, 5_000)
        XCTAssertEqual(h.handshakeTimeoutMs, 2_000)
        XCTAssertEqual(h.maxConcurrentStreams, 20)
        XCTAssertEqual(h.streamWindow, 65_536)
        XCTAssertEqual(h.maxFieldSection, 8_192)
        let compiled = RouteTableCompiler.compile(c, generation: 1)
        XCTAssertEqual(String(decoding: compiled.listeners[0].http3.altSvc.buffer, as: UTF8.self), "Alt-Svc: h3=\":8443\"; ma=86400\r\n")
    }

    func testErrors() {
        let cases: [(String, String)] = [
            ("maybe", "edge.yaml:5: listeners[0].http3: unknown http3 'maybe'"),
            ("{ retry: sometimes }", "edge.yaml:5: listeners[0].http3.retry: unknown retry 'sometimes'"),
            ("{ max_connections: 0 }", "edge.yaml:5: listeners[0].http3.max_connections:"),
            ("{ idle_timeout: 1ms }", "edge.yaml:5: listeners[0].http3.idle_timeout:"),
            ("{ stream_window: 512KiB, connection_window: 256KiB }", "edge.yaml:5: listeners[0].http3.connection_window: connection_window"),
            ("{ max_connections: 10, max_handshakes: 20 }", "edge.yaml:5: listeners[0].http3.max_handshakes: max_handshakes (20) must not exceed"),
            ("{ max_field_section: 1MiB }", "edge.yaml:5: listeners[0].http3.max_field_section:"),
            ("{ bogus: 1 }", "edge.yaml:5: listeners[0].http3"),
        ]
        for (yaml, prefix) in cases {
            XCTAssertThrowsError(try ConfigLoader.parse(yaml: listener(yaml), file: "edge.yaml"), yaml) {
                XCTAssertTrue("\($0)".hasPrefix(prefix), "\(yaml): \($0)")
            }
        }
        XCTAssertThrowsError(try ConfigLoader.parse(yaml: """
        listeners:
          - { name: web, address: "127.0.0.1:8080", http3: on, routes: [ { direct_response: { status: 200 } } ] }
        """, file: "edge.yaml")) {
            XCTAssertTrue("\($0)".hasPrefix("edge.yaml:2: listeners[0].http3: 'http3' applies to protocol https listeners only"), "\($0)")
        }
    }
}
