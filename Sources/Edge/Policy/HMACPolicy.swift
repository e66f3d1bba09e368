import Glibc
import Protocols

/// Authentication by request signature:
///   Authorization: HMAC key_id="alice", signature="<base64 HMAC-SHA256>"
/// over `METHOD\npath[?query]\nDate\nDigest` (the `Date` header, IMF-fixdate,
/// within `clock_skew` of now; the `Digest` header value or empty). Edge signs
/// the Digest header as sent and does not hash the body itself. A signature
/// is accepted once per worker while it is within the skew window (replay guard).
extension Reactor {
    static let dateHeader = StaticBytes.literal("date")
    static let digestHeader = StaticBytes.literal("digest")

    func authenticateHMAC(_ xi: Int, _ hot: PolicyHot, _ p: Int, _ req: RequestView) -> AuthOutcome {
        guard p >= 0, p < hot.hmacSkew.count, index < hot.workers.count,
              let v = policyHeader(req, Reactor.authorizationHeader), PolicyHash.hasPrefixIgnoringCase(v, "hmac ") else { return .absent }
        guard let creds = HMACCredentials.parse(v) else { return .invalid }
        let consumer = PolicyHash.lookup(hot.hmacSlots, creds.keyID, seed: hot.hashSeed)
        guard consumer >= 0, Int(consumer) < hot.consumers.count else { return .invalid }
        let secret = hot.consumers[Int(consumer)].hmacSecret
        guard secret.count > 0, let date = policyHeader(req, Reactor.dateHeader), let signedAt = HMACCredentials.imfDate(date) else {
            return .invalid
        }
        let now = Int64(time(nil))
        let skew = hot.hmacSkew[p]
        guard abs(now - signedAt) <= skew else { return .invalid }
        let state = hot.workers[index]
        let scratch = UnsafeMutableRawBufferPointer(start: state.jwtScratch, count: JWTCache.scratchBytes)
        // Signing string: method, target, Date, Digest, one per line.
        var n = 0
        func put(_ b: UnsafeRawBufferPointer) -> Bool {
            guard n + b.count <= scratch.count - 64 else { return false }
            if let src = b.baseAddress, b.count > 0, let dst = scratch.baseAddress { (dst + n).copyMemory(from: src, byteCount: b.count) }
            n += b.count
            return true
        }
        func byte(_ c: UInt8) -> Bool {
            guard n < scratch.count - 64 else { return false }
            scratch[n] = c; n += 1
            return true
        }
        let method = Reactor.methodName(req.method)
        guard method.utf8CodeUnitCount > 0 else { return .invalid }
        let digest = policyHeader(req, Reactor.digestHeader) ?? UnsafeRawBufferPointer(start: nil, count: 0)
        guard put(UnsafeRawBufferPointer(start: method.utf8Start, count: method.utf8CodeUnitCount)), byte(0x0A), put(req.path),
              req.query.count == 0 || (byte(UInt8(ascii: "?")) && put(req.query)), byte(0x0A), put(date), byte(0x0A), put(digest)
        else { return .invalid }
        let input = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(scratch)[0..<n])
        let decoded = UnsafeMutableRawBufferPointer(rebasing: scratch[(scratch.count - 64)..<(scratch.count - 32)])
        let mac = UnsafeMutableRawBufferPointer(rebasing: scratch[(scratch.count - 32)...])
        guard let sn = Base64.decode(creds.signature, into: decoded), sn == 32,
              JWTVerify.hmacSHA256(secret, input, into: mac) else { return .invalid }
        guard PolicyHash.constantTimeEqual(UnsafeRawBufferPointer(decoded), UnsafeRawBufferPointer(mac)) else { return .invalid }
        // Replay guard: the same signature twice inside the window is refused.
        let h = PolicyHash.bytes(creds.signature, seed: hot.hashSeed ^ 0x484D_4143)
        let e = state.replay + (Int(truncatingIfNeeded: h) & (PolicySet.replayEntries - 1))
        if e.pointee.hash == h && e.pointee.expires >= now { return .invalid }
        e.pointee = ReplayEntry(hash: h, expires: signedAt + skew)
        exchanges[xi].policy.consumer = consumer
        exchanges[xi].policy.authenticated = true
        return .identified
    }

    static func methodName(_ m: HTTPMethod) -> StaticString {
        switch m {
        case .get: return "GET"
        case .head: return "HEAD"
        case .post: return "POST"
        case .put: return "PUT"
        case .delete: return "DELETE"
        case .connect: return "CONNECT"
        case .options: return "OPTIONS"
        case .trace: return "TRACE"
        case .patch: return "PATCH"
        case .other: return ""
        }
    }
}
