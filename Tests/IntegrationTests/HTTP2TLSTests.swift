// HTTP/2 over TLS chosen by ALPN (`alpn: [h2, http/1.1]` on an HTTPS
// listener): real clients (curl --http2, h2load, openssl s_client) against the
// real binary and the Python HTTP/1.1 upstream.

import Foundation
import XCTest

final class HTTP2TLSTests: TLSTestCase {
    private func h2World(alpn: String = "[h2, http/1.1]") throws -> TLSWorld {
        try startWorld(tlsBlock: { pki in
            """
                  certificates:
                    - { cert: \(pki.file("a.pem")), key: \(pki.file("a.key")) }
                  alpn: \(alpn)
            """
        }, prepare: { pki in
            try pki.leaf("a", cn: "/CN=a.test", sans: "DNS:a.test")
        })
    }

    func testALPNSelectsHTTP2AndRequestsAreProxied() throws {
        let w = try h2World()
        // curl offers h2 first: HTTP/2 to Edge, HTTP/1.1 to the upstream, marked https.
        let get = try w.curl("a.test", "/echo", ["--http2"])
        XCTAssertEqual(get.status, 200, get.stderr)
        XCTAssertTrue(get.headers.hasPrefix("HTTP/2 200"), "not HTTP/2: \(get.headers)")
        XCTAssertEqual(EchoedRequest(json: try get.json()).values("X-Forwarded-Proto"), ["https"])
        // A large response and an upload through TLS records and h2 flow control.
        let big = try w.curl("a.test", "/bytes?n=3000000", ["--http2"])
        XCTAssertTrue(big.headers.hasPrefix("HTTP/2 200"), big.headers)
        XCTAssertEqual(big.body.count, 3_000_000, big.stderr)
        let file = try TestData.randomFile(300_000, in: w.harness.dir)
        let up = try w.curl("a.test", "/upload", ["--http2", "--data-binary", "@\(file.path)"])
        XCTAssertTrue(up.bodyText.contains(file.sha256), "upload changed on the way: \(up.bodyText.prefix(200))")
        // Local answers over h2+TLS.
        let d = try w.curl("a.test", "/direct", ["--http2"])
        XCTAssertTrue(d.headers.hasPrefix("HTTP/2 200"), d.headers)
        XCTAssertEqual(d.bodyText, "direct over tls\n")
        // A client offering only http/1.1 still gets HTTP/1.1 on the same listener.
        let h1 = try w.curl("a.test", "/direct", ["--http1.1"])
        XCTAssertTrue(h1.headers.hasPrefix("HTTP/1.1 200"), h1.headers)
        let s = try w.sClient(["-servername", "a.test", "-alpn", "h2"])
        XCTAssertTrue(s.contains("ALPN protocol: h2"), s)
    }

    func testManyStreamsOverTLSWithH2load() throws {
        let w = try h2World()
        let h2load = try Paths.require("h2load")
        let r = try runCommand(h2load, ["-n", "2000", "-c", "4", "-m", "10", "-T", "20",
                                        "https://127.0.0.1:\(w.httpsPort)/echo"], timeout: 60)
        XCTAssertTrue(r.stdoutText.contains("Application protocol: h2"), r.stdoutText)
        XCTAssertTrue(r.stdoutText.contains("2000 succeeded, 0 failed, 0 errored, 0 timeout"), r.stdoutText + r.stderr)
        let big = try runCommand(h2load, ["-n", "40", "-c", "1", "-m", "20", "-T", "20",
                                          "https://127.0.0.1:\(w.httpsPort)/bytes?n=200000"], timeout: 60)
        XCTAssertTrue(big.stdoutText.contains("40 succeeded, 0 failed, 0 errored, 0 timeout"), big.stdoutText + big.stderr)
    }

    /// Without h2 in `alpn`, a client offering h2 and http/1.1 gets HTTP/1.1.
    func testH2NotOfferedUnlessConfigured() throws {
        let w = try h2World(alpn: "[http/1.1]")
        let r = try w.curl("a.test", "/direct", ["--http2"])
        XCTAssertTrue(r.headers.hasPrefix("HTTP/1.1 200"), r.headers + r.stderr)
    }
}
