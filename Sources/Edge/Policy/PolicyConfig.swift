/// Gateway policies as the user wrote them (`consumers:`, `policies:`, and
/// `policies: [...]` on routes and listeners). Parsed by
/// `PolicyConfigLoader.swift`, compiled by `PolicyCompiler.swift`; nothing here
/// is read per request.

/// `consumers[]`: an identity that authentication policies resolve to.
struct ConsumerConfig: Sendable {
    var name: String
    var apiKeys: [String] = []
    /// `basic: { username, password_hash }`: a crypt(3) hash (`htpasswd -B`: `$2y$...`).
    var basicUsername: String? = nil
    var basicPasswordHash: String? = nil
    var groups: [String] = []
    /// `hmac: { key_id, secret: "..." | { env: NAME } }`.
    var hmacKeyID: String? = nil
    var hmacSecret: [UInt8]? = nil
    var location: SourceLocation
}

/// `policies[]`: one named policy of one kind.
struct PolicyConfig: Sendable {
    var name: String
    var kind: PolicyKindConfig
    var location: SourceLocation
}

enum PolicyKindConfig: Sendable {
    case apiKey(APIKeyPolicyConfig)
    case basic(BasicPolicyConfig)
    case acl(ACLPolicyConfig)
    case rateLimit(RateLimitPolicyConfig)
    case ip(IPPolicyConfig)
    case cors(CORSPolicyConfig)
    case securityHeaders(SecurityHeadersPolicyConfig)
    case jwt(JWTPolicyConfig)
    case hmac(HMACPolicyConfig)
}

/// `hmac: { clock_skew: 300s }`: request signatures (see HMACPolicy.swift).
struct HMACPolicyConfig: Sendable {
    var clockSkewSeconds = 300
}

/// One key of a JWKS file, decoded (base64url fields as bytes).
struct JWKConfig: Sendable {
    enum Kind: Sendable { case rsa(n: [UInt8], e: [UInt8]), ec(curve: String, x: [UInt8], y: [UInt8]), ed25519(x: [UInt8]), oct(k: [UInt8]) }
    var kid: String?
    /// The JWK's own `alg`, if it names one (the key is then used for that algorithm only).
    var alg: String?
    var kind: Kind
}

/// `jwt: { jwks_file, issuer, audiences, algorithms, consumer_claim, forward_claims, leeway }`.
struct JWTPolicyConfig: Sendable {
    var jwksFile: String
    var keys: [JWKConfig]
    var issuer: String? = nil
    var audiences: [String] = []
    var algorithms: [String]
    var consumerClaim: String? = nil
    /// (claim, header) in the order written; at most 4.
    var forwardClaims: [(String, String)] = []
    var leewaySeconds: Int = 30
}

/// `api_key: { header: X-API-Key, query: api_key }` (at least one of them).
struct APIKeyPolicyConfig: Sendable {
    var header: String? = nil
    var query: String? = nil
}

/// `basic: { realm: "edge" }`.
struct BasicPolicyConfig: Sendable {
    var realm = "edge"
}

/// `acl: { allow_groups: [..], deny_groups: [..] }`.
struct ACLPolicyConfig: Sendable {
    var allowGroups: [String] = []
    var denyGroups: [String] = []
}

/// What a rate limit counts by.
enum RateLimitKeyConfig: Sendable, Equatable {
    case consumer, clientIP, route
    case header(String)
}

/// `rate_limit: { key: consumer, rate: 100/s, burst: 200 }`.
struct RateLimitPolicyConfig: Sendable {
    var key: RateLimitKeyConfig = .clientIP
    /// `count` tokens every `periodMs`.
    var count: Int
    var periodMs: Int
    var burst: Int
    /// `shared:` Redis settings (SharedLimitConfig.swift); nil = per worker only.
    var shared: SharedLimitConfig? = nil
}

/// One CIDR block, the address as 16 bytes (IPv4 as ::ffff:a.b.c.d, prefix + 96).
struct CIDRConfig: Sendable, Equatable {
    var address: [UInt8]
    var prefix: Int
    var text: String
}

/// `ip: { allow: [cidr...], deny: [cidr...] }`.
struct IPPolicyConfig: Sendable {
    var allow: [CIDRConfig] = []
    var deny: [CIDRConfig] = []
}

/// `cors: { origins, methods, headers, expose_headers, credentials, max_age }`.
struct CORSPolicyConfig: Sendable {
    /// Exact origins ("https://app.example") or "*".
    var origins: [String] = []
    var methods: [String] = ["GET", "HEAD", "POST"]
    var headers: [String] = []
    var exposeHeaders: [String] = []
    var credentials = false
    var maxAgeSeconds: Int? = nil
}

/// `security_headers: { hsts, frame_options, content_type_options, referrer_policy, content_security_policy }`.
struct SecurityHeadersPolicyConfig: Sendable {
    /// (header name, value) in the order written.
    var headers: [(String, String)] = []
}
