import CCrypt
import Glibc

/// The compiled gateway policies of one snapshot: flat arrays of plain structs
/// (read by reactors through `PolicyHot`, no ARC) plus one mutable shard per
/// worker (rate-limit buckets, verified-credential cache), each touched only by
/// its own reactor. Built by `PolicyCompiler` on the control thread and owned by
/// the `RouteTable` (freed with it, so rate-limit state starts fresh on reload).

/// Phases in the fixed order requests run them (`PolicyPipeline.swift`).
enum PolicyStepKind: UInt8 { case ip, cors, apiKey, basic, jwt, hmac, acl, rateLimit }

struct PolicyStep {
    var kind: PolicyStepKind
    /// Index into the array of that kind.
    var index: Int32
}

/// One route's policies, sorted by phase: `early` (ip, cors), `auth`
/// (alternatives: the first that identifies a consumer wins), `admission`
/// (acl, rate limits). Response-phase header policies are `cors`/`security`.
struct PolicyChain {
    var first: Int32 = 0
    var earlyCount: Int32 = 0
    var authCount: Int32 = 0
    var admissionCount: Int32 = 0
    /// CORS policy for actual-request headers (-1 none), security headers block (-1 none).
    var cors: Int32 = -1
    var security: Int32 = -1
    /// `WWW-Authenticate: ...\r\n` line(s) for a 401 of this chain.
    var challenge = StaticBytes.empty
    var isEmpty: Bool { earlyCount == 0 && authCount == 0 && admissionCount == 0 && cors < 0 && security < 0 }
}

struct CompiledCIDR {
    var high: UInt64
    var low: UInt64
    var maskHigh: UInt64
    var maskLow: UInt64
}

struct CompiledIPPolicy {
    var firstAllow: Int32, allowCount: Int32
    var firstDeny: Int32, denyCount: Int32
}

struct CompiledCORS {
    var firstOrigin: Int32, originCount: Int32
    /// "*" is among the origins (answered as `*` when credentials are off).
    var anyOrigin: Bool
    var credentials: Bool
    /// Upper-case tokens, for checking Access-Control-Request-Method.
    var firstMethod: Int32, methodCount: Int32
    /// Preflight lines after Access-Control-Allow-Origin (methods, headers, credentials, max-age).
    var preflightLines: StaticBytes
    /// Actual-response lines after Access-Control-Allow-Origin (credentials, expose headers).
    var responseLines: StaticBytes
}

struct CompiledAPIKeyPolicy {
    /// Lower-cased header name (empty = none) and query parameter name (empty = none).
    var header: StaticBytes
    var query: StaticBytes
}

struct CompiledACL {
    var allowMask: UInt64
    var denyMask: UInt64
}

enum RateLimitKeyKind: UInt8 { case consumer, clientIP, header, route }

struct CompiledRateLimit {
    var key: RateLimitKeyKind
    var header: StaticBytes
    var limit: Int32
    /// Token amounts are in nano-tokens so slow rates (1/h) keep precision.
    var capacity: Int64
    var refillPerMs: Int64
    /// First bucket of this limit in each worker's bucket array.
    var firstBucket: Int32
    /// Index into `PolicyHot.sharedLimits` (-1: local only).
    var shared: Int32 = -1
}

struct CompiledConsumer {
    var name: StaticBytes
    var groupMask: UInt64
    /// NUL-terminated crypt(3) hash (count excludes the NUL); empty = no basic auth.
    var passwordHash: StaticBytes
    /// HMAC signing secret; empty = no HMAC auth.
    var hmacSecret: StaticBytes = .empty
}

/// A signature seen recently (replay guard), until `expires` (wall-clock seconds).
struct ReplayEntry {
    var hash: UInt64
    var expires: Int64
}

/// A JWKS key: public key (RSA/EC/Ed25519) or HMAC secret, and the algorithms it may verify.
struct CompiledJWTKey {
    var kid: StaticBytes
    var algMask: UInt16
    var pkey: OpaquePointer?
    var secret: StaticBytes
}

/// A `jwt:` policy. Claim names (consumer claim and forwarded ones, at most 4)
/// and audiences are `StaticBytes` in `jwtStrings`.
struct CompiledJWT {
    var firstKey: Int32, keyCount: Int32
    var algMask: UInt16
    var issuer: StaticBytes
    var firstAudience: Int32, audienceCount: Int32
    var firstClaim: Int32, claimCount: Int32
    /// Index among the claims of the one naming the consumer, -1 none.
    var consumerClaim: Int32
    var firstForward: Int32, forwardCount: Int32
    var leewaySeconds: Int64
}

/// `forward_claims`: claim (index among the policy's claims) → header sent upstream.
struct JWTForward {
    var claim: Int32
    var header: StaticBytes
}

/// Open-addressed slot mapping bytes (an API key or a username) to a consumer.
struct CredentialSlot {
    var hash: UInt64 = 0
    var bytes = StaticBytes.empty
    var consumer: Int32 = -1
}

/// One token bucket; `key == 0` is an empty slot.
struct RateBucket {
    var key: UInt64
    var tokens: Int64
    var lastMs: Int64
}

/// A basic-auth credential this worker verified (password bytes kept only
/// in this process's memory, compared in constant time).
struct VerifiedCredential {
    var consumer: Int32
    var length: Int32
    var bytes: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
}

/// One reactor's mutable policy state.
struct PolicyWorkerState {
    var buckets: UnsafeMutablePointer<RateBucket>
    var verified: UnsafeMutablePointer<VerifiedCredential>
    /// libxcrypt's scratch (`struct crypt_data`, ~32 KiB) and a NUL-terminated copy of the password.
    var cryptData: UnsafeMutableRawPointer
    var phrase: UnsafeMutablePointer<UInt8>
    /// Budget of uncached password-hash checks, in milli-checks, and when it was last refilled.
    var hashBudget: Int64
    var hashBudgetMs: Int64
    /// Verified tokens (`JWTCache` layout), the worker's digest context and decode scratch.
    var jwtCache: UnsafeMutableRawPointer
    var digestContext: OpaquePointer?
    var jwtScratch: UnsafeMutableRawPointer
    /// Forwarded claim values per exchange id (`JWTCache.claimBlock` bytes each; mmap'd, touched lazily).
    var claimTable: UnsafeMutableRawPointer?
    var claimTableCount: Int
    /// HMAC replay guard (`PolicySet.replayEntries`, direct-mapped).
    var replay: UnsafeMutablePointer<ReplayEntry>
}

/// Everything the reactors read, as plain pointers.
struct PolicyHot {
    /// Per route index (RouteTable.routes): its chain.
    var chains: UnsafeMutableBufferPointer<PolicyChain>
    var steps: UnsafeMutableBufferPointer<PolicyStep>
    var cidrs: UnsafeMutableBufferPointer<CompiledCIDR>
    var ipPolicies: UnsafeMutableBufferPointer<CompiledIPPolicy>
    var cors: UnsafeMutableBufferPointer<CompiledCORS>
    var corsStrings: UnsafeMutableBufferPointer<StaticBytes>
    var apiKeys: UnsafeMutableBufferPointer<CompiledAPIKeyPolicy>
    var acls: UnsafeMutableBufferPointer<CompiledACL>
    var rateLimits: UnsafeMutableBufferPointer<CompiledRateLimit>
    var security: UnsafeMutableBufferPointer<StaticBytes>
    var consumers: UnsafeMutableBufferPointer<CompiledConsumer>
    var keySlots: UnsafeMutableBufferPointer<CredentialSlot>
    var userSlots: UnsafeMutableBufferPointer<CredentialSlot>
    var workers: UnsafeMutableBufferPointer<PolicyWorkerState>
    var hashSeed: UInt64
    var jwts: UnsafeMutableBufferPointer<CompiledJWT>
    var jwtKeys: UnsafeMutableBufferPointer<CompiledJWTKey>
    var jwtStrings: UnsafeMutableBufferPointer<StaticBytes>
    var jwtForwards: UnsafeMutableBufferPointer<JWTForward>
    /// Names of headers policies set upstream (lower-cased): client copies are dropped.
    var identityHeaders: UnsafeMutableBufferPointer<StaticBytes>
    /// Consumer name → index (for `consumer_claim`).
    var nameSlots: UnsafeMutableBufferPointer<CredentialSlot>
    /// HMAC key_id → consumer; clock skew per hmac policy (seconds).
    var hmacSlots: UnsafeMutableBufferPointer<CredentialSlot>
    var hmacSkew: UnsafeMutableBufferPointer<Int64>
    /// `shared:` limits (SharedLimitState.swift).
    var sharedLimits: UnsafeMutableBufferPointer<CompiledSharedLimit>
}

/// Owner of a `PolicyHot` and the memory it points into.
final class PolicySet: @unchecked Sendable {
    static let bucketsPerLimit = 4096
    static let verifiedEntries = 256
    static let maxCachedPassword = 64
    /// Uncached password-hash checks per worker per second (bcrypt cost 5 is ~2-3 ms each).
    static let hashChecksPerSecond: Int64 = 20
    static let replayEntries = 4096

    let hot: UnsafeMutablePointer<PolicyHot>
    /// What the shared-limit sync thread needs (same order as `hot.sharedLimits`).
    let sharedPlans: [SharedLimitPlan]
    let workerCount: Int
    private var blocks: [UnsafeMutableRawPointer] = []
    private let arenaChunks: [UnsafeMutableRawPointer]

    init(parts: PolicyParts, arena: ByteArena, workers: Int, seed: UInt64, exchangeCapacity: Int) {
        var blocks: [UnsafeMutableRawPointer] = []
        func copy<T>(_ a: [T]) -> UnsafeMutableBufferPointer<T> {
            let buf = UnsafeMutableBufferPointer<T>.allocate(capacity: max(a.count, 1))
            _ = buf.initialize(from: a)
            if let base = buf.baseAddress { blocks.append(UnsafeMutableRawPointer(base)) }
            return UnsafeMutableBufferPointer(rebasing: buf[0..<a.count])
        }
        let bucketCount = max(parts.rateLimits.count * PolicySet.bucketsPerLimit, 1)
        let hasBasic = parts.consumers.contains { $0.passwordHash.count > 0 }
        var states: [PolicyWorkerState] = []
        for _ in 0..<max(workers, 1) {
            let b = UnsafeMutablePointer<RateBucket>.allocate(capacity: bucketCount)
            b.initialize(repeating: RateBucket(key: 0, tokens: 0, lastMs: 0), count: bucketCount)
            let v = UnsafeMutablePointer<VerifiedCredential>.allocate(capacity: PolicySet.verifiedEntries)
            v.initialize(repeating: VerifiedCredential(consumer: -1, length: 0, bytes: (0, 0, 0, 0, 0, 0, 0, 0)), count: PolicySet.verifiedEntries)
            let cdSize = hasBasic ? MemoryLayout<crypt_data>.size : 8
            let cd = UnsafeMutableRawPointer.allocate(byteCount: cdSize, alignment: 16)
            cd.initializeMemory(as: UInt8.self, repeating: 0, count: cdSize)
            let phrase = UnsafeMutablePointer<UInt8>.allocate(capacity: 512)
            phrase.initialize(repeating: 0, count: 512)
            let hasJWT = !parts.jwts.isEmpty
            let cacheBytes = hasJWT ? JWTCache.entries * JWTCache.stride : 8
            let cache = UnsafeMutableRawPointer.allocate(byteCount: cacheBytes, alignment: 16)
            cache.initializeMemory(as: UInt8.self, repeating: 0, count: cacheBytes)
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: JWTCache.scratchBytes, alignment: 16)
            let replayCount = parts.hmacSkew.isEmpty ? 1 : PolicySet.replayEntries
            let replay = UnsafeMutablePointer<ReplayEntry>.allocate(capacity: replayCount)
            replay.initialize(repeating: ReplayEntry(hash: 0, expires: 0), count: replayCount)
            blocks += [UnsafeMutableRawPointer(b), UnsafeMutableRawPointer(v), cd, UnsafeMutableRawPointer(phrase), cache, scratch,
                       UnsafeMutableRawPointer(replay)]
            var claims: UnsafeMutableRawPointer? = nil
            let forwards = !parts.jwtForwards.isEmpty
            if forwards {
                let m = mmap(nil, exchangeCapacity * JWTCache.claimBlock, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                if let m, m != MAP_FAILED { claims = m }
            }
            states.append(PolicyWorkerState(buckets: b, verified: v, cryptData: cd, phrase: phrase,
                                            hashBudget: PolicySet.hashChecksPerSecond * 1000, hashBudgetMs: 0,
                                            jwtCache: cache, digestContext: hasJWT ? JWTKeys.newDigestContext() : nil,
                                            jwtScratch: scratch, claimTable: claims, claimTableCount: claims != nil ? exchangeCapacity : 0, replay: replay))
        }
        var shared: [CompiledSharedLimit] = []
        for s in parts.sharedLimits {
            let slots = allocateWords(max(workers, 1) * s.maxKeys * SharedSlot.words)
            let control = allocateWords(SharedLimitWord.words)
            let n = max(workers, 1)
            atomicWord(control + SharedLimitWord.freshShare).store((s.limit + n - 1) / n, ordering: .relaxed)
            atomicWord(control + SharedLimitWord.trickleShare).store(1, ordering: .relaxed)
            blocks += [UnsafeMutableRawPointer(slots), UnsafeMutableRawPointer(control)]
            shared.append(CompiledSharedLimit(limit: s.limit, periodMs: Int64(s.periodMs), intervalMs: Int64(s.plan.syncIntervalMs),
                                              maxKeys: s.maxKeys, closedOnFailure: s.plan.redis.onFailure == .closed,
                                              slots: slots, control: control))
        }
        sharedPlans = parts.sharedLimits.map(\.plan)
        workerCount = max(workers, 1)
        let h = PolicyHot(
            chains: copy(parts.chains), steps: copy(parts.steps), cidrs: copy(parts.cidrs), ipPolicies: copy(parts.ipPolicies),
            cors: copy(parts.cors), corsStrings: copy(parts.corsStrings), apiKeys: copy(parts.apiKeys), acls: copy(parts.acls),
            rateLimits: copy(parts.rateLimits), security: copy(parts.security), consumers: copy(parts.consumers),
            keySlots: copy(parts.keySlots), userSlots: copy(parts.userSlots), workers: copy(states), hashSeed: seed,
            jwts: copy(parts.jwts), jwtKeys: copy(parts.jwtKeys), jwtStrings: copy(parts.jwtStrings), jwtForwards: copy(parts.jwtForwards),
            identityHeaders: copy(parts.identityHeaders), nameSlots: copy(parts.nameSlots),
            hmacSlots: copy(parts.hmacSlots), hmacSkew: copy(parts.hmacSkew), sharedLimits: copy(shared))
        hot = .allocate(capacity: 1)
        hot.initialize(to: h)
        self.blocks = blocks
        arenaChunks = arena.takeChunks()
    }

    deinit {
        for w in hot.pointee.workers {
            // The password scratch held client bytes: wipe before freeing.
            w.phrase.update(repeating: 0, count: 512)
            JWTKeys.freeDigestContext(w.digestContext)
            if let c = w.claimTable { munmap(c, max(w.claimTableCount, 1) * JWTCache.claimBlock) }
        }
        for k in hot.pointee.jwtKeys { JWTKeys.free(k.pkey) }
        hot.deallocate()
        for b in blocks { b.deallocate() }
        for c in arenaChunks { c.deallocate() }
    }
}

/// The arrays `PolicyCompiler` fills.
struct PolicyParts {
    var chains: [PolicyChain] = []
    var steps: [PolicyStep] = []
    var cidrs: [CompiledCIDR] = []
    var ipPolicies: [CompiledIPPolicy] = []
    var cors: [CompiledCORS] = []
    var corsStrings: [StaticBytes] = []
    var apiKeys: [CompiledAPIKeyPolicy] = []
    var acls: [CompiledACL] = []
    var rateLimits: [CompiledRateLimit] = []
    var security: [StaticBytes] = []
    var consumers: [CompiledConsumer] = []
    var keySlots: [CredentialSlot] = []
    var userSlots: [CredentialSlot] = []
    var jwts: [CompiledJWT] = []
    var jwtKeys: [CompiledJWTKey] = []
    var jwtStrings: [StaticBytes] = []
    var jwtForwards: [JWTForward] = []
    var identityHeaders: [StaticBytes] = []
    var nameSlots: [CredentialSlot] = []
    var hmacSlots: [CredentialSlot] = []
    var hmacSkew: [Int64] = []
    var sharedLimits: [SharedLimitSpec] = []
}

/// A `shared:` limit before its memory is allocated.
struct SharedLimitSpec {
    var limit: Int
    var periodMs: Int
    var maxKeys: Int
    var plan: SharedLimitPlan
}
