// Upstream TLS: clusters with `tls:` in front of a real nginx HTTPS origin,
// verification on (right CA, wrong CA), pooled TLS connections.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class TLSUpstreamTests: TLSTestCase {
    private var nginx: ManagedProcess?

    override func tearDown() {
        nginx?.signal(SIGQUIT)
        if nginx?.wait(timeout: 5) == nil { nginx?.stop() }
        nginx = nil
        super.tearDown()
    }

    func testClusterTLSVerifiesTheUpstreamAndPoolsConnections() throws {
        guard let nginxBin = Paths.which("nginx") else { throw XCTSkip("nginx is not installed (make deps installs it)") }
        let originPort = try Ports.free(), expiredPort = try Ports.free()
        let w = try startWorld(tlsBlock: { _ in
            """
                  certificates:
                    - { cert: certs/origin.pem, key: certs/origin.key }
            """
        }, prepare: { pki in
            try pki.leaf("origin", cn: "/CN=origin.test", sans: "DNS:origin.test")
            try pki.leaf("expired", cn: "/CN=origin.test", sans: "DNS:origin.test", days: -1)
        })
        // The origin: nginx over TLS, answering with what it saw.
        let ngDir = w.harness.dir.appendingPathComponent("nginx")
        try FileManager.default.createDirectory(at: ngDir, withIntermediateDirectories: true)
        let conf = """
            daemon off; master_process off; worker_processes 1;
            pid \(ngDir.path)/nginx.pid; error_log \(ngDir.path)/error.log warn;
            events { worker_connections 256; }
            http {
              access_log off;
              client_body_temp_path \(ngDir.path)/b; proxy_temp_path \(ngDir.path)/p; fastcgi_temp_path \(ngDir.path)/f;
              uwsgi_temp_path \(ngDir.path)/u; scgi_temp_path \(ngDir.path)/s;
              server {
                listen 127.0.0.1:\(originPort) ssl;
                ssl_certificate \(w.pki.file("origin.pem")); ssl_certificate_key \(w.pki.file("origin.key"));
                location / { default_type text/plain; return 200 "origin conn=$connection sni=$ssl_server_name proto=$http_x_forwarded_proto reused=$ssl_session_reused\\n"; }
              }
              server {
                listen 127.0.0.1:\(expiredPort) ssl;
                ssl_certificate \(w.pki.file("expired.pem")); ssl_certificate_key \(w.pki.file("expired.key"));
                location / { return 200 "should never be reached\\n"; }
              }
            }
            """
        try conf.write(toFile: ngDir.appendingPathComponent("nginx.conf").path, atomically: true, encoding: .utf8)
        nginx = try ManagedProcess(name: "nginx", executable: nginxBin,
                                   arguments: ["-p", ngDir.path, "-c", ngDir.appendingPathComponent("nginx.conf").path], dir: ngDir)
        let deadline = OS.now() + 10
        while Ports.connectErrno(originPort) != 0 && OS.now() < deadline { OS.sleepMs(50) }

        // Clusters: verified with the right CA, and with an unrelated CA.
        let config = w.config()
            .replacingOccurrences(of: "      - match: { path_prefix: \"/\" }\n        cluster: up\n  - name: web",
                                  with: "      - match: { path_prefix: \"/fresh\" }\n        cluster: fresh\n      - match: { path_prefix: \"/wrong\" }\n        cluster: wrongca\n      - match: { path_prefix: \"/expired\" }\n        cluster: expired\n      - match: { path_prefix: \"/\" }\n        cluster: origin\n  - name: web")
            + """
              - name: origin
                endpoints: [ "127.0.0.1:\(originPort)" ]
                tls: { server_name: origin.test, ca: certs/ca.pem, verify: true }
              - name: wrongca
                endpoints: [ "127.0.0.1:\(originPort)" ]
                tls: { server_name: origin.test, ca: certs/other-ca.pem }
              - name: fresh
                endpoints: [ "127.0.0.1:\(originPort)" ]
                max_idle: 0
                tls: { server_name: origin.test, ca: certs/ca.pem }
              - name: expired
                endpoints: [ "127.0.0.1:\(expiredPort)" ]
                tls: { server_name: origin.test, ca: certs/ca.pem }
            """ + "\n"
        try config.write(toFile: w.configPath, atomically: true, encoding: .utf8)
        let r = try Curl.run(["-X", "POST", "http://127.0.0.1:\(w.adminPort)/reload"], timeout: 20)
        XCTAssertEqual(r.status, 200, r.bodyText)

        let first = try w.curl("a.test", "/x", ["-k"])
        XCTAssertEqual(first.status, 200, first.stderr + first.bodyText)
        XCTAssertTrue(first.bodyText.contains("sni=origin.test proto=https"), first.bodyText)
        let second = try w.curl("a.test", "/y", ["-k"])
        // The same pooled TLS connection to the origin serves both.
        let conn = { (s: String) in s.components(separatedBy: " ").first { $0.hasPrefix("conn=") } ?? "?" }
        XCTAssertEqual(conn(first.bodyText), conn(second.bodyText), "\(first.bodyText) / \(second.bodyText)")

        // Without pooling every request opens a connection: they resume the worker's session.
        var bodies: [String] = []
        for i in 0..<3 { bodies.append(try w.curl("a.test", "/fresh/\(i)", ["-k"]).bodyText) }
        XCTAssertTrue(bodies.dropFirst().contains { $0.contains("reused=r") }, "\(bodies)")
        XCTAssertGreaterThanOrEqual(try w.metrics().filter { $0.key.hasPrefix("edge_tls_upstream_resumed_total") }.map(\.value).reduce(0, +), 1)

        let wrong = try w.curl("a.test", "/wrong", ["-k"])
        XCTAssertEqual(wrong.status, 502, wrong.bodyText)
        XCTAssertEqual(wrong.header("x-edge-error"), "upstream_tls_failure")
        let expired = try w.curl("a.test", "/expired", ["-k"])
        XCTAssertEqual(expired.status, 502, expired.bodyText)
        XCTAssertEqual(expired.header("x-edge-error"), "upstream_tls_failure")
        // Still serving.
        XCTAssertEqual(try w.curl("a.test", "/z", ["-k"]).status, 200)
    }
}
