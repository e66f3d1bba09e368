import Yams

/// `jwt:` policies and their JWKS file (read at load time, so `edge validate`
/// reports a bad key file as `file:line: field: problem`).
extension ConfigLoader {
    static let jwtFields = ["jwks_file", "issuer", "audiences", "algorithms", "consumer_claim", "forward_claims", "leeway"]
    static let maxForwardClaims = 4

    static func parseJWTPolicy(_ node: ConfigNode) throws(ConfigError) -> JWTPolicyConfig {
        let m = try node.mapping(allowed: jwtFields)
        let fileNode = try m.required("jwks_file")
        let file = try fileNode.nonEmptyString()
        let path = file.hasPrefix("/") ? file : directory(of: node.file) + file
        let text: String
        do { text = try readFile(path) } catch { throw fileNode.error("cannot read '\(path)': \(error.message)") }
        let keys = try parseJWKS(text, fileNode)
        let algNode = try m.required("algorithms")
        var algorithms: [String] = []
        for a in try algNode.list() {
            let name = try a.nonEmptyString()
            guard JWTAlgorithm.allCases.contains(where: { "\($0.name)" == name }) else {
                throw a.error("unknown algorithm '\(name)', expected one of: \(JWTAlgorithm.allCases.map { "\($0.name)" }.joined(separator: ", ")) ('none' is never accepted)")
            }
            algorithms.append(name)
        }
        guard !algorithms.isEmpty else { throw algNode.error("list the algorithms tokens may use") }
        var p = JWTPolicyConfig(jwksFile: path, keys: keys, algorithms: algorithms)
        if let n = m.optional("issuer") { p.issuer = try n.nonEmptyString() }
        if let n = m.optional("audiences") { p.audiences = try n.list().map { (x: ConfigNode) throws(ConfigError) in try x.nonEmptyString() } }
        if let n = m.optional("consumer_claim") { p.consumerClaim = try n.nonEmptyString() }
        if let n = m.optional("leeway") { p.leewaySeconds = try n.durationMs(min: 0) / 1000 }
        if let n = m.optional("forward_claims") {
            guard case .mapping(let map) = n.node else { throw n.error("expected a mapping of claim: Header-Name") }
            for (k, v) in map {
                let keyNode = ConfigNode(node: k, path: n.path, file: n.file)
                let claim = try keyNode.nonEmptyString()
                let valueNode = ConfigNode(node: v, path: "\(n.path).\(claim)", file: n.file, keyLine: keyNode.line)
                let header = try valueNode.nonEmptyString()
                try headerName(header, valueNode)
                p.forwardClaims.append((claim, header))
            }
            let distinct = Set(p.forwardClaims.map(\.0) + (p.consumerClaim.map { [$0] } ?? []))
            guard distinct.count <= maxForwardClaims else { throw n.error("at most \(maxForwardClaims) distinct claims (consumer_claim included)") }
        }
        for name in algorithms {
            guard keys.contains(where: { JWTKeyUse.fits($0, name) }) else {
                throw algNode.error("no key in '\(file)' can verify \(name)")
            }
        }
        return p
    }

    static func directory(of file: String) -> String {
        guard let slash = file.lastIndex(of: "/") else { return "" }
        return String(file[...slash])
    }

    /// `{"keys": [ {kty, kid, alg, n, e | crv, x, y | k}, ... ]}`.
    static func parseJWKS(_ text: String, _ at: ConfigNode) throws(ConfigError) -> [JWKConfig] {
        let root: Any?
        do { root = try Yams.load(yaml: text) } catch { throw at.error("the JWKS file is not valid JSON") }
        guard let doc = root as? [String: Any], let list = doc["keys"] as? [Any] else {
            throw at.error("the JWKS file needs {\"keys\": [...]}")
        }
        var out: [JWKConfig] = []
        for (i, item) in list.enumerated() {
            guard let k = item as? [String: Any], let kty = k["kty"] as? String else { throw at.error("JWKS key \(i): missing 'kty'") }
            func bytes(_ field: String) throws(ConfigError) -> [UInt8] {
                guard let s = k[field] as? String, !s.isEmpty else { throw at.error("JWKS key \(i): missing '\(field)'") }
                let src = Array(s.utf8)
                var dst = [UInt8](repeating: 0, count: src.count)
                let n = src.withUnsafeBytes { s in dst.withUnsafeMutableBytes { Base64URL.decode(s, into: $0) } }
                guard let n else { throw at.error("JWKS key \(i): '\(field)' is not base64url") }
                return Array(dst[0..<n])
            }
            let kind: JWKConfig.Kind
            switch kty {
            case "RSA": kind = .rsa(n: try bytes("n"), e: try bytes("e"))
            case "EC":
                let crv = k["crv"] as? String ?? ""
                guard crv == "P-256" || crv == "P-384" else { throw at.error("JWKS key \(i): EC curve must be P-256 or P-384, got '\(crv)'") }
                kind = .ec(curve: crv, x: try bytes("x"), y: try bytes("y"))
            case "OKP":
                guard (k["crv"] as? String) == "Ed25519" else { throw at.error("JWKS key \(i): OKP keys must be Ed25519") }
                kind = .ed25519(x: try bytes("x"))
            case "oct": kind = .oct(k: try bytes("k"))
            default: throw at.error("JWKS key \(i): unsupported kty '\(kty)' (RSA, EC, OKP, oct)")
            }
            out.append(JWKConfig(kid: k["kid"] as? String, alg: k["alg"] as? String, kind: kind))
        }
        guard !out.isEmpty else { throw at.error("the JWKS file has no keys") }
        return out
    }
}

/// Which algorithms a key may verify. Keys never cross families: an RSA or EC
/// public key is never an HMAC secret (the HS/RS confusion attack).
enum JWTKeyUse {
    static func fits(_ key: JWKConfig, _ alg: String) -> Bool {
        if let own = key.alg, own != alg { return false }
        switch key.kind {
        case .rsa: return ["RS256", "RS384", "RS512", "PS256"].contains(alg)
        case .ec(let curve, _, _): return (curve == "P-256" && alg == "ES256") || (curve == "P-384" && alg == "ES384")
        case .ed25519: return alg == "EdDSA"
        case .oct: return ["HS256", "HS384", "HS512"].contains(alg)
        }
    }
}
