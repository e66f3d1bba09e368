// Helpers for the TLS integration tests: certificates made with the openssl
// CLI in a temp dir, an HTTPS listener config, and clients (curl, openssl
// s_client, python ssl) run against the real edge binary.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A CA plus leaf certificates, written with the openssl CLI.
struct TestPKI {
    let dir: URL
    var path: String { dir.path }
    func file(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// `ca.pem`/`ca.key` (and `other-ca.*`, an unrelated CA for negative cases).
    static func create(in dir: URL) throws -> TestPKI {
        let pki = TestPKI(dir: dir)
        try pki.sh("""
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 30 -subj '/CN=Edge Test CA'
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other-ca.key -out other-ca.pem -days 30 -subj '/CN=Other CA'
            """)
        return pki
    }

    /// A leaf `NAME.pem`/`NAME.key` signed by `ca` (ECDSA P-256, or RSA-2048 when `rsa`).
    /// `days: -1` makes a certificate that expired yesterday.
    func leaf(_ name: String, cn: String, sans: String, rsa: Bool = false, ca: String = "ca", clientAuth: Bool = false, days: Int = 30) throws {
        let key = rsa ? "-newkey rsa:2048" : "-newkey ec -pkeyopt ec_paramgen_curve:P-256"
        let usage = clientAuth ? "extendedKeyUsage=clientAuth" : "extendedKeyUsage=serverAuth"
        try sh("""
            openssl req \(key) -nodes -keyout \(name).key -out \(name).csr -subj '\(cn)'
            printf 'subjectAltName=\(sans)\\n\(usage)\\n' > \(name).ext
            openssl x509 -req -in \(name).csr -CA \(ca).pem -CAkey \(ca).key -set_serial 0x$(openssl rand -hex 8) -out \(name).pem -days \(days) -extfile \(name).ext
            """)
    }

    /// Serial number of a certificate file, as openssl prints it (hex, upper case).
    func serial(_ name: String) throws -> String {
        let r = try sh("openssl x509 -in \(name).pem -noout -serial")
        return r.stdoutText.replacingOccurrences(of: "serial=", with: "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// SHA-256 of the certificate's DER encoding, lower-case hex (the XFCC Hash).
    func derSHA256(_ name: String) throws -> String {
        let r = try sh("openssl x509 -in \(name).pem -outform der | sha256sum | cut -d' ' -f1")
        return r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @discardableResult
    func sh(_ script: String, timeout: Double = 60) throws -> CommandResult {
        let r = try runShell("set -e; cd '\(path)'; " + script, timeout: timeout)
        guard r.status == 0 else { throw HarnessError("openssl setup failed (\(r.status)):\n\(script)\n\(r.stderr)") }
        return r
    }
}

/// One HTTPS test world: the Python upstream, an edge with an HTTPS listener
/// (and a plain one), generated certificates.
final class TLSWorld {
    let harness: EdgeHarness
    let pki: TestPKI
    let httpsPort: UInt16
    var tlsBlock: String

    init(tlsBlock makeBlock: (TestPKI) throws -> String, prepare: (TestPKI) throws -> Void,
         environment: [String: String] = [:]) throws {
        var options = EdgeOptions()
        options.environment = environment
        harness = try EdgeHarness(options: options)
        let certDir = harness.dir.appendingPathComponent("certs")
        try FileManager.default.createDirectory(at: certDir, withIntermediateDirectories: true)
        pki = try TestPKI.create(in: certDir)
        try prepare(pki)
        httpsPort = try Ports.free()
        tlsBlock = try makeBlock(pki)
    }

    var adminPort: UInt16 { harness.adminPort }
    var configPath: String { harness.configPath }

    func config() -> String {
        """
        runtime: { workers: 1 }
        admin: { address: "127.0.0.1:\(harness.adminPort)" }
        listeners:
          - name: websecure
            address: "127.0.0.1:\(httpsPort)"
            protocol: https
            tls:
        \(tlsBlock)
            routes:
              - match: { path: "/direct" }
                direct_response: { status: 200, body: "direct over tls\\n" }
              - match: { path_prefix: "/" }
                cluster: up
          - name: web
            address: "127.0.0.1:\(harness.listenPort)"
            routes:
              - match: { path_prefix: "/" }
                cluster: up
        clusters:
          - name: up
            endpoints: [ "127.0.0.1:\(harness.upstreamPort)" ]
        """ + "\n"
    }

    func start() throws {
        try harness.startUpstream()
        try config().write(toFile: configPath, atomically: true, encoding: .utf8)
        try harness.startEdge(binary: try Paths.edgeBinary())
    }

    /// Rewrites the config (same ports) and reloads through the admin API.
    func reload() throws -> (status: Int, body: String) {
        try config().write(toFile: configPath, atomically: true, encoding: .utf8)
        let r = try Curl.run(["-X", "POST", "http://127.0.0.1:\(harness.adminPort)/reload"], timeout: 20)
        return (r.status, r.bodyText)
    }

    /// curl to `host` over HTTPS (resolved to loopback), verifying against the test CA.
    func curl(_ host: String, _ path: String, _ extra: [String] = []) throws -> CurlResult {
        try Curl.run(["--cacert", pki.file("ca.pem"), "--resolve", "\(host):\(httpsPort):127.0.0.1",
                      "-v", "https://\(host):\(httpsPort)\(path)"] + extra, timeout: 20)
    }

    /// openssl s_client with `args`; stdin stays open for `holdSeconds` so
    /// post-handshake messages (TLS 1.3 tickets) are read before it exits.
    func sClient(_ args: [String], holdSeconds: Double = 1) throws -> String {
        let quoted = args.map { "'\($0)'" }.joined(separator: " ")
        let r = try runShell("(sleep \(holdSeconds)) | timeout 10 openssl s_client -connect 127.0.0.1:\(httpsPort) \(quoted) 2>&1", timeout: 20)
        return r.stdoutText
    }

    func metrics() throws -> [String: Double] { EdgeHarness.parseMetrics(try harness.metricsText()) }

    /// Sum over workers of a TLS failure reason.
    func failures(_ reason: String) throws -> Double {
        try metrics().filter { $0.key.hasPrefix("edge_tls_handshake_failures_total{") && $0.key.contains("reason=\"\(reason)\"") }
            .map(\.value).reduce(0, +)
    }

    func stop() { harness.stop() }
}

/// Base class for TLS tests: stops the world in tearDown, prints diagnostics on failure.
class TLSTestCase: XCTestCase {
    var world: TLSWorld?

    func startWorld(tlsBlock: @escaping (TestPKI) throws -> String, prepare: (TestPKI) throws -> Void,
                    environment: [String: String] = [:]) throws -> TLSWorld {
        _ = try Paths.require("openssl")
        _ = try Paths.require("curl")
        let w = try TLSWorld(tlsBlock: tlsBlock, prepare: prepare, environment: environment)
        world = w
        try w.start()
        return w
    }

    /// Two server names (a.test ECDSA + RSA, b.test with a wildcard) and a client certificate.
    func standardWorld(extraTLS: String = "") throws -> TLSWorld {
        try startWorld(tlsBlock: { pki in
            """
                  certificates:
                    - { cert: \(pki.file("a.pem")), key: \(pki.file("a.key")) }
                    - { cert: \(pki.file("a-rsa.pem")), key: \(pki.file("a-rsa.key")) }
                    - { cert: \(pki.file("b.pem")), key: \(pki.file("b.key")), server_names: ["b.test", "*.b.test"] }
                  alpn: [http/1.1]
                  session_tickets: on
                  handshake_timeout: 10s
            \(extraTLS)
            """
        }, prepare: { pki in
            try pki.leaf("a", cn: "/CN=a.test", sans: "DNS:a.test")
            try pki.leaf("a-rsa", cn: "/CN=a.test", sans: "DNS:a.test", rsa: true)
            try pki.leaf("b", cn: "/CN=b.test", sans: "DNS:b.test,DNS:*.b.test")
            try pki.leaf("client", cn: "/O=Edge/CN=client1", sans: "URI:spiffe://edge.test/client1", clientAuth: true)
            try pki.leaf("stranger", cn: "/CN=stranger", sans: "URI:spiffe://other/stranger", ca: "other-ca", clientAuth: true)
        })
    }

    override func tearDown() {
        if let w = world {
            w.stop()
            if (testRun?.totalFailureCount ?? 0) > 0 {
                print("=== \(name) failed ===\n--- config ---\n\(w.harness.configText)\n\(w.harness.diagnostics())")
            } else {
                w.harness.cleanup()
            }
        }
        world = nil
    }
}

extension CurlResult {
    /// The served certificate's subject from curl -v ("CN=a.test").
    var servedSubject: String? {
        for line in stderr.components(separatedBy: "\n") where line.contains("subject:") {
            return line.components(separatedBy: "subject:").last?.trimmingCharacters(in: .whitespaces)
        }
        return nil
    }
}
