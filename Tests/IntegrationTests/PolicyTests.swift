// Gateway policies through the real edge binary and real clients: API keys,
// basic auth against `htpasswd -B` (apache2-utils) bcrypt hashes, ACLs, CORS
// preflights from curl, IP rules on PROXY-protocol addresses, local rate
// limits and security headers. Upstream: upstream.py /echo, which returns the
// request headers it received (so identity forwarding is checked too).

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class PolicyTests: L4TestCase {
    private var port: UInt16 = 0
    private var ppPort: UInt16 = 0

    /// `htpasswd -nbB -C 5 user password` → the `$2y$05$...` hash.
    private func bcryptHash(_ user: String, _ password: String) throws -> String {
        let htpasswd = try Paths.require("htpasswd")
        let r = try runCommand(htpasswd, ["-nbB", "-C", "5", user, password], timeout: 30)
        let line = r.stdoutText.split(separator: "\n").first.map(String.init) ?? ""
        guard r.status == 0, let colon = line.firstIndex(of: ":") else { throw HarnessError("htpasswd failed: \(r.stderr)") }
        let hash = String(line[line.index(after: colon)...])
        XCTAssertTrue(hash.hasPrefix("$2y$05$"), "htpasswd -B must make a bcrypt hash, got \(hash)")
        return hash
    }

    private func route(_ prefix: String, _ policies: String?) -> String {
        var s = """
                  - match: { path_prefix: "\(prefix)" }
                    cluster: up
                    prefix_rewrite: "/"

            """
        if let policies { s += "        policies: \(policies)\n" }
        return s
    }

    /// One config holding every policy; each route picks its chain.
    private func startGateway() throws {
        let up = try w.port()
        port = try w.port()
        ppPort = try w.port()
        try w.startUpstreamPy(port: up)
        let hash = try bcryptHash("carol", "s3cret-pass")
        try w.startEdge(w.head + """
            consumers:
              - name: alice
                api_keys: [ "k-alice-1" ]
                groups: [ engineering ]
              - name: bob
                api_keys: [ "k-bob-1" ]
                groups: [ sales ]
              - name: carol
                basic: { username: carol, password_hash: "\(hash)" }
                groups: [ engineering ]
              - name: dave
                hmac: { key_id: dave-key, secret: "dave-secret-0123456789" }
            policies:
              - { name: keys, api_key: { header: X-API-Key, query: api_key } }
              - { name: login, basic: { realm: "edge-test" } }
              - { name: signed, hmac: { clock_skew: 60s } }
              - { name: eng-only, acl: { allow_groups: [engineering] } }
              - { name: limited, rate_limit: { key: client_ip, rate: 5/h, burst: 5 } }
              - { name: office, ip: { allow: [ "10.0.0.0/8", "::1/128" ], deny: [ "10.9.0.0/16" ] } }
              - { name: cors, cors: { origins: [ "https://app.example" ], methods: [GET, POST], headers: [Authorization, X-API-Key], credentials: true, max_age: 600s } }
              - { name: secure, security_headers: { hsts: "max-age=31536000", frame_options: DENY, content_type_options: nosniff } }
            listeners:
              - name: web
                address: "127.0.0.1:\(port)"
                protocol: http
                policies: [ secure ]
                routes:

            """ + route("/keys/", "[ keys ]") + route("/basic/", "[ login ]") + route("/both/", "[ keys, login ]")
            + route("/eng/", "[ keys, eng-only ]") + route("/cors/", "[ cors, keys ]") + route("/limited/", "[ limited ]")
            + route("/signed/", "[ signed ]") + route("/open/", "[]") + route("/", nil) + """
              - name: pp
                address: "127.0.0.1:\(ppPort)"
                protocol: http
                proxy_protocol: accept
                policies: [ office ]
                routes:

            """ + route("/", nil) + "clusters:\n" + cluster("up", [up]))
    }

    private func curl(_ path: String, _ args: [String] = []) throws -> CurlResult {
        try Curl.run(args + ["http://127.0.0.1:\(port)\(path)"], timeout: 20)
    }

    private func echoed(_ r: CurlResult) throws -> EchoedRequest { EchoedRequest(json: try r.json()) }

    // MARK: API keys

    func testAPIKeyInHeaderOrQueryIdentifiesConsumer() throws {
        try startGateway()
        let none = try curl("/keys/echo")
        XCTAssertEqual(none.status, 401, none.headers)
        XCTAssertEqual(none.header("x-edge-error"), "auth_required")
        XCTAssertNotNil(none.header("WWW-Authenticate"), "a 401 names the scheme")

        let wrong = try curl("/keys/echo", ["-H", "X-API-Key: k-alice-2"])
        XCTAssertEqual(wrong.status, 401, wrong.headers)
        XCTAssertEqual(wrong.header("x-edge-error"), "auth_invalid")

        let ok = try curl("/keys/echo", ["-H", "X-API-Key: k-alice-1", "-H", "X-Consumer: mallory"])
        XCTAssertEqual(ok.status, 200, ok.headers + ok.bodyText)
        XCTAssertEqual(try echoed(ok).values("X-Consumer"), ["alice"], "the identity goes upstream; the client's copy is dropped")

        let query = try curl("/keys/echo?x=1&api_key=k-bob-1")
        XCTAssertEqual(query.status, 200, query.headers)
        XCTAssertEqual(try echoed(query).values("X-Consumer"), ["bob"])
    }

    // MARK: basic auth (htpasswd -B)

    func testBasicAuthAgainstHtpasswdBcryptHash() throws {
        try startGateway()
        let none = try curl("/basic/echo")
        XCTAssertEqual(none.status, 401, none.headers)
        XCTAssertEqual(none.header("WWW-Authenticate"), "Basic realm=\"edge-test\", charset=\"UTF-8\"")

        let wrong = try curl("/basic/echo", ["-u", "carol:wrong-pass"])
        XCTAssertEqual(wrong.status, 401, wrong.headers)
        XCTAssertEqual(wrong.header("x-edge-error"), "auth_invalid")
        let unknown = try curl("/basic/echo", ["-u", "dave:s3cret-pass"])
        XCTAssertEqual(unknown.status, 401, unknown.headers)

        // First request verifies with crypt_rn, the second hits the worker's cache: both must pass.
        for attempt in 0..<2 {
            let ok = try curl("/basic/echo", ["-u", "carol:s3cret-pass"])
            XCTAssertEqual(ok.status, 200, "attempt \(attempt): \(ok.headers)")
            XCTAssertEqual(try echoed(ok).values("X-Consumer"), ["carol"])
        }
        // A cached password never admits a different one.
        let after = try curl("/basic/echo", ["-u", "carol:s3cret-pasS"])
        XCTAssertEqual(after.status, 401, after.headers)
    }

    func testEitherAuthPolicyMayIdentify() throws {
        try startGateway()
        XCTAssertEqual(try curl("/both/echo", ["-H", "X-API-Key: k-bob-1"]).status, 200)
        XCTAssertEqual(try curl("/both/echo", ["-u", "carol:s3cret-pass"]).status, 200)
        let none = try curl("/both/echo")
        XCTAssertEqual(none.status, 401)
        XCTAssertTrue(none.header("WWW-Authenticate")?.hasPrefix("Basic") == true, none.headers)
    }

    // MARK: HMAC request signatures (signed by a Python client)

    static let hmacClient = #"""
    import base64, email.utils, hashlib, hmac, http.client, json, sys, time
    port = int(sys.argv[1])
    def send(method, path, key_id="dave-key", secret=b"dave-secret-0123456789", date=None, sign_path=None, body=None, sig=None):
        date = date or email.utils.formatdate(time.time(), usegmt=True)
        headers = {"Date": date}
        digest = ""
        if body is not None:
            digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
            headers["Digest"] = digest
        text = "\n".join([method, sign_path or path, date, digest])
        sig = sig or base64.b64encode(hmac.new(secret, text.encode(), hashlib.sha256).digest()).decode()
        headers["Authorization"] = f'HMAC key_id="{key_id}", signature="{sig}"'
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        consumer = json.loads(data).get("headers", []) if r.status == 200 else []
        consumer = [v for k, v in consumer if k.lower() == "x-consumer"]
        return {"status": r.status, "error": r.getheader("x-edge-error"), "consumer": consumer, "sig": sig, "date": date}
    out = {}
    out["valid"] = send("GET", "/signed/echo?a=1")
    out["replay"] = send("GET", "/signed/echo?a=1", date=out["valid"]["date"], sig=out["valid"]["sig"])
    out["post"] = send("POST", "/signed/echo", body=b'{"x":1}')
    out["wrong_secret"] = send("GET", "/signed/echo", secret=b"not-the-secret-000000")
    out["unknown_key"] = send("GET", "/signed/echo", key_id="eve")
    out["old_date"] = send("GET", "/signed/echo", date=email.utils.formatdate(time.time() - 3600, usegmt=True))
    out["other_path"] = send("GET", "/signed/echo?admin=1", sign_path="/signed/echo")
    print(json.dumps(out))
    """#

    func testHMACSignaturesFromAPythonClient() throws {
        try startGateway()
        let py = try Paths.require("python3")
        let r = try runCommand(py, ["-c", Self.hmacClient, String(port)], timeout: 60)
        guard r.status == 0, let o = try JSONSerialization.jsonObject(with: Data(r.stdoutText.utf8)) as? [String: [String: Any]] else {
            throw HarnessError("hmac client failed: \(r.stderr) \(r.stdoutText)")
        }
        func status(_ k: String) -> Int { o[k]?["status"] as? Int ?? -1 }
        XCTAssertEqual(status("valid"), 200, "\(o["valid"] ?? [:])")
        XCTAssertEqual(o["valid"]?["consumer"] as? [String], ["dave"])
        XCTAssertEqual(status("post"), 200, "a signed Digest header: \(o["post"] ?? [:])")
        for k in ["replay", "wrong_secret", "unknown_key", "old_date", "other_path"] {
            XCTAssertEqual(status(k), 401, "\(k): \(o[k] ?? [:])")
            XCTAssertEqual(o[k]?["error"] as? String, "auth_invalid", k)
        }
        let none = try curl("/signed/echo")
        XCTAssertEqual(none.status, 401)
        XCTAssertTrue(none.header("WWW-Authenticate")?.hasPrefix("HMAC") == true, none.headers)
    }

    // MARK: ACL

    func testACLAllowsOnlyListedGroups() throws {
        try startGateway()
        let alice = try curl("/eng/echo", ["-H", "X-API-Key: k-alice-1"])
        XCTAssertEqual(alice.status, 200, alice.headers)
        let bob = try curl("/eng/echo", ["-H", "X-API-Key: k-bob-1"])
        XCTAssertEqual(bob.status, 403, bob.headers)
        XCTAssertEqual(bob.header("x-edge-error"), "forbidden")
        XCTAssertEqual(try curl("/eng/echo").status, 401, "no credentials: authentication fails before the ACL")
    }

    // MARK: CORS

    func testCORSPreflightAnsweredAtTheEdge() throws {
        try startGateway()
        let pre = try curl("/cors/echo", ["-X", "OPTIONS", "-H", "Origin: https://app.example",
                                          "-H", "Access-Control-Request-Method: POST",
                                          "-H", "Access-Control-Request-Headers: x-api-key"])
        XCTAssertEqual(pre.status, 204, "a preflight needs no API key: \(pre.headers)")
        XCTAssertEqual(pre.header("Access-Control-Allow-Origin"), "https://app.example")
        XCTAssertEqual(pre.header("Access-Control-Allow-Methods"), "GET, POST")
        XCTAssertEqual(pre.header("Access-Control-Allow-Headers"), "Authorization, X-API-Key")
        XCTAssertEqual(pre.header("Access-Control-Allow-Credentials"), "true")
        XCTAssertEqual(pre.header("Access-Control-Max-Age"), "600")
        XCTAssertTrue(pre.header("Vary")?.contains("Origin") == true, pre.headers)

        let foreign = try curl("/cors/echo", ["-X", "OPTIONS", "-H", "Origin: https://evil.example",
                                              "-H", "Access-Control-Request-Method: POST"])
        XCTAssertEqual(foreign.status, 403, foreign.headers)
        XCTAssertEqual(foreign.header("x-edge-error"), "cors_origin_forbidden")
        XCTAssertNil(foreign.header("Access-Control-Allow-Origin"))

        let badMethod = try curl("/cors/echo", ["-X", "OPTIONS", "-H", "Origin: https://app.example",
                                                "-H", "Access-Control-Request-Method: DELETE"])
        XCTAssertEqual(badMethod.status, 403, badMethod.headers)

        let actual = try curl("/cors/echo", ["-H", "Origin: https://app.example", "-H", "X-API-Key: k-alice-1"])
        XCTAssertEqual(actual.status, 200, actual.headers)
        XCTAssertEqual(actual.header("Access-Control-Allow-Origin"), "https://app.example")
        XCTAssertEqual(actual.header("Access-Control-Allow-Credentials"), "true")
        XCTAssertTrue(actual.header("Vary")?.contains("Origin") == true, actual.headers)

        // Per the Fetch spec a foreign origin's actual request just gets no CORS headers.
        let other = try curl("/cors/echo", ["-H", "Origin: https://evil.example", "-H", "X-API-Key: k-alice-1"])
        XCTAssertEqual(other.status, 200, other.headers)
        XCTAssertNil(other.header("Access-Control-Allow-Origin"), other.headers)
    }

    // MARK: IP rules on PROXY-protocol addresses

    private func viaProxy(_ header: String) throws -> HTTPResponse {
        let c = try RawClient(port: ppPort, timeout: 10)
        defer { c.close() }
        try c.send(Array(header.utf8) + Array("GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        return try c.readResponse()
    }

    func testIPRulesUseTheProxyProtocolClientAddress() throws {
        try startGateway()
        let allowed = try viaProxy("PROXY TCP4 10.1.2.3 127.0.0.1 4000 80\r\n")
        XCTAssertEqual(allowed.status, 200, allowed.summary)
        let outside = try viaProxy("PROXY TCP4 203.0.113.7 127.0.0.1 4000 80\r\n")
        XCTAssertEqual(outside.status, 403, outside.summary)
        XCTAssertEqual(outside.header("x-edge-error"), "ip_forbidden")
        let denied = try viaProxy("PROXY TCP4 10.9.4.4 127.0.0.1 4000 80\r\n")
        XCTAssertEqual(denied.status, 403, "deny wins over allow: \(denied.summary)")
        let v6 = try viaProxy("PROXY TCP6 ::1 ::1 4000 80\r\n")
        XCTAssertEqual(v6.status, 200, v6.summary)
        let v6Other = try viaProxy("PROXY TCP6 2001:db8::1 ::1 4000 80\r\n")
        XCTAssertEqual(v6Other.status, 403, v6Other.summary)
    }

    // MARK: rate limits

    func testRateLimitAnswers429WithHeaders() throws {
        try startGateway()
        var statuses: [Int] = []
        var remaining: [String] = []
        var last: CurlResult? = nil
        for _ in 0..<8 {
            let r = try curl("/limited/echo")
            statuses.append(r.status)
            if r.status == 200 { remaining.append(r.header("RateLimit-Remaining") ?? "?") }
            last = r
        }
        XCTAssertEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429], "burst 5, refill 5/h")
        XCTAssertEqual(remaining, ["4", "3", "2", "1", "0"])
        guard let limited = last else { return }
        XCTAssertEqual(limited.header("x-edge-error"), "rate_limited")
        XCTAssertEqual(limited.header("RateLimit-Limit"), "5")
        XCTAssertEqual(limited.header("RateLimit-Remaining"), "0")
        let retry = Int(limited.header("Retry-After") ?? "") ?? 0
        XCTAssertTrue(retry > 700 && retry <= 721, "one token per 720 s (rounded up): Retry-After \(retry)")
        XCTAssertEqual(try curl("/open/echo").status, 200, "other routes are not limited")
    }

    // MARK: security headers and the listener default

    func testSecurityHeadersFromTheListenerDefault() throws {
        try startGateway()
        let r = try curl("/echo")
        XCTAssertEqual(r.status, 200, r.headers)
        XCTAssertEqual(r.header("Strict-Transport-Security"), "max-age=31536000")
        XCTAssertEqual(r.header("X-Frame-Options"), "DENY")
        XCTAssertEqual(r.header("X-Content-Type-Options"), "nosniff")
        let open = try curl("/open/echo", ["-H", "X-Consumer: mallory"])
        XCTAssertEqual(open.status, 200, open.headers)
        XCTAssertNil(open.header("X-Frame-Options"), "policies: [] opts a route out of the listener default")
        XCTAssertEqual(try echoed(open).values("X-Consumer"), ["mallory"], "a route without policies forwards headers untouched")
    }
}
