// TLS ClientHello peek (RFC 8446 §4.1.2, RFC 6066 §3 server_name, RFC 7301
// ALPN) for routing a TLS stream without terminating it (HAProxy's
// `req.ssl_sni`). Stateless and I/O-free: call it with every byte received so
// far on the connection; it walks the TLS records from the start, joins the
// handshake fragments into `scratch` (a ClientHello may be split across
// several records, and the bytes across many TCP reads), and answers once the
// whole ClientHello message is there. Bounded by `scratch.count` (the caller
// picks it, e.g. 16 KiB); never allocates, never traps: every length is
// checked against the bytes that hold it before it is used.

/// What the bytes so far say about a TLS ClientHello.
public enum ClientHelloPeekResult: Equatable, Sendable {
    /// Not enough bytes yet; nothing can change before the input holds at
    /// least this many bytes (a lower bound, so a caller may skip re-parsing).
    case needMore(atLeast: Int)
    /// A complete ClientHello with a host_name. Both ranges point into the
    /// `scratch` buffer passed to `parse`: `name` is the host name as sent (not
    /// lower-cased), `alpn` the ALPN `protocol_name_list` without its length
    /// prefix (length-prefixed names; empty when the client offered none).
    case sni(name: ByteRange, alpn: ByteRange)
    /// A complete ClientHello without a server_name extension.
    case noSNI(alpn: ByteRange)
    /// The stream does not start with a TLS handshake record (plain text, SSLv2).
    case notTLS
    /// TLS records, but not a well-formed ClientHello (or larger than `scratch`).
    case malformed
}

public enum ClientHelloPeek {
    /// A record fragment may not exceed 2^14 bytes (RFC 8446 §5.1).
    public static let maxRecordLength = 16384
    /// Host names are at most 255 bytes (RFC 1035 §2.3.4; RFC 6066 allows up to 2^16-1, nobody sends that).
    public static let maxNameLength = 255

    static let handshakeRecord: UInt8 = 22
    static let clientHelloType: UInt8 = 1
    static let serverNameExtension = 0
    static let alpnExtension = 16

    /// Parses the ClientHello at the start of a TLS stream. `scratch` receives
    /// the handshake message (4-byte header + body); a message that does not
    /// fit is `.malformed`. The returned ranges index `scratch`.
    public static func parse(_ input: UnsafeRawBufferPointer, scratch: UnsafeMutableRawBufferPointer) -> ClientHelloPeekResult {
        var offset = 0
        var assembled = 0
        var first = true
        while true {
            // Record header: type, legacy version (3, x), 16-bit length.
            guard input.count - offset >= 5 else {
                if first {
                    // The first two bytes already tell TLS from anything else.
                    if input.count > 0 && input[0] != handshakeRecord { return .notTLS }
                    if input.count > 1 && input[1] != 3 { return .notTLS }
                    return .needMore(atLeast: input.count + 1)
                }
                // The next header is checked once whole (its length decides what follows).
                return .needMore(atLeast: offset + 5)
            }
            if input[offset] != handshakeRecord || input[offset + 1] != 3 { return first ? .notTLS : .malformed }
            let length = Int(input[offset + 3]) << 8 | Int(input[offset + 4])
            guard length > 0, length <= maxRecordLength else { return .malformed }
            first = false
            let body = offset + 5
            let available = min(length, input.count - body)
            guard assembled + available <= scratch.count, let dst = scratch.baseAddress, let src = input.baseAddress else {
                return .malformed
            }
            (dst + assembled).copyMemory(from: src + body, byteCount: available)
            assembled += available
            // Handshake header: type 1 (ClientHello), 24-bit length.
            if assembled >= 4 {
                guard scratch[0] == clientHelloType else { return .malformed }
                let total = 4 + (Int(scratch[1]) << 16 | Int(scratch[2]) << 8 | Int(scratch[3]))
                guard total <= scratch.count else { return .malformed }
                if assembled >= total {
                    return parseHello(UnsafeRawBufferPointer(rebasing: scratch[0..<total]))
                }
            }
            if available < length {
                // The next record header (checked once whole) may come before the message ends.
                let recordEnd = body + length
                return .needMore(atLeast: min(input.count + missing(scratch, assembled), recordEnd + 5))
            }
            offset = body + length
        }
    }

    /// Handshake bytes still missing before the next check: the rest of the
    /// 4-byte handshake header, or the rest of the message once its length is known.
    private static func missing(_ scratch: UnsafeMutableRawBufferPointer, _ assembled: Int) -> Int {
        guard assembled >= 4 else { return 4 - assembled }
        return max(1, 4 + (Int(scratch[1]) << 16 | Int(scratch[2]) << 8 | Int(scratch[3])) - assembled)
    }

    /// The ClientHello message (header included), complete.
    static func parseHello(_ m: UnsafeRawBufferPointer) -> ClientHelloPeekResult {
        var r = Reader(bytes: m, position: 4)
        // legacy_version (3, x) and random.
        guard let major = r.u8(), major == 3, r.skip(1), r.skip(32) else { return .malformed }
        guard let sessionLength = r.u8(), sessionLength <= 32, r.skip(Int(sessionLength)) else { return .malformed }
        guard let suites = r.u16(), suites >= 2, suites % 2 == 0, r.skip(suites) else { return .malformed }
        guard let compressions = r.u8(), compressions >= 1, r.skip(Int(compressions)) else { return .malformed }
        // No extensions at all (allowed before TLS 1.3).
        if r.position == m.count { return .noSNI(alpn: .empty) }
        guard let extensionsLength = r.u16(), extensionsLength == m.count - r.position else { return .malformed }
        var name: ByteRange? = nil
        var alpn: ByteRange? = nil
        while r.position < m.count {
            guard let type = r.u16(), let length = r.u16(), length <= m.count - r.position else { return .malformed }
            let data = Reader(bytes: m, position: r.position, end: r.position + length)
            _ = r.skip(length)
            switch type {
            case serverNameExtension:
                guard name == nil, let n = serverName(data) else { return .malformed }
                name = n
            case alpnExtension:
                guard alpn == nil, let a = protocolList(data) else { return .malformed }
                alpn = a
            default:
                continue
            }
        }
        if let name { return .sni(name: name, alpn: alpn ?? .empty) }
        return .noSNI(alpn: alpn ?? .empty)
    }

    /// server_name extension data: a list of (type, name); the host_name (type 0) entry.
    private static func serverName(_ data: Reader) -> ByteRange? {
        var r = data
        guard let listLength = r.u16(), listLength == r.end - r.position, listLength > 0 else { return nil }
        var found: ByteRange? = nil
        while r.position < r.end {
            guard let type = r.u8(), let length = r.u16(), length <= r.end - r.position else { return nil }
            let start = r.position
            _ = r.skip(length)
            guard type == 0 else { continue }
            // One host_name only (RFC 6066 §3); printable ASCII without spaces.
            guard found == nil, length >= 1, length <= maxNameLength else { return nil }
            for i in start..<(start + length) {
                let b = r.bytes[i]
                guard b > 0x20, b < 0x7F else { return nil }
            }
            found = ByteRange(offset: Int32(start), length: Int32(length))
        }
        return found
    }

    /// ALPN extension data: a non-empty list of non-empty, length-prefixed names.
    private static func protocolList(_ data: Reader) -> ByteRange? {
        var r = data
        guard let listLength = r.u16(), listLength == r.end - r.position, listLength >= 2 else { return nil }
        let start = r.position
        while r.position < r.end {
            guard let length = r.u8(), length >= 1, r.skip(Int(length)) else { return nil }
        }
        return ByteRange(offset: Int32(start), length: Int32(listLength))
    }

    /// Whether an ALPN `protocol_name_list` (as returned in a result, read from
    /// the same scratch) offers `name`.
    public static func offers(_ list: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
        var i = 0
        let n = name.utf8CodeUnitCount
        while i < list.count {
            let length = Int(list[i])
            let start = i + 1
            guard length > 0, start + length <= list.count else { return false }
            if length == n {
                var same = true
                for k in 0..<n where list[start + k] != name.utf8Start[k] { same = false; break }
                if same { return true }
            }
            i = start + length
        }
        return false
    }
}

/// Bounds-checked big-endian reads over `bytes[position..<end]`.
struct Reader {
    let bytes: UnsafeRawBufferPointer
    var position: Int
    var end: Int

    init(bytes: UnsafeRawBufferPointer, position: Int, end: Int? = nil) {
        self.bytes = bytes
        self.end = min(end ?? bytes.count, bytes.count)
        self.position = min(position, self.end)
    }

    mutating func u8() -> UInt8? {
        guard position < end else { return nil }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func u16() -> Int? {
        guard end - position >= 2 else { return nil }
        defer { position += 2 }
        return Int(bytes[position]) << 8 | Int(bytes[position + 1])
    }

    /// Advances by `n` if that many bytes remain.
    mutating func skip(_ n: Int) -> Bool {
        guard n >= 0, end - position >= n else { return false }
        position += n
        return true
    }
}
