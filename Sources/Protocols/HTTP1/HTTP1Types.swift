// Types shared by the HTTP/1.1 request/response parsers, the chunked decoder and
// the head writer. Everything here is plain data (no references) so the proxy can
// keep it in per-reactor slabs without ARC traffic.

/// A byte range inside the buffer a head was parsed from. Offsets, not pointers,
/// so a parsed head stays valid if the caller moves the bytes.
public struct ByteRange: Equatable, Sendable {
    public var offset: Int32
    public var length: Int32
    @inlinable public init(offset: Int32, length: Int32) { self.offset = offset; self.length = length }
    public static let empty = ByteRange(offset: 0, length: 0)
    @inlinable public var end: Int { Int(offset) + Int(length) }
}

/// Request methods the proxy treats specially; everything else is `.other`
/// (still forwarded, the raw token is in `RequestHead.method`).
public enum HTTPMethod: UInt8, Sendable {
    case get, head, post, put, delete, connect, options, trace, patch, other
}

/// Headers the proxy must recognise without comparing strings again.
/// The parser classifies each field once (case-insensitively).
public enum HeaderKind: UInt8, Sendable {
    case other
    case host, contentLength, transferEncoding, connection, keepAlive, proxyConnection
    case te, trailer, upgrade, expect, via
    case xForwardedFor, xForwardedProto, xForwardedHost, xRequestId
    case proxyAuthenticate, proxyAuthorization
}

/// One header field: name and value (OWS trimmed) as ranges into the head bytes.
public struct HeaderField: Equatable, Sendable {
    public var name: ByteRange
    public var value: ByteRange
    public var kind: HeaderKind
    @inlinable public init(name: ByteRange, value: ByteRange, kind: HeaderKind) {
        self.name = name; self.value = value; self.kind = kind
    }
    public static let empty = HeaderField(name: .empty, value: .empty, kind: .other)
}

/// How the message body is delimited (RFC 9112 §6.3).
public enum BodyFraming: Equatable, Sendable {
    case none
    case contentLength(UInt64)
    case chunked
    /// Response only: the body runs until the upstream closes.
    case untilClose
}

/// Why a message was refused, with the status the client gets. `reason` is a
/// static string so reporting an error never allocates.
public struct HTTP1Error: Error, Equatable, Sendable {
    public var status: UInt16
    public var reason: StaticString
    @inlinable public init(status: UInt16, reason: StaticString) { self.status = status; self.reason = reason }
    /// Same status and same reason text. Compares bytes, not literal addresses
    /// (identical literals need not share storage); never allocates.
    public static func == (a: HTTP1Error, b: HTTP1Error) -> Bool {
        guard a.status == b.status else { return false }
        return a.reason.withUTF8Buffer { x in
            b.reason.withUTF8Buffer { y in
                x.count == y.count && (x.count == 0 || memcmpBytes(x, y))
            }
        }
    }
    public var reasonText: String { reason.description }
}

/// Byte-wise equality of two equally long buffers (Foundation-free memcmp).
@usableFromInline
func memcmpBytes(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Bool {
    guard x.count == y.count else { return false }
    var i = 0
    while i < x.count {
        if x[i] != y[i] { return false }
        i += 1
    }
    return true
}

/// Size limits applied while parsing a head.
public struct HTTP1Limits: Sendable, Equatable {
    /// Request line (method SP target SP version CRLF); over it → 414.
    public var maxRequestLine: Int
    /// Whole head incl. request line and final CRLF CRLF; over it → 431.
    public var maxHeaderBytes: Int
    /// Number of header fields; over it → 431.
    public var maxHeaderCount: Int
    public init(maxRequestLine: Int = 8192, maxHeaderBytes: Int = 32768, maxHeaderCount: Int = 100) {
        self.maxRequestLine = maxRequestLine; self.maxHeaderBytes = maxHeaderBytes; self.maxHeaderCount = maxHeaderCount
    }
}

/// Outcome of one parse attempt over the bytes received so far.
public enum ParseStatus: Equatable, Sendable {
    /// Need more bytes; nothing is wrong yet.
    case incomplete
    /// The head is complete; its length (through the blank line) is in the head.
    case complete
    case error(HTTP1Error)
}

/// A parsed request head. Ranges point into the parsed buffer; header fields are
/// written to the caller-supplied table (`headerCount` entries).
public struct RequestHead: Sendable {
    public var method: ByteRange = .empty
    public var methodKind: HTTPMethod = .other
    public var target: ByteRange = .empty
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var versionMinor: UInt8 = 1
    public var headerCount: Int = 0
    /// Bytes from the start of the parsed buffer through the blank line, including
    /// any empty lines skipped before the request line: the caller consumes exactly this.
    public var headLength: Int = 0
    public var framing: BodyFraming = .none
    /// True if the connection may stay open after this exchange (version default + Connection tokens).
    public var keepAlive: Bool = true
    public var expectContinue: Bool = false
    /// Index into the header table of the Host field, or -1.
    public var hostIndex: Int = -1
    /// `Connection: upgrade` with an `Upgrade` header present.
    public var wantsUpgrade: Bool = false
    /// Connection header lists tokens other than close/keep-alive/upgrade; such
    /// named headers are hop-by-hop too (`HTTP1Parser.isListedInConnection`).
    public var connectionListsOther: Bool = false
    /// For absolute-form targets (`http://host/path`): the authority and path parts.
    /// `absolutePath` is everything after the authority ("/p?q", "?q"), or empty.
    public var absoluteAuthority: ByteRange = .empty
    public var absolutePath: ByteRange = .empty
    public var isAbsoluteForm: Bool = false
    public init() {}
}

/// A parsed response (status line + headers) head.
public struct ResponseHead: Sendable {
    public var status: UInt16 = 0
    public var reason: ByteRange = .empty
    public var versionMinor: UInt8 = 1
    public var headerCount: Int = 0
    public var headLength: Int = 0
    public var framing: BodyFraming = .none
    public var keepAlive: Bool = true
    public var connectionListsOther: Bool = false
    public init() {}
}

/// One step of the incremental chunked decoder (see `ChunkedDecoder.step`).
public enum ChunkedEvent: Equatable, Sendable {
    /// Chunk payload bytes `buf[start..<end]`.
    case data(start: Int, end: Int)
    /// Framing bytes (size line, CRLF, extensions, trailer lines) were consumed up to `end`.
    case framing(end: Int)
    /// All bytes from the index were consumed; feed the next buffer at index 0.
    case needMore
    /// The message (last-chunk + trailers + CRLF) ended; `end` is the first byte after it.
    case done(end: Int)
    case error(HTTP1Error)
}
