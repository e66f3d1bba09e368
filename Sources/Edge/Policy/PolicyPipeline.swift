import Glibc
import Protocols

/// Per-request policy results the response phase and the upstream head read.
/// Reset with the exchange; plain integers only.
struct PolicyExchangeState {
    /// The route has a policy chain (client copies of identity headers are stripped).
    var active = false
    /// An authentication policy accepted the request (consumer may still be -1 for a JWT naming none).
    var authenticated = false
    var consumer: Int32 = -1
    /// The JWT policy that authenticated it (its forward_claims), -1 none.
    var jwt: Int32 = -1
    /// CORS: index into `corsStrings` of the matched origin, `anyOrigin` for `*`, -1 none.
    var corsOrigin: Int32 = -1
    /// Tightest rate limit seen (-1 none) and what `RateLimit-*` report for it.
    var rateLimit: Int32 = -1
    var rateRemaining: Int64 = 0
    var rateResetSeconds: Int64 = 0

    static let anyOrigin: Int32 = -2
}

/// Why a policy answered the request itself.
enum PolicyDenial {
    case ipForbidden, corsOrigin, corsMethod, authRequired, authInvalid, authBusy, forbidden
    /// A shared limit cannot reach Redis and is `on_failure: closed`.
    case rateLimitUnavailable
    case rateLimited(retryAfter: Int64, limit: Int32)
}

/// Result of one authentication policy.
enum AuthOutcome: UInt8 {
    /// No credential of this kind in the request.
    case absent
    case invalid
    /// A password hash had to be checked but this worker's budget is spent.
    case busy
    case identified
}

/// The request-phase pipeline: called once per request after routing, before
/// the route's action. A route without policies costs one nil/empty check.
extension Reactor {
    @inline(__always) func policyHot(_ v: Int32) -> UnsafeMutablePointer<PolicyHot>? {
        guard v >= 0, let t = views[Int(v)].table else { return nil }
        return t._withUnsafeGuaranteedRef { $0.policyHot }
    }

    /// True: go on to the route's action. False: a policy answered.
    @inline(__always) func runRequestPolicies(_ c: Int32, route r: Int, _ req: inout RequestView, consume: Int) -> Bool {
        let xi = Int(socks[Int(c)].exchange)
        guard let hp = policyHot(exchanges[xi].view) else { return true }
        guard r >= 0, r < hp.pointee.chains.count, !hp.pointee.chains[r].isEmpty else { return true }
        return evaluateChain(c, xi, hp, hp.pointee.chains[r], &req, consume: consume)
    }

    private func evaluateChain(_ c: Int32, _ xi: Int, _ hp: UnsafeMutablePointer<PolicyHot>, _ chain: PolicyChain,
                               _ req: inout RequestView, consume: Int) -> Bool {
        let hot = hp.pointee
        exchanges[xi].policy.active = true
        var k = Int(chain.first)
        let end = k + Int(chain.earlyCount) + Int(chain.authCount) + Int(chain.admissionCount)
        guard k >= 0, end <= hot.steps.count else { return true }
        let authStart = k + Int(chain.earlyCount)
        let authEnd = authStart + Int(chain.authCount)
        var auth = AuthOutcome.absent
        while k < end {
            if k == authEnd && chain.authCount > 0 && !exchanges[xi].policy.authenticated {
                respondPolicy(c, auth == .busy ? .authBusy : (auth == .invalid ? .authInvalid : .authRequired), hot, chain, consume: consume)
                return false
            }
            let s = hot.steps[k]
            k += 1
            switch s.kind {
            case .ip:
                if !ipAllowed(c, hot, Int(s.index)) { respondPolicy(c, .ipForbidden, hot, chain, consume: consume); return false }
            case .cors:
                switch corsEarly(xi, hot, Int(s.index), req) {
                case .pass: break
                case .preflight: respondPreflight(c, hot, Int(s.index), consume: consume); return false
                case .originDenied: respondPolicy(c, .corsOrigin, hot, chain, consume: consume); return false
                case .methodDenied: respondPolicy(c, .corsMethod, hot, chain, consume: consume); return false
                }
            case .apiKey:
                if exchanges[xi].policy.authenticated { continue }
                let o = authenticateAPIKey(xi, hot, Int(s.index), req)
                if o.rawValue > auth.rawValue { auth = o }
            case .basic:
                if exchanges[xi].policy.authenticated { continue }
                let o = authenticateBasic(xi, hot, req)
                if o.rawValue > auth.rawValue { auth = o }
            case .jwt:
                if exchanges[xi].policy.authenticated { continue }
                let o = authenticateJWT(xi, hot, Int(s.index), req)
                if o.rawValue > auth.rawValue { auth = o }
            case .hmac:
                if exchanges[xi].policy.authenticated { continue }
                let o = authenticateHMAC(xi, hot, Int(s.index), req)
                if o.rawValue > auth.rawValue { auth = o }
            case .acl:
                if !aclAllows(xi, hot, Int(s.index)) { respondPolicy(c, .forbidden, hot, chain, consume: consume); return false }
            case .rateLimit:
                if let wait = admitRate(c, xi, hot, Int(s.index), route: exchanges[xi].route, req) {
                    if wait == Reactor.sharedUnavailable {
                        respondPolicy(c, .rateLimitUnavailable, hot, chain, consume: consume)
                        return false
                    }
                    respondPolicy(c, .rateLimited(retryAfter: wait, limit: hot.rateLimits[Int(s.index)].limit), hot, chain, consume: consume)
                    return false
                }
            }
        }
        if k == authEnd && chain.authCount > 0 && !exchanges[xi].policy.authenticated {
            respondPolicy(c, auth == .busy ? .authBusy : (auth == .invalid ? .authInvalid : .authRequired), hot, chain, consume: consume)
            return false
        }
        return true
    }

    // MARK: helpers shared by the policy files

    /// The first header field named `lower` (a lower-cased name), as a view into the head.
    @inline(__always) func policyHeader(_ req: RequestView, _ lower: StaticBytes) -> UnsafeRawBufferPointer? {
        guard let want = lower.base, lower.count > 0, let base = req.head.baseAddress else { return nil }
        for f in req.headers {
            guard Int(f.name.length) == lower.count, f.name.offset >= 0, f.name.end <= req.head.count,
                  f.value.offset >= 0, f.value.end <= req.head.count else { continue }
            var same = true
            for j in 0..<lower.count {
                var ch = base.load(fromByteOffset: Int(f.name.offset) + j, as: UInt8.self)
                if ch >= 0x41 && ch <= 0x5A { ch |= 0x20 }
                if ch != want.load(fromByteOffset: j, as: UInt8.self) { same = false; break }
            }
            if same { return UnsafeRawBufferPointer(start: base + Int(f.value.offset), count: Int(f.value.length)) }
        }
        return nil
    }

    /// The client address (after PROXY protocol) as 128 bits, IPv4 mapped to ::ffff:a.b.c.d.
    func clientAddress128(_ c: Int32) -> (UInt64, UInt64)? {
        let text = clientAddressText(c)
        guard text.count > 0, text.count < 64, let src = text.baseAddress else { return nil }
        return withUnsafeTemporaryAllocation(byteCount: 64 + 16, alignment: 8) { tmp -> (UInt64, UInt64)? in
            guard let p = tmp.baseAddress else { return nil }
            p.copyMemory(from: src, byteCount: text.count)
            p.storeBytes(of: 0, toByteOffset: text.count, as: UInt8.self)
            let name = p.assumingMemoryBound(to: CChar.self)
            let out = p + 64
            func be(_ at: Int) -> UInt64 {
                var v: UInt64 = 0
                for i in 0..<8 { v = v << 8 | UInt64(out.load(fromByteOffset: at + i, as: UInt8.self)) }
                return v
            }
            if inet_pton(AF_INET, name, out) == 1 {
                var v4: UInt64 = 0
                for i in 0..<4 { v4 = v4 << 8 | UInt64(out.load(fromByteOffset: i, as: UInt8.self)) }
                return (0, 0xFFFF_0000_0000 | v4)
            }
            if inet_pton(AF_INET6, name, out) == 1 { return (be(0), be(8)) }
            return nil
        }
    }
}
