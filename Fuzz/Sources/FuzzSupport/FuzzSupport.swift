import Protocols

// Shared by the libFuzzer targets: invariant checks that trap (libFuzzer turns
// a trap into a saved crash input) and exact-size copies of the input, so
// AddressSanitizer catches a read one byte before or after the parsed bytes.

/// Traps with `message` unless `condition` holds.
@inline(__always)
public func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("fuzz invariant violated: \(message())") }
}

/// True if `r` lies inside `0..<limit` (non-negative offset and length).
@inline(__always)
public func inside(_ r: ByteRange, _ limit: Int) -> Bool {
    r.offset >= 0 && r.length >= 0 && r.end <= limit
}

/// A heap copy of some bytes, exactly as large as they are (ASan-visible bounds).
public final class ExactBytes {
    public let buffer: UnsafeRawBufferPointer
    private let storage: UnsafeMutableRawBufferPointer

    public init(_ bytes: UnsafeRawBufferPointer) {
        storage = .allocate(byteCount: bytes.count, alignment: 1)
        if bytes.count > 0 { storage.copyMemory(from: bytes) }
        buffer = UnsafeRawBufferPointer(storage)
    }

    /// An exact-size copy of an array's bytes.
    public static func copy(_ bytes: [UInt8]) -> ExactBytes {
        bytes.withUnsafeBytes { ExactBytes($0) }
    }

    deinit { storage.deallocate() }

    public var count: Int { buffer.count }

    /// An exact-size copy of the first `k` bytes.
    public func prefix(_ k: Int) -> ExactBytes {
        ExactBytes(UnsafeRawBufferPointer(rebasing: buffer[0..<min(max(k, 0), buffer.count)]))
    }
}

/// Reads configuration bytes off the front of a fuzz input; the rest is the payload.
public struct FuzzInput {
    public let all: UnsafeRawBufferPointer
    public private(set) var position = 0

    public init(_ data: UnsafeRawPointer?, _ count: Int) {
        all = UnsafeRawBufferPointer(start: count > 0 ? data : nil, count: count)
    }

    /// Next byte, or 0 once the input is exhausted.
    public mutating func byte() -> UInt8 {
        guard position < all.count else { return 0 }
        defer { position += 1 }
        return all[position]
    }

    /// Everything not yet read.
    public var rest: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: all[position...]) }
}

/// A header table of exactly `capacity` entries (ASan-visible bounds).
public final class HeaderTable {
    public let fields: UnsafeMutableBufferPointer<HeaderField>
    public init(capacity: Int) {
        fields = .allocate(capacity: capacity)
        fields.initialize(repeating: .empty)
    }
    deinit { fields.deallocate() }
}

/// Limits chosen by a fuzz byte: the defaults, small ones that the corpus
/// crosses often, and degenerate ones (0 and negative are clamped to 0).
public func fuzzLimits(_ b: UInt8) -> HTTP1Limits {
    switch b & 3 {
    case 0: return HTTP1Limits()
    case 1: return HTTP1Limits(maxRequestLine: 24, maxHeaderBytes: 60, maxHeaderCount: 3)
    case 2: return HTTP1Limits(maxRequestLine: 64 + Int(b >> 2), maxHeaderBytes: 128 + 8 * Int(b >> 2), maxHeaderCount: Int(b >> 2))
    default: return HTTP1Limits(maxRequestLine: Int(b >> 2) - 8, maxHeaderBytes: Int(b >> 2) - 4, maxHeaderCount: -1)
    }
}

/// Checks every parsed header field: ranges inside the head, a non-empty
/// token name followed by ':', a value without CR, LF or surrounding OWS.
public func checkFields(_ buf: UnsafeRawBufferPointer, _ fields: UnsafeMutableBufferPointer<HeaderField>,
                        count: Int, headLength: Int) {
    require(count >= 0 && count <= fields.count, "headerCount \(count) outside the table of \(fields.count)")
    var prevEnd = 0
    for k in 0..<count {
        let f = fields[k]
        require(inside(f.name, headLength) && f.name.length > 0, "field \(k) name \(f.name) outside head \(headLength)")
        require(inside(f.value, headLength), "field \(k) value \(f.value) outside head \(headLength)")
        require(Int(f.name.offset) >= prevEnd, "field \(k) overlaps the previous one")
        require(Int(f.value.offset) > f.name.end, "field \(k) value starts before the colon")
        require(buf[f.name.end] == UInt8(ascii: ":"), "field \(k) name not followed by ':'")
        for i in Int(f.name.offset)..<f.name.end {
            let c = buf[i]
            require(c > 0x20 && c < 0x7F && c != UInt8(ascii: ":"), "field \(k) name byte \(c)")
        }
        for i in Int(f.value.offset)..<f.value.end {
            let c = buf[i]
            require(c == 0x09 || (c >= 0x20 && c != 0x7F), "field \(k) value byte \(c)")
        }
        if f.value.length > 0 {
            let a = buf[Int(f.value.offset)], z = buf[f.value.end - 1]
            require(a != 0x20 && a != 0x09 && z != 0x20 && z != 0x09, "field \(k) value not OWS-trimmed")
        }
        prevEnd = max(f.name.end, f.value.end)
        _ = HTTP1Parser.isListedInConnection(buf, headers: UnsafeBufferPointer(fields), count: count, name: f.name)
    }
}

/// Appends `buf[r]` to `out`.
public func append(_ out: inout [UInt8], _ buf: UnsafeRawBufferPointer, _ r: ByteRange) {
    out.append(contentsOf: buf[Int(r.offset)..<r.end])
}

/// The head re-serialized the way a proxy forwards it: `startLine` CRLF, then
/// every field as `name: value` CRLF, then CRLF.
public func reserialize(startLine: [UInt8], _ buf: UnsafeRawBufferPointer,
                        _ fields: UnsafeMutableBufferPointer<HeaderField>, count: Int) -> [UInt8] {
    var out = startLine
    out += [0x0D, 0x0A]
    for k in 0..<count {
        append(&out, buf, fields[k].name)
        out += [UInt8(ascii: ":"), 0x20]
        append(&out, buf, fields[k].value)
        out += [0x0D, 0x0A]
    }
    out += [0x0D, 0x0A]
    return out
}
