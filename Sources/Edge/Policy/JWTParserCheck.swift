/// Drives the JWT parser over arbitrary bytes and checks its invariants
/// (for Fuzz/FuzzJWT through EdgeTestSupport, and unit tests). Returns the
/// broken invariant, nil when all hold. Never traps on input.
package enum JWTParserCheck {
    package static func check(_ token: UnsafeRawBufferPointer) -> String? {
        guard let parts = JWTParts.split(token) else { return nil }
        guard let base = token.baseAddress,
              parts.header.baseAddress == base,
              parts.header.count + 1 + parts.payload.count + 1 + parts.signature.count == token.count,
              parts.signingInput.count == parts.header.count + 1 + parts.payload.count else {
            return "split: parts do not tile the token"
        }
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { scratch.deallocate() }
        var claims = JWTClaims()
        if let n = Base64URL.decode(parts.header, into: scratch) {
            guard n <= scratch.count, n <= parts.header.count * 3 / 4 + 1 else { return "base64url: decoded length \(n) too large" }
            let json = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(scratch)[0..<n])
            if claims.readHeader(json) && claims.algorithm == nil { return "header accepted without an algorithm" }
            if claims.kid.count > 0, let k = claims.kid.baseAddress, let j = json.baseAddress,
               k < j || k + claims.kid.count > j + json.count { return "kid outside the header" }
        }
        if let n = Base64URL.decode(parts.payload, into: scratch) {
            let json = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(scratch)[0..<n])
            let names = ["sub", "role"].map { s -> StaticBytes in
                let p = UnsafeMutableRawPointer.allocate(byteCount: s.utf8.count, alignment: 1)
                s.utf8.enumerated().forEach { p.storeBytes(of: $0.element, toByteOffset: $0.offset, as: UInt8.self) }
                return StaticBytes(base: UnsafeRawPointer(p), count: s.utf8.count)
            }
            defer { for n in names { UnsafeMutableRawPointer(mutating: n.base)?.deallocate() } }
            var found: (UnsafeRawBufferPointer?, UnsafeRawBufferPointer?, UnsafeRawBufferPointer?, UnsafeRawBufferPointer?) = (nil, nil, nil, nil)
            let ok = names.withUnsafeBufferPointer { claims.readPayload(json, wanted: $0, found: &found) }
            for f in [found.0, found.1, claims.iss, claims.aud?.bytes] {
                guard let f, f.count > 0, let p = f.baseAddress, let j = json.baseAddress else { continue }
                if p < j || p + f.count > j + json.count { return "claim outside the payload" }
            }
            if ok { _ = names.withUnsafeBufferPointer { claims.audienceMatches($0) } }
        }
        return nil
    }
}
