// HTTPS listeners with real clients: SNI certificate choice, ALPN, resumption,
// protocol floor, mTLS and X-Forwarded-Client-Cert, plaintext on the TLS port.

import Foundation
import XCTest

final class TLSTests: TLSTestCase {
    func testSNIChoosesCertificateAndRequestsGoUpstreamAsHTTPS() throws {
        let w = try standardWorld()
        let a = try w.curl("a.test", "/echo")
        XCTAssertEqual(a.status, 200, a.stderr)
        XCTAssertEqual(a.servedSubject, "CN=a.test")
        let echoed = EchoedRequest(json: try a.json())
        XCTAssertEqual(echoed.values("X-Forwarded-Proto"), ["https"])

        let b = try w.curl("b.test", "/echo")
        XCTAssertEqual(b.status, 200, b.stderr)
        XCTAssertEqual(b.servedSubject, "CN=b.test")
        // Wildcard from server_names.
        let sub = try w.curl("x.b.test", "/echo")
        XCTAssertEqual(sub.status, 200, sub.stderr)
        XCTAssertEqual(sub.servedSubject, "CN=b.test")
        // Unknown name: the default (first) certificate, which curl then rejects by name.
        let unknown = try w.curl("nothing.test", "/echo", ["-k"])
        XCTAssertEqual(unknown.status, 200, unknown.stderr)
        XCTAssertEqual(unknown.servedSubject, "CN=a.test")
        // Local answers travel over TLS too.
        let d = try w.curl("a.test", "/direct")
        XCTAssertEqual(d.bodyText, "direct over tls\n")
        // The plain listener still says http.
        let plain = try Curl.run(["http://127.0.0.1:\(w.harness.listenPort)/echo"])
        XCTAssertEqual(EchoedRequest(json: try plain.json()).values("X-Forwarded-Proto"), ["http"])
    }

    func testECDSAAndRSACertificatesForOneName() throws {
        let w = try standardWorld()
        let ec = try w.sClient(["-servername", "a.test", "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"])
        XCTAssertTrue(ec.contains("Server public key is 256 bit"), ec)
        let rsa = try w.sClient(["-servername", "a.test", "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"])
        XCTAssertTrue(rsa.contains("Server public key is 2048 bit"), rsa)
    }

    func testALPNAndSessionResumption() throws {
        let w = try standardWorld()
        let first = try w.sClient(["-servername", "b.test", "-alpn", "http/1.1", "-sess_out", w.pki.file("sess.pem")])
        XCTAssertTrue(first.contains("ALPN protocol: http/1.1"), first)
        XCTAssertTrue(first.contains("New, TLSv1.3"), first)
        let again = try w.sClient(["-servername", "b.test", "-sess_in", w.pki.file("sess.pem")])
        XCTAssertTrue(again.contains("Reused, TLSv1.3"), again)
        // TLS 1.2 resumes through the same ticket keys.
        _ = try w.sClient(["-servername", "b.test", "-tls1_2", "-sess_out", w.pki.file("sess12.pem")])
        let again12 = try w.sClient(["-servername", "b.test", "-tls1_2", "-sess_in", w.pki.file("sess12.pem")])
        XCTAssertTrue(again12.contains("Reused, TLSv1.2"), again12)
        XCTAssertGreaterThanOrEqual(try w.metrics().filter { $0.key.hasPrefix("edge_tls_resumed_total") }.map(\.value).reduce(0, +), 2)
        // Nothing in common: a fatal no_application_protocol alert.
        let h2only = try w.sClient(["-servername", "b.test", "-alpn", "h2"])
        XCTAssertTrue(h2only.contains("no application protocol"), h2only)
        XCTAssertEqual(try w.failures("no_application_protocol"), 1)
    }

    func testOldProtocolsAreRefused() throws {
        let w = try standardWorld()
        let old = try w.sClient(["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
        XCTAssertFalse(old.contains("Cipher is ECDHE"), old)
        XCTAssertFalse(old.contains("Cipher is TLS_"), old)
        XCTAssertEqual(try w.failures("protocol_version"), 1, old)
        // Still serving.
        XCTAssertEqual(try w.curl("a.test", "/direct").status, 200)
    }

    func testPythonSSLClientKeepAlive() throws {
        let w = try standardWorld()
        let script = """
            import http.client, json, ssl, sys
            ctx = ssl.create_default_context(cafile=sys.argv[1])
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            c = http.client.HTTPSConnection("b.test", int(sys.argv[2]), context=ctx)
            # Connect to loopback while sending SNI b.test.
            import socket
            c.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[2]))), server_hostname="b.test")
            conns = []
            for i in range(5):
                c.request("GET", "/echo?i=%d" % i, headers={"Host": "b.test"})
                r = c.getresponse()
                body = json.loads(r.read())
                conns.append(body["conn"])
                assert r.status == 200, r.status
            big = b"x" * 200000
            c.request("POST", "/upload", body=big, headers={"Host": "b.test"})
            up = json.loads(c.getresponse().read())
            print(json.dumps({"version": c.sock.version(), "conns": conns, "uploaded": up["length"]}))
            """
        let path = w.pki.file("client.py")
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try runCommand("python3", [path, w.pki.file("ca.pem"), String(w.httpsPort)], timeout: 30)
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any] ?? [:]
        XCTAssertEqual(j["version"] as? String, "TLSv1.3")
        XCTAssertEqual(j["uploaded"] as? Int, 200000)
        // Five requests on one client connection; Edge reuses its upstream connection.
        XCTAssertEqual((j["conns"] as? [Int])?.count, 5)
        XCTAssertEqual(Set((j["conns"] as? [Int]) ?? []).count, 1)
    }

    func testLargeDownloadOverTLS() throws {
        let w = try standardWorld()
        let r = try Curl.run(["--cacert", w.pki.file("ca.pem"), "--resolve", "a.test:\(w.httpsPort):127.0.0.1",
                              "https://a.test:\(w.httpsPort)/bytes?n=3000000"], timeout: 30)
        XCTAssertEqual(r.status, 200, r.stderr)
        XCTAssertEqual(r.body.count, 3_000_000)
        XCTAssertEqual(try TestData.sha256(bytes: [UInt8](r.body)), try TestData.patternSHA256(3_000_000))
    }

    func testPlaintextHTTPToTLSPortGetsShortError() throws {
        let w = try standardWorld()
        let c = try RawClient(port: w.httpsPort)
        defer { c.close() }
        try c.send("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 400)
        XCTAssertEqual(r.header("x-edge-error"), "plaintext_http_on_tls_port")
        XCTAssertTrue(c.waitForClose(timeout: 5))
        XCTAssertEqual(try w.failures("plaintext_http"), 1)
    }

    func testSpoofedClientCertHeaderIsAlwaysRemoved() throws {
        let w = try standardWorld()
        let tls = try w.curl("a.test", "/echo", ["-H", "X-Forwarded-Client-Cert: Hash=evil;Subject=\"CN=admin\""])
        XCTAssertFalse(EchoedRequest(json: try tls.json()).has("X-Forwarded-Client-Cert"))
        let plain = try Curl.run(["-H", "x-forwarded-client-cert: Hash=evil", "http://127.0.0.1:\(w.harness.listenPort)/echo"])
        XCTAssertFalse(EchoedRequest(json: try plain.json()).has("X-Forwarded-Client-Cert"))
    }

    func testOptionalClientAuthForwardsVerifiedCertificate() throws {
        let w = try standardWorld(extraTLS: "      client_auth: { ca: certs/ca.pem, mode: optional }")
        let hash = try w.pki.derSHA256("client")
        let r = try w.curl("a.test", "/echo", ["--cert", w.pki.file("client.pem"), "--key", w.pki.file("client.key"),
                                               "-H", "X-Forwarded-Client-Cert: Hash=spoofed"])
        XCTAssertEqual(r.status, 200, r.stderr)
        let xfcc = EchoedRequest(json: try r.json()).values("X-Forwarded-Client-Cert")
        XCTAssertEqual(xfcc, ["Hash=\(hash);Subject=\"CN=client1,O=Edge\";URI=spiffe://edge.test/client1"])
        // No certificate, or one from another CA: served, but without the header.
        let none = try w.curl("a.test", "/echo")
        XCTAssertEqual(none.status, 200, none.stderr)
        XCTAssertFalse(EchoedRequest(json: try none.json()).has("X-Forwarded-Client-Cert"))
        let stranger = try w.curl("a.test", "/echo", ["--cert", w.pki.file("stranger.pem"), "--key", w.pki.file("stranger.key")])
        XCTAssertEqual(stranger.status, 200, stranger.stderr)
        XCTAssertFalse(EchoedRequest(json: try stranger.json()).has("X-Forwarded-Client-Cert"))
    }

    func testRequiredClientAuthRejectsMissingOrUnknownCertificates() throws {
        let w = try standardWorld(extraTLS: "      client_auth: { ca: certs/ca.pem, mode: require }")
        let none = try w.curl("a.test", "/echo")
        XCTAssertNotEqual(none.exitCode, 0, "a client without a certificate got through: \(none.stderr)")
        XCTAssertNotEqual(none.status, 200)
        let stranger = try w.curl("a.test", "/echo", ["--cert", w.pki.file("stranger.pem"), "--key", w.pki.file("stranger.key")])
        XCTAssertNotEqual(stranger.status, 200, stranger.stderr)
        let ok = try w.curl("a.test", "/echo", ["--cert", w.pki.file("client.pem"), "--key", w.pki.file("client.key")])
        XCTAssertEqual(ok.status, 200, ok.stderr)
        XCTAssertTrue(EchoedRequest(json: try ok.json()).has("X-Forwarded-Client-Cert"))
        XCTAssertGreaterThanOrEqual(try w.failures("client_certificate"), 2)
    }
}
