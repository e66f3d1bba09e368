// Certificate lifecycle and TLS faults: reload swaps certificates without
// dropping connections, bad keys are config errors, hostile handshakes are
// cut while the listener keeps serving.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class TLSLifecycleTests: TLSTestCase {
    private func singleCertWorld(extra: String = "") throws -> TLSWorld {
        try startWorld(tlsBlock: { pki in
            """
                  certificates:
                    - { cert: certs/site.pem, key: certs/site.key }
            \(extra)
            """
        }, prepare: { pki in try pki.leaf("site", cn: "/CN=site.test", sans: "DNS:site.test") })
    }

    private func servedSerial(_ w: TLSWorld) throws -> String {
        let out = try w.sClient(["-servername", "site.test"], holdSeconds: 0.2)
        // Extract the PEM block s_client printed and read its serial.
        guard let begin = out.range(of: "-----BEGIN CERTIFICATE-----"), let end = out.range(of: "-----END CERTIFICATE-----") else {
            throw HarnessError("no certificate in s_client output:\n\(out)")
        }
        let pem = String(out[begin.lowerBound..<end.upperBound]) + "\n"
        let path = w.pki.file("served-\(UUID().uuidString.prefix(6)).pem")
        try pem.write(toFile: path, atomically: true, encoding: .utf8)
        let s = try runShell("openssl x509 -in '\(path)' -noout -serial", timeout: 10)
        return s.stdoutText.replacingOccurrences(of: "serial=", with: "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testReloadServesNewCertificateWhileOldConnectionsFinish() throws {
        let w = try singleCertWorld()
        let oldSerial = try w.pki.serial("site")
        XCTAssertEqual(try servedSerial(w), oldSerial)
        // A keep-alive client on the old certificate: one request now, one after the reload.
        let script = """
            import json, os, socket, ssl, sys, time
            ctx = ssl.create_default_context(cafile=sys.argv[1])
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[2]))), server_hostname="site.test")
            def get():
                s.sendall(b"GET /echo HTTP/1.1\\r\\nHost: site.test\\r\\n\\r\\n")
                data = b""
                while b"\\r\\n\\r\\n" not in data:
                    data += s.recv(65536)
                head, _, body = data.partition(b"\\r\\n\\r\\n")
                n = int([l.split(b":")[1] for l in head.split(b"\\r\\n") if l.lower().startswith(b"content-length")][0])
                while len(body) < n:
                    body += s.recv(65536)
                return head.split(b"\\r\\n")[0].decode()
            print("first", get(), flush=True)
            deadline = time.time() + 20
            while not os.path.exists(sys.argv[3]) and time.time() < deadline:
                time.sleep(0.05)
            print("second", get(), flush=True)
            """
        let scriptPath = w.pki.file("hold.py"), flag = w.pki.file("go")
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        let holder = try ManagedProcess(name: "holder", executable: try Paths.require("python3"),
                                        arguments: [scriptPath, w.pki.file("ca.pem"), String(w.httpsPort), flag], dir: w.harness.dir)
        defer { holder.stop() }
        let deadline = OS.now() + 10
        while !holder.stdoutText().contains("first") && OS.now() < deadline { OS.sleepMs(50) }
        XCTAssertTrue(holder.stdoutText().contains("first HTTP/1.1 200"), holder.stdoutText() + holder.stderrText())

        // Replace the certificate files in place and reload.
        try w.pki.leaf("site", cn: "/CN=site.test", sans: "DNS:site.test")
        let newSerial = try w.pki.serial("site")
        XCTAssertNotEqual(newSerial, oldSerial)
        let reload = try w.reload()
        XCTAssertEqual(reload.status, 200, reload.body)
        XCTAssertEqual(try servedSerial(w), newSerial)

        FileManager.default.createFile(atPath: flag, contents: Data())
        _ = holder.wait(timeout: 20)
        XCTAssertTrue(holder.stdoutText().contains("second HTTP/1.1 200"), holder.stdoutText() + holder.stderrText())
    }

    func testMismatchedKeyIsAConfigErrorAndOldCertificatesKeepServing() throws {
        let w = try singleCertWorld()
        let serial = try w.pki.serial("site")
        try w.pki.leaf("other", cn: "/CN=other.test", sans: "DNS:other.test")
        w.tlsBlock = """
                  certificates:
                    - { cert: certs/site.pem, key: certs/other.key }
            """
        try w.config().write(toFile: w.configPath, atomically: true, encoding: .utf8)
        let v = try runCommand(try Paths.edgeBinary(), ["validate", "--config", w.configPath])
        XCTAssertNotEqual(v.status, 0)
        let message = v.stderr + v.stdoutText
        XCTAssertTrue(message.contains("\(w.configPath):"), message)
        XCTAssertTrue(message.contains("listeners[0].tls.certificates[0].key: key"), message)
        XCTAssertTrue(message.contains("does not match certificate"), message)
        let reload = try w.reload()
        XCTAssertNotEqual(reload.status, 200, reload.body)
        XCTAssertTrue(reload.body.contains("does not match"), reload.body)
        XCTAssertEqual(try servedSerial(w), serial)

        // A missing file names the file.
        w.tlsBlock = """
                  certificates:
                    - { cert: certs/missing.pem, key: certs/site.key }
            """
        try w.config().write(toFile: w.configPath, atomically: true, encoding: .utf8)
        let missing = try runCommand(try Paths.edgeBinary(), ["validate", "--config", w.configPath])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue((missing.stderr + missing.stdoutText).contains("listeners[0].tls.certificates[0].cert: cannot read certificate file"), missing.stderr)
    }

    func testClientClosingMidHandshakeAndGarbageAreCutCleanly() throws {
        let w = try singleCertWorld()
        // Half a ClientHello, then close.
        for _ in 0..<3 {
            let c = try RawClient(port: w.httpsPort)
            try c.send([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])
            c.close()
        }
        // Garbage that is neither TLS nor HTTP.
        let g = try RawClient(port: w.httpsPort)
        try g.send([UInt8](repeating: 0x00, count: 64) + [0xff, 0xfe, 0x01, 0x16])
        XCTAssertTrue(g.waitForClose(timeout: 5), "garbage did not close the connection")
        g.close()
        // A record header announcing a huge record.
        let h = try RawClient(port: w.httpsPort)
        try h.send([0x16, 0x03, 0x03, 0xff, 0xff] + [UInt8](repeating: 0x41, count: 512))
        XCTAssertTrue(h.waitForClose(timeout: 5), "oversized record did not close the connection")
        h.close()
        XCTAssertEqual(try w.curl("site.test", "/direct").status, 200)
        let m = try w.metrics()
        let failed = m.filter { $0.key.hasPrefix("edge_tls_handshake_failures_total{") }.map(\.value).reduce(0, +)
        XCTAssertGreaterThanOrEqual(failed, 4, "\(m.filter { $0.key.contains("tls") })")
        XCTAssertGreaterThanOrEqual(try w.failures("client_closed"), 3)
    }

    func testHandshakeThatNeverFinishesTimesOut() throws {
        let w = try singleCertWorld(extra: "      handshake_timeout: 1s")
        let silent = try RawClient(port: w.httpsPort)
        let partial = try RawClient(port: w.httpsPort)
        try partial.send([0x16, 0x03, 0x01, 0x00, 0x50, 0x01])
        // The listener keeps serving meanwhile.
        XCTAssertEqual(try w.curl("site.test", "/direct").status, 200)
        XCTAssertTrue(silent.waitForClose(timeout: 8), "a silent connection was not closed")
        XCTAssertTrue(partial.waitForClose(timeout: 8), "a stalled handshake was not closed")
        silent.close(); partial.close()
        XCTAssertEqual(try w.failures("timeout"), 2)
        XCTAssertEqual(try w.curl("site.test", "/direct").status, 200)
    }

    func testHandshakeCapRefusesNewHandshakesButKeepsEstablishedConnections() throws {
        let w = try singleCertWorld(extra: "      max_handshakes: 2\n      handshake_timeout: 30s")
        let stalled = [try RawClient(port: w.httpsPort), try RawClient(port: w.httpsPort)]
        OS.sleepMs(200)
        let refused = try w.curl("site.test", "/direct")
        XCTAssertNotEqual(refused.status, 200, "a third handshake was accepted over max_handshakes: 2")
        XCTAssertGreaterThanOrEqual(try w.failures("handshake_limit"), 1)
        for c in stalled { c.close() }
        let deadline = OS.now() + 10
        var status = 0
        while OS.now() < deadline {
            status = try w.curl("site.test", "/direct").status
            if status == 200 { break }
            OS.sleepMs(100)
        }
        XCTAssertEqual(status, 200)
    }

    func testGenCertsOutputServesHTTPSWithMutualTLS() throws {
        let w = try startWorld(tlsBlock: { _ in
            """
                  certificates:
                    - { cert: certs/gen/server.pem, key: certs/gen/server.key }
                    - { cert: certs/gen/server-rsa.pem, key: certs/gen/server-rsa.key }
                  client_auth: { ca: certs/gen/ca.pem, mode: require }
            """
        }, prepare: { pki in
            let r = try runCommand(try Paths.edgeBinary(), ["gen-certs", "--hostname", "demo.test", "--out", pki.file("gen")])
            guard r.status == 0 else { throw HarnessError("gen-certs failed: \(r.stderr)") }
        })
        let gen = w.pki.file("gen")
        let verify = try runShell("cd '\(gen)' && openssl verify -CAfile ca.pem server.pem server-rsa.pem client.pem")
        XCTAssertEqual(verify.status, 0, verify.stderr + verify.stdoutText)
        let r = try Curl.run(["--cacert", "\(gen)/ca.pem", "--resolve", "api.demo.test:\(w.httpsPort):127.0.0.1",
                              "--cert", "\(gen)/client.pem", "--key", "\(gen)/client.key",
                              "https://api.demo.test:\(w.httpsPort)/echo"])
        XCTAssertEqual(r.status, 200, r.stderr)
        let xfcc = EchoedRequest(json: try r.json()).values("X-Forwarded-Client-Cert").first ?? ""
        XCTAssertTrue(xfcc.contains("URI=spiffe://demo.test/client"), xfcc)
        let rsa = try w.sClient(["-servername", "demo.test", "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256",
                                 "-cert", "\(gen)/client.pem", "-key", "\(gen)/client.key"])
        XCTAssertTrue(rsa.contains("Server public key is 2048 bit"), rsa)
    }

    func testSessionTicketsSurviveReload() throws {
        let w = try singleCertWorld(extra: "      session_tickets: on")
        _ = try w.sClient(["-servername", "site.test", "-sess_out", w.pki.file("sess.pem")])
        let reload = try w.reload()
        XCTAssertEqual(reload.status, 200, reload.body)
        let again = try w.sClient(["-servername", "site.test", "-sess_in", w.pki.file("sess.pem")])
        XCTAssertTrue(again.contains("Reused, TLSv1.3"), again)
    }
}
