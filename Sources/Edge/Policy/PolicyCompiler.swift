import Glibc

/// Compiles `consumers:` and `policies:` into a `PolicySet` for one snapshot
/// (control thread; allocation and String work are fine here). Each route gets
/// its chain sorted into the fixed phase order; a route without policies gets
/// an empty chain, and a config without any gets no set at all.
enum PolicyCompiler {
    /// `routes` in RouteTable order (listener by listener), with their listener's default.
    static func compile(_ config: EdgeConfig, workers: Int) -> PolicySet? {
        // The reactor's exchange table size (Reactor.init): claim slots are indexed by exchange id.
        let exchangeCapacity = max(64, config.runtime.maxConnectionsPerWorker) * 2
        var routeRefs: [[String]] = []
        for l in config.listeners {
            for r in l.routes { routeRefs.append((r.policies ?? l.policies)?.names ?? []) }
        }
        guard routeRefs.contains(where: { !$0.isEmpty }) else { return nil }
        let seedBytes = UInt64.random(in: 0...UInt64.max)
        var c = PolicyCompilation(arena: ByteArena(), seed: seedBytes)
        c.addConsumers(config.consumers)
        let byName = Dictionary(config.policies.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for names in routeRefs { c.addChain(names.compactMap { byName[$0] }) }
        return PolicySet(parts: c.parts, arena: c.arena, workers: workers, seed: seedBytes, exchangeCapacity: exchangeCapacity)
    }
}

struct PolicyCompilation {
    var parts = PolicyParts()
    let arena: ByteArena
    let seed: UInt64
    var groupBits: [String: UInt64] = [:]
    /// Policy name → index in its kind's array (each policy compiled once).
    var compiled: [String: (PolicyStepKind?, Int32)] = [:]

    init(arena: ByteArena, seed: UInt64) { self.arena = arena; self.seed = seed }

    mutating func addConsumers(_ consumers: [ConsumerConfig]) {
        var keys: [(String, Int32)] = []
        var users: [(String, Int32)] = []
        var hmacIDs: [(String, Int32)] = []
        for (i, c) in consumers.enumerated() {
            var mask: UInt64 = 0
            for g in c.groups {
                if groupBits[g] == nil { groupBits[g] = UInt64(1) << UInt64(groupBits.count) }
                mask |= groupBits[g] ?? 0
            }
            var hash = StaticBytes.empty
            if let h = c.basicPasswordHash, let u = c.basicUsername {
                let nul = arena.intern(Array(h.utf8) + [0])
                hash = StaticBytes(base: nul.base, count: nul.count - 1)
                users.append((u, Int32(i)))
            }
            var secret = StaticBytes.empty
            if let s = c.hmacSecret, let id = c.hmacKeyID {
                secret = arena.intern(s)
                hmacIDs.append((id, Int32(i)))
            }
            parts.consumers.append(CompiledConsumer(name: arena.intern(c.name), groupMask: mask, passwordHash: hash, hmacSecret: secret))
            for k in c.apiKeys { keys.append((k, Int32(i))) }
        }
        parts.keySlots = table(keys)
        parts.userSlots = table(users)
        parts.hmacSlots = table(hmacIDs)
        parts.nameSlots = table(consumers.enumerated().map { ($0.element.name, Int32($0.offset)) })
        parts.identityHeaders.append(arena.internLower("X-Consumer"))
    }

    /// Open addressing at load factor <= 1/2.
    private func table(_ entries: [(String, Int32)]) -> [CredentialSlot] {
        guard !entries.isEmpty else { return [] }
        var size = 4
        while size < entries.count * 2 { size <<= 1 }
        var slots = [CredentialSlot](repeating: CredentialSlot(), count: size)
        for (text, consumer) in entries {
            let bytes = arena.intern(text)
            let h = PolicyHash.bytes(bytes.buffer, seed: seed)
            var i = Int(truncatingIfNeeded: h) & (size - 1)
            while slots[i].hash != 0 { i = (i + 1) & (size - 1) }
            slots[i] = CredentialSlot(hash: h, bytes: bytes, consumer: consumer)
        }
        return slots
    }

    mutating func addChain(_ policies: [PolicyConfig]) {
        var chain = PolicyChain()
        chain.first = Int32(parts.steps.count)
        var early: [PolicyStep] = [], auth: [PolicyStep] = [], admission: [PolicyStep] = []
        var realm: String? = nil
        var keyHeader: String? = nil
        var bearer = false
        var signed = false
        for p in policies {
            let (kind, index) = compile(p)
            switch p.kind {
            case .basic(let b): realm = realm ?? b.realm
            case .apiKey(let k): keyHeader = keyHeader ?? k.header ?? k.query
            case .jwt: bearer = true
            case .hmac: signed = true
            default: break
            }
            guard let kind else {
                chain.security = index   // security headers: response phase only
                continue
            }
            let step = PolicyStep(kind: kind, index: index)
            switch kind {
            case .ip: early.append(step)
            case .cors: early.append(step); chain.cors = index
            case .apiKey, .basic, .jwt, .hmac: auth.append(step)
            case .acl, .rateLimit: admission.append(step)
            }
        }
        // IP rules run before CORS: a denied address gets no preflight answer either.
        early.sort { a, b in a.kind == .ip && b.kind != .ip }
        parts.steps += early + auth + admission
        chain.earlyCount = Int32(early.count)
        chain.authCount = Int32(auth.count)
        chain.admissionCount = Int32(admission.count)
        if let realm {
            chain.challenge = arena.intern("WWW-Authenticate: Basic realm=\"\(realm)\", charset=\"UTF-8\"\r\n")
        } else if bearer {
            chain.challenge = arena.intern("WWW-Authenticate: Bearer realm=\"edge\"\r\n")
        } else if signed {
            chain.challenge = arena.intern("WWW-Authenticate: HMAC realm=\"edge\", headers=\"method path date digest\"\r\n")
        } else if keyHeader != nil {
            chain.challenge = arena.intern("WWW-Authenticate: Key realm=\"edge\"\r\n")
        }
        parts.chains.append(chain)
    }

    /// Compiles one policy (once per name); nil kind = security headers.
    private mutating func compile(_ p: PolicyConfig) -> (PolicyStepKind?, Int32) {
        if let done = compiled[p.name] { return done }
        let out: (PolicyStepKind?, Int32)
        switch p.kind {
        case .ip(let ip):
            let firstAllow = Int32(parts.cidrs.count)
            parts.cidrs += ip.allow.map(cidr)
            let firstDeny = Int32(parts.cidrs.count)
            parts.cidrs += ip.deny.map(cidr)
            parts.ipPolicies.append(CompiledIPPolicy(firstAllow: firstAllow, allowCount: Int32(ip.allow.count),
                                                     firstDeny: firstDeny, denyCount: Int32(ip.deny.count)))
            out = (.ip, Int32(parts.ipPolicies.count - 1))
        case .cors(let cfg):
            out = (.cors, addCORS(cfg))
        case .apiKey(let k):
            parts.apiKeys.append(CompiledAPIKeyPolicy(header: k.header.map { arena.internLower($0) } ?? .empty,
                                                      query: k.query.map { arena.intern($0) } ?? .empty))
            out = (.apiKey, Int32(parts.apiKeys.count - 1))
        case .basic:
            out = (.basic, 0)
        case .acl(let a):
            let bits = groupBits
            let mask = { (gs: [String]) in gs.reduce(UInt64(0)) { $0 | (bits[$1] ?? 0) } }
            parts.acls.append(CompiledACL(allowMask: mask(a.allowGroups), denyMask: mask(a.denyGroups)))
            out = (.acl, Int32(parts.acls.count - 1))
        case .rateLimit(let r):
            out = (.rateLimit, addRateLimit(r, name: p.name))
        case .jwt(let j):
            out = (.jwt, addJWT(j))
        case .hmac(let h):
            parts.hmacSkew.append(Int64(h.clockSkewSeconds))
            out = (.hmac, Int32(parts.hmacSkew.count - 1))
        case .securityHeaders(let s):
            parts.security.append(arena.intern(s.headers.map { "\($0.0): \($0.1)\r\n" }.joined()))
            out = (nil, Int32(parts.security.count - 1))
        }
        compiled[p.name] = out
        return out
    }

    private func cidr(_ c: CIDRConfig) -> CompiledCIDR {
        var hi: UInt64 = 0, lo: UInt64 = 0
        for i in 0..<8 { hi = hi << 8 | UInt64(c.address[i]) }
        for i in 8..<16 { lo = lo << 8 | UInt64(c.address[i]) }
        let p = max(0, min(128, c.prefix))
        let mh: UInt64 = p >= 64 ? ~0 : (p == 0 ? 0 : ~0 << UInt64(64 - p))
        let ml: UInt64 = p <= 64 ? 0 : (p == 128 ? ~0 : ~0 << UInt64(128 - p))
        return CompiledCIDR(high: hi & mh, low: lo & ml, maskHigh: mh, maskLow: ml)
    }

    private mutating func addCORS(_ cfg: CORSPolicyConfig) -> Int32 {
        let firstOrigin = Int32(parts.corsStrings.count)
        let exact = cfg.origins.filter { $0 != "*" }
        parts.corsStrings += exact.map { arena.intern($0) }
        let firstMethod = Int32(parts.corsStrings.count)
        parts.corsStrings += cfg.methods.map { arena.intern($0) }
        var pre = "Access-Control-Allow-Methods: \(cfg.methods.joined(separator: ", "))\r\n"
        if !cfg.headers.isEmpty { pre += "Access-Control-Allow-Headers: \(cfg.headers.joined(separator: ", "))\r\n" }
        var resp = ""
        if cfg.credentials {
            pre += "Access-Control-Allow-Credentials: true\r\n"
            resp += "Access-Control-Allow-Credentials: true\r\n"
        }
        if let age = cfg.maxAgeSeconds { pre += "Access-Control-Max-Age: \(age)\r\n" }
        if !cfg.exposeHeaders.isEmpty { resp += "Access-Control-Expose-Headers: \(cfg.exposeHeaders.joined(separator: ", "))\r\n" }
        parts.cors.append(CompiledCORS(firstOrigin: firstOrigin, originCount: Int32(exact.count), anyOrigin: cfg.origins.contains("*"),
                                       credentials: cfg.credentials, firstMethod: firstMethod, methodCount: Int32(cfg.methods.count),
                                       preflightLines: arena.intern(pre), responseLines: arena.intern(resp)))
        return Int32(parts.cors.count - 1)
    }

    private mutating func addRateLimit(_ r: RateLimitPolicyConfig, name: String) -> Int32 {
        let nano: Int64 = 1_000_000_000
        var key = RateLimitKeyKind.clientIP
        var header = StaticBytes.empty
        switch r.key {
        case .consumer: key = .consumer
        case .clientIP: key = .clientIP
        case .route: key = .route
        case .header(let h): key = .header; header = arena.internLower(h)
        }
        let perMs = max(1, Int64(r.count) * nano / Int64(max(r.periodMs, 1)))
        parts.rateLimits.append(CompiledRateLimit(
            key: key, header: header, limit: Int32(clamping: r.count), capacity: Int64(r.burst) * nano, refillPerMs: perMs,
            firstBucket: Int32(parts.rateLimits.count * PolicySet.bucketsPerLimit)))
        if let s = r.shared, let redis = s.redis {
            parts.rateLimits[parts.rateLimits.count - 1].shared = Int32(parts.sharedLimits.count)
            parts.sharedLimits.append(SharedLimitSpec(limit: r.count, periodMs: r.periodMs, maxKeys: s.maxKeys,
                                                      plan: SharedLimitPlan(policyName: name, redis: redis, syncIntervalMs: s.syncIntervalMs)))
        }
        return Int32(parts.rateLimits.count - 1)
    }

    private mutating func addJWT(_ j: JWTPolicyConfig) -> Int32 {
        let firstKey = Int32(parts.jwtKeys.count)
        for k in j.keys {
            var mask: UInt16 = 0
            for a in JWTAlgorithm.allCases where j.algorithms.contains("\(a.name)") && JWTKeyUse.fits(k, "\(a.name)") { mask |= a.bit }
            guard mask != 0 else { continue }
            var secret = StaticBytes.empty
            if case .oct(let bytes) = k.kind { secret = arena.intern(bytes) }
            let pkey = JWTKeys.publicKey(k)
            if pkey == nil && secret.count == 0 { continue }
            parts.jwtKeys.append(CompiledJWTKey(kid: k.kid.map { arena.intern($0) } ?? .empty, algMask: mask, pkey: pkey, secret: secret))
        }
        var algMask: UInt16 = 0
        for a in JWTAlgorithm.allCases where j.algorithms.contains("\(a.name)") { algMask |= a.bit }
        let firstAudience = Int32(parts.jwtStrings.count)
        parts.jwtStrings += j.audiences.map { arena.intern($0) }
        var claims: [String] = []
        if let cc = j.consumerClaim { claims.append(cc) }
        for (claim, _) in j.forwardClaims where !claims.contains(claim) { claims.append(claim) }
        claims = Array(claims.prefix(4))
        let firstClaim = Int32(parts.jwtStrings.count)
        parts.jwtStrings += claims.map { arena.intern($0) }
        let firstForward = Int32(parts.jwtForwards.count)
        for (claim, header) in j.forwardClaims {
            guard let i = claims.firstIndex(of: claim) else { continue }
            parts.jwtForwards.append(JWTForward(claim: Int32(i), header: arena.intern(header)))
            parts.identityHeaders.append(arena.internLower(header))
        }
        parts.jwts.append(CompiledJWT(
            firstKey: firstKey, keyCount: Int32(parts.jwtKeys.count) - firstKey, algMask: algMask,
            issuer: j.issuer.map { arena.intern($0) } ?? .empty,
            firstAudience: firstAudience, audienceCount: Int32(j.audiences.count),
            firstClaim: firstClaim, claimCount: Int32(claims.count), consumerClaim: j.consumerClaim == nil ? -1 : 0,
            firstForward: firstForward, forwardCount: Int32(parts.jwtForwards.count) - firstForward,
            leewaySeconds: Int64(j.leewaySeconds)))
        return Int32(parts.jwts.count - 1)
    }
}
