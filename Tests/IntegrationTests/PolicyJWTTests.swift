// JWT authentication through the real edge binary: tokens and the JWKS file
// are made by PyJWT + cryptography (jwttool.py). Valid tokens of every
// algorithm pass (and pass again from the worker's cache); expired, not yet
// valid, wrong issuer/audience, bad signature, `alg: none` and HS/RS key
// confusion get 401; claims are forwarded and client copies stripped.

import Foundation
import XCTest

final class PolicyJWTTests: L4TestCase {
    private var port: UInt16 = 0
    private var tokens: [String: String] = [:]

    private func startGateway() throws {
        let py = try Paths.require("python3")
        let tool = Paths.repoRoot.appendingPathComponent("Tests/IntegrationTests/jwttool.py").path
        let r = try runCommand(py, [tool, "make", w.dir.path], timeout: 60)
        guard r.status == 0, let data = r.stdoutText.data(using: .utf8),
              let t = try JSONSerialization.jsonObject(with: data) as? [String: String] else {
            throw HarnessError("jwttool.py failed (needs PyJWT + cryptography: make deps): \(r.stderr)")
        }
        tokens = t
        let up = try w.port()
        port = try w.port()
        try w.startUpstreamPy(port: up)
        try w.startEdge(w.head + """
            consumers:
              - name: alice
                groups: [ engineering ]
              - name: carl
                groups: [ sales ]
            policies:
              - name: jwt
                jwt: { jwks_file: jwks.json, issuer: "https://id.example", audiences: [api],
                       algorithms: [RS256, PS256, ES256, ES384, EdDSA, HS256], consumer_claim: sub,
                       forward_claims: { sub: X-User-Id, role: X-Role } }
              - { name: eng-only, acl: { allow_groups: [engineering] } }
            listeners:
              - name: web
                address: "127.0.0.1:\(port)"
                protocol: http
                routes:
                  - match: { path_prefix: "/jwt/" }
                    cluster: up
                    prefix_rewrite: "/"
                    policies: [ jwt ]
                  - match: { path_prefix: "/eng/" }
                    cluster: up
                    prefix_rewrite: "/"
                    policies: [ jwt, eng-only ]
            clusters:

            """ + cluster("up", [up]))
    }

    private func get(_ path: String, token: String?, _ extra: [String] = []) throws -> CurlResult {
        var args = extra
        if let token { args += ["-H", "Authorization: Bearer \(token)"] }
        return try Curl.run(args + ["http://127.0.0.1:\(port)\(path)"], timeout: 20)
    }

    private func token(_ name: String) throws -> String {
        guard let t = tokens[name] else { throw HarnessError("jwttool.py made no '\(name)' token") }
        return t
    }

    func testValidTokensOfEveryAlgorithmPassAndForwardClaims() throws {
        try startGateway()
        for name in ["rs256", "ps256", "es256", "es384", "eddsa", "hs256", "no_kid", "aud_list"] {
            // Twice: the second answer comes from the worker's verified-token cache.
            for attempt in 0..<2 {
                let r = try get("/jwt/echo", token: try token(name), ["-H", "X-User-Id: mallory"])
                XCTAssertEqual(r.status, 200, "\(name) attempt \(attempt): \(r.headers)")
                guard r.status == 200 else { continue }
                let e = EchoedRequest(json: try r.json())
                XCTAssertEqual(e.values("X-User-Id"), ["alice"], "\(name): the claim is forwarded, the client's copy dropped")
                XCTAssertEqual(e.values("X-Role"), ["admin"], name)
                XCTAssertEqual(e.values("X-Consumer"), ["alice"], "\(name): consumer_claim names the consumer")
            }
        }
    }

    func testRefusedTokensGet401() throws {
        try startGateway()
        let none = try get("/jwt/echo", token: nil)
        XCTAssertEqual(none.status, 401, none.headers)
        XCTAssertEqual(none.header("x-edge-error"), "auth_required")
        XCTAssertEqual(none.header("WWW-Authenticate"), "Bearer realm=\"edge\"")
        for name in ["expired", "not_yet", "wrong_iss", "wrong_aud", "bad_signature", "alg_none",
                     "confusion_pem", "confusion_n", "rs512_not_allowed"] {
            for attempt in 0..<2 {
                let r = try get("/jwt/echo", token: try token(name))
                XCTAssertEqual(r.status, 401, "\(name) attempt \(attempt) must be refused: \(r.headers)")
                XCTAssertEqual(r.header("x-edge-error"), "auth_invalid", name)
            }
        }
        XCTAssertEqual(try get("/jwt/echo", token: "not.a.token").status, 401)
        XCTAssertEqual(try get("/jwt/echo", token: "e30.e30.").status, 401, "{}.{} with an empty signature")
        // A valid token still passes after all that (the cache held no refusals).
        XCTAssertEqual(try get("/jwt/echo", token: try token("rs256")).status, 200)
    }

    func testACLOnTheConsumerNamedByTheToken() throws {
        try startGateway()
        XCTAssertEqual(try get("/eng/echo", token: try token("rs256")).status, 200)
        let bob = try get("/eng/echo", token: try token("bob"))
        XCTAssertEqual(bob.status, 403, "bob is no consumer: authenticated, but not in engineering: \(bob.headers)")
        let bobOpen = try get("/jwt/echo", token: try token("bob"))
        XCTAssertEqual(bobOpen.status, 200, bobOpen.headers)
        let e = EchoedRequest(json: try bobOpen.json())
        XCTAssertEqual(e.values("X-User-Id"), ["bob"])
        XCTAssertEqual(e.values("X-Consumer"), [], "no consumer named bob: no X-Consumer")
    }
}
