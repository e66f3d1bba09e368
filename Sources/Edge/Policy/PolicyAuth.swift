import CCrypt
import Glibc

/// Authentication (API keys, basic auth against crypt(3) hashes) and ACLs.
/// Lookups go through hash tables built at compile time and compare in
/// constant time. A basic credential this worker already verified is found
/// in its cache; an uncached one costs one crypt_rn call, at most
/// `PolicySet.hashChecksPerSecond` per worker (beyond: 503 `auth_busy`), so a
/// flood of wrong passwords cannot eat the reactor.
extension Reactor {
    static let authorizationHeader = StaticBytes.literal("authorization")

    func authenticateAPIKey(_ xi: Int, _ hot: PolicyHot, _ p: Int, _ req: RequestView) -> AuthOutcome {
        guard p >= 0, p < hot.apiKeys.count else { return .absent }
        let policy = hot.apiKeys[p]
        var key: UnsafeRawBufferPointer? = nil
        if policy.header.count > 0 { key = policyHeader(req, policy.header) }
        if key == nil && policy.query.count > 0 { key = Reactor.queryValue(req.query, policy.query) }
        guard let key, key.count > 0 else { return .absent }
        let consumer = PolicyHash.lookup(hot.keySlots, key, seed: hot.hashSeed)
        guard consumer >= 0 else { return .invalid }
        exchanges[xi].policy.consumer = consumer
        exchanges[xi].policy.authenticated = true
        return .identified
    }

    /// The value of `name=` in a query string (not percent-decoded).
    static func queryValue(_ query: UnsafeRawBufferPointer, _ name: StaticBytes) -> UnsafeRawBufferPointer? {
        let n = name.buffer
        var i = 0
        while i < query.count {
            var j = i
            while j < query.count && query[j] != UInt8(ascii: "&") { j += 1 }
            // [i, j) is one `k=v` pair.
            if j - i > n.count && query[i + n.count] == UInt8(ascii: "=") {
                var same = true
                for k in 0..<n.count where query[i + k] != n[k] { same = false; break }
                if same, let base = query.baseAddress {
                    return UnsafeRawBufferPointer(start: base + i + n.count + 1, count: j - i - n.count - 1)
                }
            }
            i = j + 1
        }
        return nil
    }

    func authenticateBasic(_ xi: Int, _ hot: PolicyHot, _ req: RequestView) -> AuthOutcome {
        guard let v = policyHeader(req, Reactor.authorizationHeader), v.count > 6 else { return .absent }
        // Scheme is case-insensitive: "Basic " then base64.
        guard PolicyHash.hasPrefixIgnoringCase(v, "basic "), index < hot.workers.count else { return .absent }
        let state = hot.workers[index]
        var start = 6
        while start < v.count && v[start] == 0x20 { start += 1 }
        guard let base = v.baseAddress else { return .invalid }
        let encoded = UnsafeRawBufferPointer(start: base + start, count: v.count - start)
        let out = UnsafeMutableRawBufferPointer(start: state.phrase, count: 400)
        guard let n = Base64.decode(encoded, into: out) else { return .invalid }
        let decoded = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(out)[0..<n])
        guard let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else { return .invalid }
        let user = UnsafeRawBufferPointer(rebasing: decoded[0..<colon])
        let password = UnsafeRawBufferPointer(rebasing: decoded[(colon + 1)...])
        let consumer = PolicyHash.lookup(hot.userSlots, user, seed: hot.hashSeed)
        guard consumer >= 0, Int(consumer) < hot.consumers.count else { return .invalid }
        let hash = hot.consumers[Int(consumer)].passwordHash
        guard hash.count > 0 else { return .invalid }
        if isVerified(state, consumer, password, seed: hot.hashSeed) {
            exchanges[xi].policy.consumer = consumer
        exchanges[xi].policy.authenticated = true
            return .identified
        }
        guard takeHashBudget(xi) else { return .busy }
        // crypt_rn wants a NUL-terminated phrase: shift the password to the front.
        let phrase = UnsafeMutableRawPointer(state.phrase)
        let length = password.count
        if let p = password.baseAddress, length > 0 { phrase.copyMemory(from: p, byteCount: length) }
        phrase.storeBytes(of: 0, toByteOffset: length, as: UInt8.self)
        let ok = cryptMatches(phrase, hash, state.cryptData)
        if ok { remember(state, consumer, UnsafeRawBufferPointer(start: phrase, count: length), seed: hot.hashSeed) }
        phrase.initializeMemory(as: UInt8.self, repeating: 0, count: 400)
        guard ok else { return .invalid }
        exchanges[xi].policy.consumer = consumer
        exchanges[xi].policy.authenticated = true
        return .identified
    }

    private func cryptMatches(_ phrase: UnsafeMutableRawPointer, _ hash: StaticBytes, _ data: UnsafeMutableRawPointer) -> Bool {
        guard let setting = hash.base else { return false }
        let size = Int32(MemoryLayout<crypt_data>.size)
        guard let r = crypt_rn(phrase.assumingMemoryBound(to: CChar.self), setting.assumingMemoryBound(to: CChar.self), data, size) else {
            return false
        }
        let produced = UnsafeRawBufferPointer(start: UnsafeRawPointer(r), count: strlen(r))
        return PolicyHash.constantTimeEqual(produced, hash.buffer)
    }

    /// Token bucket in milli-checks: refills `hashChecksPerSecond` per second.
    private func takeHashBudget(_ xi: Int) -> Bool {
        guard let hp = policyHot(exchanges[xi].view), index < hp.pointee.workers.count,
              let workers = hp.pointee.workers.baseAddress else { return false }
        let w = workers + index
        let cap = PolicySet.hashChecksPerSecond * 1000
        let elapsed = min(max(0, nowMs - w.pointee.hashBudgetMs), 1000)
        w.pointee.hashBudget = min(cap, w.pointee.hashBudget + elapsed * PolicySet.hashChecksPerSecond)
        w.pointee.hashBudgetMs = nowMs
        guard w.pointee.hashBudget >= 1000 else { return false }
        w.pointee.hashBudget -= 1000
        return true
    }

    private func cacheSlot(_ consumer: Int32, _ password: UnsafeRawBufferPointer, seed: UInt64) -> Int {
        let h = PolicyHash.bytes(password, seed: seed ^ UInt64(UInt32(bitPattern: consumer)))
        return Int(truncatingIfNeeded: h) & (PolicySet.verifiedEntries - 1)
    }

    private func isVerified(_ s: PolicyWorkerState, _ consumer: Int32, _ password: UnsafeRawBufferPointer, seed: UInt64) -> Bool {
        guard password.count <= PolicySet.maxCachedPassword else { return false }
        let e = s.verified + cacheSlot(consumer, password, seed: seed)
        guard e.pointee.consumer == consumer, Int(e.pointee.length) == password.count else { return false }
        return withUnsafeBytes(of: &e.pointee.bytes) { stored in
            PolicyHash.constantTimeEqual(UnsafeRawBufferPointer(rebasing: stored[0..<password.count]), password)
        }
    }

    private func remember(_ s: PolicyWorkerState, _ consumer: Int32, _ password: UnsafeRawBufferPointer, seed: UInt64) {
        guard password.count <= PolicySet.maxCachedPassword else { return }
        let e = s.verified + cacheSlot(consumer, password, seed: seed)
        e.pointee.consumer = consumer
        e.pointee.length = Int32(password.count)
        withUnsafeMutableBytes(of: &e.pointee.bytes) { dst in
            dst.initializeMemory(as: UInt8.self, repeating: 0)
            if let p = password.baseAddress, let d = dst.baseAddress { d.copyMemory(from: p, byteCount: password.count) }
        }
    }

    /// Authorization: deny groups win; with allow groups, one must match. No consumer → forbidden.
    func aclAllows(_ xi: Int, _ hot: PolicyHot, _ p: Int) -> Bool {
        guard p >= 0, p < hot.acls.count else { return true }
        let consumer = exchanges[xi].policy.consumer
        guard consumer >= 0, Int(consumer) < hot.consumers.count else { return false }
        let groups = hot.consumers[Int(consumer)].groupMask
        let acl = hot.acls[p]
        if groups & acl.denyMask != 0 { return false }
        return acl.allowMask == 0 || groups & acl.allowMask != 0
    }
}
