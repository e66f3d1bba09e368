/// Splitting and reading a compact JWS (`header.payload.signature`) without
/// allocation: base64url into caller-provided scratch, then a small JSON
/// object scanner that reports top-level members as byte ranges. Strict on
/// purpose: anything unusual (deep nesting, exponents in times, duplicate
/// security-relevant members) is a refusal, never a guess. Fuzzed
/// (Fuzz/FuzzJWT), no input traps.
enum JWTAlgorithm: UInt8, CaseIterable {
    case hs256, hs384, hs512, rs256, rs384, rs512, ps256, es256, es384, edDSA

    static func named(_ s: UnsafeRawBufferPointer) -> JWTAlgorithm? {
        for a in allCases where PolicyHash.constantTimeEqual(a.name.withUTF8Buffer { UnsafeRawBufferPointer($0) }, s) { return a }
        return nil
    }

    var name: StaticString {
        switch self {
        case .hs256: return "HS256"
        case .hs384: return "HS384"
        case .hs512: return "HS512"
        case .rs256: return "RS256"
        case .rs384: return "RS384"
        case .rs512: return "RS512"
        case .ps256: return "PS256"
        case .es256: return "ES256"
        case .es384: return "ES384"
        case .edDSA: return "EdDSA"
        }
    }

    var bit: UInt16 { 1 << UInt16(rawValue) }
    var isHMAC: Bool { self == .hs256 || self == .hs384 || self == .hs512 }
}

/// The three parts of a token as views into the token bytes.
struct JWTParts {
    var header: UnsafeRawBufferPointer
    var payload: UnsafeRawBufferPointer
    /// `header.payload`: the signed bytes.
    var signingInput: UnsafeRawBufferPointer
    var signature: UnsafeRawBufferPointer

    static func split(_ token: UnsafeRawBufferPointer) -> JWTParts? {
        guard let base = token.baseAddress, token.count > 4 else { return nil }
        var dots = (0, 0), n = 0
        for i in 0..<token.count where token[i] == UInt8(ascii: ".") {
            n += 1
            if n == 1 { dots.0 = i } else if n == 2 { dots.1 = i } else { return nil }
        }
        guard n == 2, dots.0 > 0, dots.1 > dots.0 + 1, dots.1 < token.count - 1 else { return nil }
        return JWTParts(header: UnsafeRawBufferPointer(start: base, count: dots.0),
                        payload: UnsafeRawBufferPointer(start: base + dots.0 + 1, count: dots.1 - dots.0 - 1),
                        signingInput: UnsafeRawBufferPointer(start: base, count: dots.1),
                        signature: UnsafeRawBufferPointer(start: base + dots.1 + 1, count: token.count - dots.1 - 1))
    }
}

/// A JSON value found by `JSONMembers`: its kind and its bytes (a string's
/// bytes exclude the quotes and are still escaped).
struct JSONValue {
    enum Kind: UInt8 { case string, number, array, object, literal }
    var kind: Kind
    var bytes: UnsafeRawBufferPointer
}

/// Iterates the members of one JSON object (or the elements of one array).
/// `failed` turns true on malformed input; iteration then stops.
struct JSONMembers {
    static let maxDepth = 16
    let text: UnsafeRawBufferPointer
    var i: Int
    let end: Int
    let isArray: Bool
    var failed = false
    var first = true

    /// `text` must be exactly one object (`{...}`) or array (`[...]`), whitespace around allowed.
    init(_ text: UnsafeRawBufferPointer, array: Bool = false) {
        self.text = text
        isArray = array
        var s = 0, e = text.count
        while s < e && JSONMembers.isSpace(text[s]) { s += 1 }
        while e > s && JSONMembers.isSpace(text[e - 1]) { e -= 1 }
        let open: UInt8 = array ? UInt8(ascii: "[") : UInt8(ascii: "{")
        let close: UInt8 = array ? UInt8(ascii: "]") : UInt8(ascii: "}")
        if e - s < 2 || text[s] != open || text[e - 1] != close { failed = true; i = 0; end = 0; return }
        i = s + 1
        end = e - 1
    }

    @inline(__always) static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

    private mutating func skipSpace() { while i < end && JSONMembers.isSpace(text[i]) { i += 1 } }

    /// Next member: key (nil for arrays) and value. nil at the end or on failure.
    mutating func next() -> (key: UnsafeRawBufferPointer?, value: JSONValue)? {
        if failed { return nil }
        skipSpace()
        if i >= end { return nil }
        if !first {
            guard text[i] == UInt8(ascii: ",") else { failed = true; return nil }
            i += 1
            skipSpace()
        }
        first = false
        var key: UnsafeRawBufferPointer? = nil
        if !isArray {
            guard i < end, text[i] == UInt8(ascii: "\""), let k = string() else { failed = true; return nil }
            key = k
            skipSpace()
            guard i < end, text[i] == UInt8(ascii: ":") else { failed = true; return nil }
            i += 1
            skipSpace()
        }
        guard i < end, let v = value() else { failed = true; return nil }
        return (key, v)
    }

    /// At an opening quote: the string's bytes (still escaped); `i` after the closing quote.
    private mutating func string() -> UnsafeRawBufferPointer? {
        guard let base = text.baseAddress else { return nil }
        let start = i + 1
        var k = start
        while k < end {
            let b = text[k]
            if b == UInt8(ascii: "\\") { k += 2; continue }
            if b == UInt8(ascii: "\"") {
                i = k + 1
                return UnsafeRawBufferPointer(start: base + start, count: k - start)
            }
            if b < 0x20 { return nil }
            k += 1
        }
        return nil
    }

    private mutating func value() -> JSONValue? {
        guard let base = text.baseAddress else { return nil }
        let c = text[i]
        if c == UInt8(ascii: "\"") {
            guard let s = string() else { return nil }
            return JSONValue(kind: .string, bytes: s)
        }
        if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") {
            let start = i
            var depth = 0
            while i < end {
                let b = text[i]
                if b == UInt8(ascii: "\"") { guard string() != nil else { return nil }; continue }
                if b == UInt8(ascii: "{") || b == UInt8(ascii: "[") {
                    depth += 1
                    if depth > JSONMembers.maxDepth { return nil }
                } else if b == UInt8(ascii: "}") || b == UInt8(ascii: "]") {
                    depth -= 1
                    if depth == 0 {
                        i += 1
                        return JSONValue(kind: c == UInt8(ascii: "{") ? .object : .array,
                                         bytes: UnsafeRawBufferPointer(start: base + start, count: i - start))
                    }
                }
                i += 1
            }
            return nil
        }
        let start = i
        while i < end {
            let b = text[i]
            if b == UInt8(ascii: ",") || JSONMembers.isSpace(b) { break }
            guard b == UInt8(ascii: "-") || b == UInt8(ascii: "+") || b == UInt8(ascii: ".")
                    || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z"))
                    || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) else { return nil }
            i += 1
        }
        guard i > start else { return nil }
        let bytes = UnsafeRawBufferPointer(start: base + start, count: i - start)
        let isNumber = c == UInt8(ascii: "-") || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
        return JSONValue(kind: isNumber ? .number : .literal, bytes: bytes)
    }

    /// An integer NumericDate (`1700000000`, fraction dropped). nil for
    /// exponents, signs other than '-', or more than 15 digits.
    static func seconds(_ v: JSONValue) -> Int64? {
        guard v.kind == .number, v.bytes.count > 0 else { return nil }
        var n: Int64 = 0, digits = 0, k = 0
        let negative = v.bytes[0] == UInt8(ascii: "-")
        if negative { k = 1 }
        while k < v.bytes.count {
            let b = v.bytes[k]
            if b == UInt8(ascii: ".") { break }
            guard b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"), digits < 15 else { return nil }
            n = n * 10 + Int64(b - UInt8(ascii: "0"))
            digits += 1
            k += 1
        }
        guard digits > 0 else { return nil }
        if k < v.bytes.count {
            // Fraction: digits only.
            k += 1
            while k < v.bytes.count { guard v.bytes[k] >= UInt8(ascii: "0") && v.bytes[k] <= UInt8(ascii: "9") else { return nil }; k += 1 }
        }
        return negative ? -n : n
    }
}

/// What the policy reads from a token's header and claims.
struct JWTClaims {
    var algorithm: JWTAlgorithm? = nil
    var kid = UnsafeRawBufferPointer(start: nil, count: 0)
    var exp: Int64? = nil
    var nbf: Int64? = nil
    var iss: UnsafeRawBufferPointer? = nil
    /// `aud` as found: a string, or an array of strings (checked by `audienceMatches`).
    var aud: JSONValue? = nil

    /// Reads `alg` and `kid` from the decoded header. False on bad JSON,
    /// a duplicate `alg`, `crit` (no extensions understood) or `alg: none`.
    mutating func readHeader(_ json: UnsafeRawBufferPointer) -> Bool {
        var it = JSONMembers(json)
        var sawAlg = false
        while let (key, v) = it.next() {
            guard let key else { return false }
            if JWTClaims.named(key, "alg") {
                guard !sawAlg, v.kind == .string else { return false }
                sawAlg = true
                algorithm = JWTAlgorithm.named(v.bytes)
            } else if JWTClaims.named(key, "kid") {
                guard v.kind == .string else { return false }
                kid = v.bytes
            } else if JWTClaims.named(key, "crit") {
                return false
            }
        }
        return !it.failed && algorithm != nil
    }

    /// Reads the registered claims; `wanted` names (up to 4) get their string
    /// or number values in `found`. False on bad JSON or duplicates of the
    /// registered claims.
    mutating func readPayload(_ json: UnsafeRawBufferPointer, wanted: UnsafeBufferPointer<StaticBytes>,
                              found: inout (UnsafeRawBufferPointer?, UnsafeRawBufferPointer?, UnsafeRawBufferPointer?, UnsafeRawBufferPointer?)) -> Bool {
        var it = JSONMembers(json)
        while let (key, v) = it.next() {
            guard let key else { return false }
            if JWTClaims.named(key, "exp") {
                guard exp == nil, let s = JSONMembers.seconds(v) else { return false }
                exp = s
            } else if JWTClaims.named(key, "nbf") {
                guard nbf == nil, let s = JSONMembers.seconds(v) else { return false }
                nbf = s
            } else if JWTClaims.named(key, "iss") {
                guard iss == nil, v.kind == .string else { return false }
                iss = v.bytes
            } else if JWTClaims.named(key, "aud") {
                guard aud == nil, v.kind == .string || v.kind == .array else { return false }
                aud = v
            }
            guard v.kind == .string || v.kind == .number else { continue }
            for (k, w) in wanted.enumerated() where k < 4 && PolicyHash.constantTimeEqual(w.buffer, key) {
                switch k {
                case 0: if found.0 == nil { found.0 = v.bytes }
                case 1: if found.1 == nil { found.1 = v.bytes }
                case 2: if found.2 == nil { found.2 = v.bytes }
                default: if found.3 == nil { found.3 = v.bytes }
                }
            }
        }
        return !it.failed
    }

    /// `aud` (string or array of strings) contains one of `audiences`.
    func audienceMatches(_ audiences: UnsafeBufferPointer<StaticBytes>) -> Bool {
        guard let aud else { return false }
        if aud.kind == .string { return audiences.contains { PolicyHash.constantTimeEqual($0.buffer, aud.bytes) } }
        var it = JSONMembers(aud.bytes, array: true)
        while let (_, v) = it.next() {
            if v.kind == .string && audiences.contains(where: { PolicyHash.constantTimeEqual($0.buffer, v.bytes) }) { return true }
        }
        return false
    }

    @inline(__always) static func named(_ key: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
        name.withUTF8Buffer { PolicyHash.constantTimeEqual(UnsafeRawBufferPointer($0), key) }
    }
}
