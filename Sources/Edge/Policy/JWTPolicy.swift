import Glibc
import Protocols

/// Layout of the per-worker verified-token cache and the per-exchange
/// forwarded-claim slots (raw memory, fixed strides: no allocation).
enum JWTCache {
    /// Direct-mapped entries per worker.
    static let entries = 256
    /// Longer tokens are verified every time (never cached).
    static let maxCachedToken = 2048
    /// Longest token accepted at all.
    static let maxToken = 8192
    /// Each of up to 4 claims: UInt16 length + value bytes.
    static let claimSlot = 128
    static let maxClaimValue = claimSlot - 2
    static let claimBlock = 4 * claimSlot
    // Entry: length Int32 @0, consumer Int32 @4, exp Int64 @8, nbf Int64 @16, policy Int32 @24, flags UInt8 @28.
    static let claimsOffset = 32
    static let tokenOffset = claimsOffset + claimBlock
    static let stride = tokenOffset + maxCachedToken
    // Scratch: decoded header, payload, signature, then DER / HMAC output.
    static let headerScratch = 0, headerBytes = 2048
    static let payloadScratch = 2048, payloadBytes = 8192
    static let signatureScratch = 10240, signatureBytes = 1024
    static let outputScratch = 11264, outputBytes = 1024
    static let scratchBytes = 12288
    static let hasExp: UInt8 = 1, hasNbf: UInt8 = 2
}

/// Authentication by JWT (`Authorization: Bearer <jws>`). A token this worker
/// verified before is found by a hash lookup and one memcmp, its expiry
/// re-checked; only new tokens reach OpenSSL (JWTKeys.swift).
extension Reactor {
    func authenticateJWT(_ xi: Int, _ hot: PolicyHot, _ p: Int, _ req: RequestView) -> AuthOutcome {
        guard p >= 0, p < hot.jwts.count, index < hot.workers.count,
              let v = policyHeader(req, Reactor.authorizationHeader), v.count > 7, let vb = v.baseAddress else { return .absent }
        guard PolicyHash.hasPrefixIgnoringCase(v, "bearer ") else { return .absent }
        var start = 7
        while start < v.count && v[start] == 0x20 { start += 1 }
        var end = v.count
        while end > start && v[end - 1] == 0x20 { end -= 1 }
        let token = UnsafeRawBufferPointer(start: vb + start, count: end - start)
        guard token.count > 0, token.count <= JWTCache.maxToken else { return .invalid }
        let jwt = hot.jwts[p]
        let state = hot.workers[index]
        let now = Int64(time(nil))
        if jwt.forwardCount > 0 && xi >= state.claimTableCount { return .busy }
        let claims = jwt.forwardCount > 0 ? state.claimTable.map { $0 + xi * JWTCache.claimBlock } : nil

        let cacheable = token.count <= JWTCache.maxCachedToken
        let entry = state.jwtCache + (Int(truncatingIfNeeded: PolicyHash.bytes(token, seed: hot.hashSeed &+ UInt64(p))) & (JWTCache.entries - 1)) * JWTCache.stride
        if cacheable && entry.load(as: Int32.self) == Int32(token.count) && entry.load(fromByteOffset: 24, as: Int32.self) == Int32(p)
            && memcmp(entry + JWTCache.tokenOffset, vb + start, token.count) == 0 {
            guard timeValid(entry.load(fromByteOffset: 28, as: UInt8.self), entry.load(fromByteOffset: 8, as: Int64.self),
                            entry.load(fromByteOffset: 16, as: Int64.self), now, jwt.leewaySeconds) else {
                entry.storeBytes(of: 0, as: Int32.self)
                return .invalid
            }
            if let claims { claims.copyMemory(from: entry + JWTCache.claimsOffset, byteCount: JWTCache.claimBlock) }
            identify(xi, consumer: entry.load(fromByteOffset: 4, as: Int32.self), jwt: p)
            return .identified
        }

        // Uncached: parse, verify, check claims.
        guard let parts = JWTParts.split(token) else { return .invalid }
        let scratch = state.jwtScratch
        let header = UnsafeMutableRawBufferPointer(start: scratch + JWTCache.headerScratch, count: JWTCache.headerBytes)
        let payload = UnsafeMutableRawBufferPointer(start: scratch + JWTCache.payloadScratch, count: JWTCache.payloadBytes)
        let signature = UnsafeMutableRawBufferPointer(start: scratch + JWTCache.signatureScratch, count: JWTCache.signatureBytes)
        guard let hn = Base64URL.decode(parts.header, into: header), let pn = Base64URL.decode(parts.payload, into: payload),
              let sn = Base64URL.decode(parts.signature, into: signature) else { return .invalid }
        var fields = JWTClaims()
        guard fields.readHeader(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(header)[0..<hn])),
              let alg = fields.algorithm, jwt.algMask & alg.bit != 0 else { return .invalid }
        let wanted = UnsafeBufferPointer(rebasing: UnsafeBufferPointer(hot.jwtStrings)[Int(jwt.firstClaim)..<Int(jwt.firstClaim + jwt.claimCount)])
        var found: (UnsafeRawBufferPointer?, UnsafeRawBufferPointer?, UnsafeRawBufferPointer?, UnsafeRawBufferPointer?) = (nil, nil, nil, nil)
        guard fields.readPayload(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(payload)[0..<pn]), wanted: wanted, found: &found) else {
            return .invalid
        }
        let sig = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(signature)[0..<sn])
        let output = UnsafeMutableRawBufferPointer(start: scratch + JWTCache.outputScratch, count: JWTCache.outputBytes)
        var verified = false
        var k = Int(jwt.firstKey)
        while !verified && k < Int(jwt.firstKey + jwt.keyCount) && k < hot.jwtKeys.count {
            let key = hot.jwtKeys[k]
            k += 1
            if key.algMask & alg.bit == 0 { continue }
            if fields.kid.count > 0 && !PolicyHash.constantTimeEqual(key.kid.buffer, fields.kid) { continue }
            verified = JWTVerify.verify(alg, key: key, input: parts.signingInput, signature: sig,
                                        context: state.digestContext, scratch: output)
        }
        guard verified else { return .invalid }
        var flags: UInt8 = 0
        if fields.exp != nil { flags |= JWTCache.hasExp }
        if fields.nbf != nil { flags |= JWTCache.hasNbf }
        let exp = fields.exp ?? 0, nbf = fields.nbf ?? 0
        guard timeValid(flags, exp, nbf, now, jwt.leewaySeconds) else { return .invalid }
        if jwt.issuer.count > 0 {
            guard let iss = fields.iss, PolicyHash.constantTimeEqual(iss, jwt.issuer.buffer) else { return .invalid }
        }
        if jwt.audienceCount > 0 {
            let auds = UnsafeBufferPointer(rebasing: UnsafeBufferPointer(hot.jwtStrings)[Int(jwt.firstAudience)..<Int(jwt.firstAudience + jwt.audienceCount)])
            guard fields.audienceMatches(auds) else { return .invalid }
        }
        var consumer: Int32 = -1
        if jwt.consumerClaim == 0, let name = found.0 { consumer = PolicyHash.lookup(hot.nameSlots, name, seed: hot.hashSeed) }
        // Claim values into scratch first: a refused token must not touch the entry another token owns.
        let block = scratch + JWTCache.outputScratch
        guard storeClaim(block, 0, found.0), storeClaim(block, 1, found.1), storeClaim(block, 2, found.2), storeClaim(block, 3, found.3) else {
            return .invalid
        }
        if let claims { claims.copyMemory(from: block, byteCount: JWTCache.claimBlock) }
        if cacheable {
            entry.storeBytes(of: Int32(token.count), as: Int32.self)
            entry.storeBytes(of: consumer, toByteOffset: 4, as: Int32.self)
            entry.storeBytes(of: exp, toByteOffset: 8, as: Int64.self)
            entry.storeBytes(of: nbf, toByteOffset: 16, as: Int64.self)
            entry.storeBytes(of: Int32(p), toByteOffset: 24, as: Int32.self)
            entry.storeBytes(of: flags, toByteOffset: 28, as: UInt8.self)
            (entry + JWTCache.claimsOffset).copyMemory(from: block, byteCount: JWTCache.claimBlock)
            (entry + JWTCache.tokenOffset).copyMemory(from: vb + start, byteCount: token.count)
        }
        identify(xi, consumer: consumer, jwt: p)
        return .identified
    }

    @inline(__always) private func timeValid(_ flags: UInt8, _ exp: Int64, _ nbf: Int64, _ now: Int64, _ leeway: Int64) -> Bool {
        if flags & JWTCache.hasExp != 0 && now > exp &+ leeway { return false }
        if flags & JWTCache.hasNbf != 0 && now &+ leeway < nbf { return false }
        return true
    }

    /// A claim value (≤ 126 bytes) into slot `k` of a claim block; false if too long to forward.
    private func storeClaim(_ block: UnsafeMutableRawPointer, _ k: Int, _ value: UnsafeRawBufferPointer?) -> Bool {
        let slot = block + k * JWTCache.claimSlot
        guard let value, let src = value.baseAddress, value.count > 0 else { slot.storeBytes(of: 0, as: UInt16.self); return true }
        guard value.count <= JWTCache.maxClaimValue else { return false }
        slot.storeBytes(of: UInt16(value.count), as: UInt16.self)
        (slot + 2).copyMemory(from: src, byteCount: value.count)
        return true
    }

    @inline(__always) private func identify(_ xi: Int, consumer: Int32, jwt: Int) {
        exchanges[xi].policy.authenticated = true
        exchanges[xi].policy.consumer = consumer
        exchanges[xi].policy.jwt = Int32(jwt)
    }

    /// `forward_claims` headers for a request a JWT policy identified.
    func appendJWTClaimHeaders(_ w: inout HeadWriter, _ xi: Int, _ hot: PolicyHot) {
        let p = Int(exchanges[xi].policy.jwt)
        guard p >= 0, p < hot.jwts.count, index < hot.workers.count else { return }
        let jwt = hot.jwts[p]
        let state = hot.workers[index]
        guard jwt.forwardCount > 0, xi < state.claimTableCount, let table = state.claimTable else { return }
        let block = table + xi * JWTCache.claimBlock
        var f = Int(jwt.firstForward)
        while f < Int(jwt.firstForward + jwt.forwardCount) && f < hot.jwtForwards.count {
            let fw = hot.jwtForwards[f]
            f += 1
            guard fw.claim >= 0, fw.claim < 4 else { continue }
            let slot = block + Int(fw.claim) * JWTCache.claimSlot
            let n = Int(slot.load(as: UInt16.self))
            guard n > 0, n <= JWTCache.maxClaimValue else { continue }
            w.append(fw.header.buffer); w.append(": "); w.append(UnsafeRawBufferPointer(start: slot + 2, count: n)); w.append("\r\n")
        }
    }
}
