// Field-line lexing and the header semantics shared by request and response
// parsing: classification, Content-Length, Transfer-Encoding and Connection
// token lists. Everything works on offsets into the caller's buffer; nothing
// allocates. Callers guarantee every range passed here lies inside `buf`.

/// Builds a range from offsets already bounded by the (Int32-clamped) head limit.
@inlinable @inline(__always)
func byteRange(_ start: Int, _ end: Int) -> ByteRange {
    ByteRange(offset: Int32(truncatingIfNeeded: start), length: Int32(truncatingIfNeeded: end &- start))
}

/// Clamps a configured limit into 0...Int32.max so offsets always fit a ByteRange.
@inlinable @inline(__always)
func clampLimit(_ v: Int) -> Int { v < 0 ? 0 : (v > Int(Int32.max) ? Int(Int32.max) : v) }

/// Outcome of lexing one line of the header section.
@usableFromInline
enum FieldLine {
    case field(HeaderField, next: Int)
    /// The blank line ending the section; `next` is the first byte after it.
    case end(next: Int)
    /// A byte at or past `end` is needed (more input, or a size limit).
    case exhausted
    case invalid(StaticString)
}

/// Where lexing of a partially received field line stopped, so the next call
/// resumes there instead of rescanning the line (`HTTP1Parser.parseRequest(_:limits:state:...)`).
/// Plain data; offsets are from the start of the buffer.
@usableFromInline
struct FieldCursor: Equatable, Sendable {
    @usableFromInline enum Stage: UInt8, Sendable { case lineStart, name, ows, value, cr }
    @usableFromInline var stage: Stage = .lineStart
    /// Next byte to examine (meaningless at `.lineStart`).
    @usableFromInline var i: Int32 = 0
    @usableFromInline var nameEnd: Int32 = 0
    @usableFromInline var valueStart: Int32 = 0
    @usableFromInline var valueEnd: Int32 = 0
    @inlinable init() {}
}

/// Lexes `field-name ":" OWS field-value OWS CRLF` (or the final CRLF) at `p`,
/// reading only bytes before `end` (≤ buf.count). Strict: no obs-fold, no bare
/// CR/LF, no space before the colon, no CTLs in the value.
@usableFromInline @inline(__always)
func lexFieldLine(_ buf: UnsafeRawBufferPointer, from p: Int, end: Int) -> FieldLine {
    var cursor = FieldCursor()
    return lexFieldLine(buf, from: p, end: end, cursor: &cursor)
}

/// Resumable form of `lexFieldLine`: on `.exhausted` the cursor records how far
/// the line at `p` was examined, and a later call with the same `p` and cursor
/// (over the same bytes plus more) continues from there, giving exactly what one
/// call over the longer buffer gives. Any other outcome resets the cursor.
@usableFromInline @inline(__always)
func lexFieldLine(_ buf: UnsafeRawBufferPointer, from p: Int, end: Int, cursor: inout FieldCursor) -> FieldLine {
    var i = Int(cursor.i)
    var nameEnd = Int(cursor.nameEnd)
    var valueStart = Int(cursor.valueStart)
    var valueEnd = Int(cursor.valueEnd)  // one past the last non-OWS byte: trailing OWS is trimmed
    @inline(__always) func stop(_ s: FieldCursor.Stage) -> FieldLine {
        cursor.stage = s
        cursor.i = Int32(truncatingIfNeeded: i)
        cursor.nameEnd = Int32(truncatingIfNeeded: nameEnd)
        cursor.valueStart = Int32(truncatingIfNeeded: valueStart)
        cursor.valueEnd = Int32(truncatingIfNeeded: valueEnd)
        return .exhausted
    }
    switch cursor.stage {
    case .lineStart:
        guard p < end else { return .exhausted }
        let first = buf[p]
        if first == ASCII.cr {
            guard p + 1 < end else { return .exhausted }
            return buf[p + 1] == ASCII.lf ? .end(next: p + 2) : .invalid("bare CR in head")
        }
        if first == ASCII.lf { return .invalid("bare LF in head") }
        if isOWS(first) { return .invalid("obs-fold not allowed") }
        i = p
        fallthrough
    case .name:
        while i < end && isTchar(buf[i]) { i += 1 }
        guard i < end else { return stop(.name) }
        if buf[i] != ASCII.colon {
            cursor = FieldCursor()
            if buf[i] == ASCII.lf { return .invalid("bare LF in head") }
            return .invalid("invalid header name")
        }
        if i == p { cursor = FieldCursor(); return .invalid("empty header name") }
        nameEnd = i
        i += 1
        fallthrough
    case .ows:
        while i < end && isOWS(buf[i]) { i += 1 }
        guard i < end else { return stop(.ows) }
        valueStart = i
        valueEnd = i
        fallthrough
    case .value:
        while i < end {
            let c = buf[i]
            if isFieldVchar(c) { i += 1; valueEnd = i; continue }
            if isOWS(c) { i += 1; continue }
            break
        }
        guard i < end else { return stop(.value) }
        let c = buf[i]
        if c == ASCII.lf { cursor = FieldCursor(); return .invalid("bare LF in head") }
        if c != ASCII.cr { cursor = FieldCursor(); return .invalid("invalid header value") }
        fallthrough
    case .cr:
        guard i + 1 < end else { return stop(.cr) }
        cursor = FieldCursor()
        if buf[i + 1] != ASCII.lf { return .invalid("bare CR in head") }
        let kind = classifyHeaderName(buf, start: p, count: nameEnd - p)
        return .field(HeaderField(name: byteRange(p, nameEnd), value: byteRange(valueStart, valueEnd), kind: kind),
                      next: i + 2)
    }
}

/// Case-insensitive compare of `buf[start..<start+s.count]` with the lowercase
/// ASCII literal `s`. Caller guarantees the range is in bounds.
@usableFromInline
func equalsLowercase(_ buf: UnsafeRawBufferPointer, start: Int, count: Int, _ s: StaticString) -> Bool {
    guard count == s.utf8CodeUnitCount else { return false }
    let lit = s.utf8Start
    var k = 0
    while k < count {
        if lowerASCII(buf[start + k]) != lit[k] { return false }
        k += 1
    }
    return true
}

/// Maps a (tchar) field name to a HeaderKind: switch on length, then compare.
@usableFromInline
func classifyHeaderName(_ buf: UnsafeRawBufferPointer, start: Int, count: Int) -> HeaderKind {
    guard count >= 2 else { return .other }
    @inline(__always) func eq(_ s: StaticString) -> Bool { equalsLowercase(buf, start: start, count: count, s) }
    let f = lowerASCII(buf[start])
    switch count {
    case 2: return eq("te") ? .te : .other
    case 3: return eq("via") ? .via : .other
    case 4: return eq("host") ? .host : .other
    case 6: return eq("expect") ? .expect : .other
    case 7:
        if f == 0x74 { return eq("trailer") ? .trailer : .other }
        return eq("upgrade") ? .upgrade : .other
    case 10:
        if f == 0x63 { return eq("connection") ? .connection : .other }
        return eq("keep-alive") ? .keepAlive : .other
    case 12: return eq("x-request-id") ? .xRequestId : .other
    case 14: return eq("content-length") ? .contentLength : .other
    case 15: return eq("x-forwarded-for") ? .xForwardedFor : .other
    case 16:
        if f == 0x70 { return eq("proxy-connection") ? .proxyConnection : .other }
        return eq("x-forwarded-host") ? .xForwardedHost : .other
    case 17:
        if f == 0x74 { return eq("transfer-encoding") ? .transferEncoding : .other }
        return eq("x-forwarded-proto") ? .xForwardedProto : .other
    case 18: return eq("proxy-authenticate") ? .proxyAuthenticate : .other
    case 19: return eq("proxy-authorization") ? .proxyAuthorization : .other
    default: return .other
    }
}

/// Splits a field value on commas. Each element comes back with surrounding OWS
/// trimmed (possibly empty); `pos` starts at the value start and advances.
@usableFromInline
func nextListElement(_ buf: UnsafeRawBufferPointer, pos: inout Int, end: Int) -> (start: Int, end: Int)? {
    guard pos <= end else { return nil }
    var s = pos
    while s < end && isOWS(buf[s]) { s += 1 }
    var c = s
    while c < end && buf[c] != ASCII.comma { c += 1 }
    var e = c
    while e > s && isOWS(buf[e - 1]) { e -= 1 }
    pos = c + 1  // past the comma, or end + 1 when this was the last element
    return (s, e)
}

/// Parses a Content-Length value: 1*DIGIT, or a list of identical such values
/// ("5, 5"). nil for anything else, including values above Int64.max.
@usableFromInline
func parseContentLength(_ buf: UnsafeRawBufferPointer, _ r: ByteRange) -> UInt64? {
    var pos = Int(r.offset)
    let end = r.end
    var result: UInt64? = nil
    while let el = nextListElement(buf, pos: &pos, end: end) {
        guard el.end > el.start else { return nil }
        var v: UInt64 = 0
        var i = el.start
        while i < el.end {
            let d = buf[i] &- 0x30
            guard d < 10 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(d))
            guard !o1, !o2, a <= UInt64(Int64.max) else { return nil }
            v = a
            i += 1
        }
        if let prev = result, prev != v { return nil }
        result = v
    }
    return result
}

/// What the Transfer-Encoding fields of one head say, accumulated across fields.
@usableFromInline
struct TransferCodings {
    @usableFromInline var present = false
    @usableFromInline var chunkedCount = 0
    @usableFromInline var lastIsChunked = false
    /// Some coding other than exactly `chunked` (gzip, identity, chunked;x=y...).
    @usableFromInline var hasOther = false
    /// Empty value, empty list element or a syntax error.
    @usableFromInline var invalid = false
    @usableFromInline init() {}

    /// Adds one field value: `transfer-coding *( OWS "," OWS transfer-coding )`
    /// with `transfer-coding = token *( OWS ";" OWS token "=" ( token / quoted-string ) )`.
    @usableFromInline
    mutating func add(_ buf: UnsafeRawBufferPointer, _ r: ByteRange) {
        present = true
        var i = Int(r.offset)
        let end = r.end
        if i >= end { invalid = true; return }
        while true {
            // One coding: its name first.
            let nameStart = i
            while i < end && isTchar(buf[i]) { i += 1 }
            if i == nameStart { invalid = true; return }
            let isChunked = equalsLowercase(buf, start: nameStart, count: i - nameStart, "chunked")
            var hasParams = false
            // Parameters, then a comma or the end.
            while true {
                while i < end && isOWS(buf[i]) { i += 1 }
                if i == end || buf[i] == ASCII.comma { break }
                guard buf[i] == ASCII.semicolon else { invalid = true; return }
                i += 1
                while i < end && isOWS(buf[i]) { i += 1 }
                let pStart = i
                while i < end && isTchar(buf[i]) { i += 1 }
                guard i > pStart, i < end, buf[i] == ASCII.equals else { invalid = true; return }
                i += 1
                guard let after = skipTokenOrQuoted(buf, from: i, end: end) else { invalid = true; return }
                i = after
                hasParams = true
            }
            if isChunked && !hasParams {
                chunkedCount += 1
                lastIsChunked = true
            } else {
                hasOther = true
                lastIsChunked = false
            }
            if i == end { return }
            i += 1  // the comma; an element must follow
            while i < end && isOWS(buf[i]) { i += 1 }
            if i == end { invalid = true; return }
        }
    }
}

/// Skips `token / quoted-string` at `i`; nil if neither is there (or unterminated).
@usableFromInline
func skipTokenOrQuoted(_ buf: UnsafeRawBufferPointer, from start: Int, end: Int) -> Int? {
    var i = start
    guard i < end else { return nil }
    if buf[i] != ASCII.dquote {
        while i < end && isTchar(buf[i]) { i += 1 }
        return i > start ? i : nil
    }
    i += 1
    while i < end {
        let c = buf[i]
        if c == ASCII.dquote { return i + 1 }
        if c == ASCII.backslash {
            // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
            guard i + 1 < end else { return nil }
            let q = buf[i + 1]
            guard isFieldVchar(q) || isOWS(q) else { return nil }
            i += 2
            continue
        }
        // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
        guard isFieldVchar(c) || isOWS(c) else { return nil }
        i += 1
    }
    return nil
}

/// Tokens of the Connection fields of one head, accumulated across fields.
@usableFromInline
struct ConnectionTokens {
    @usableFromInline var close = false
    @usableFromInline var keepAlive = false
    @usableFromInline var upgrade = false
    @usableFromInline var other = false
    @usableFromInline var invalid = false
    /// Lists Content-Length / Host: fields that must reach every recipient
    /// (RFC 9110 §7.6.1). Dropping them as hop-by-hop would unframe the body
    /// (smuggling) or strip the authority, so such messages are refused.
    @usableFromInline var listsContentLength = false
    @usableFromInline var listsHost = false
    @usableFromInline init() {}

    @usableFromInline
    mutating func add(_ buf: UnsafeRawBufferPointer, _ r: ByteRange) {
        var pos = Int(r.offset)
        while let el = nextListElement(buf, pos: &pos, end: r.end) {
            let n = el.end - el.start
            if n == 0 { continue }  // empty list elements are allowed (RFC 9110 §5.6.1.2)
            var i = el.start
            while i < el.end && isTchar(buf[i]) { i += 1 }
            if i != el.end { invalid = true; return }
            if equalsLowercase(buf, start: el.start, count: n, "close") { close = true }
            else if equalsLowercase(buf, start: el.start, count: n, "keep-alive") { keepAlive = true }
            else if equalsLowercase(buf, start: el.start, count: n, "upgrade") { upgrade = true }
            else {
                other = true
                if equalsLowercase(buf, start: el.start, count: n, "content-length") { listsContentLength = true }
                else if equalsLowercase(buf, start: el.start, count: n, "host") { listsHost = true }
            }
        }
    }
}

/// The framing-relevant facts of a head, gathered in one pass over the table.
@usableFromInline
struct HeadSummary {
    @usableFromInline var contentLength: UInt64? = nil
    @usableFromInline var contentLengthPresent = false
    @usableFromInline var contentLengthInvalid = false
    @usableFromInline var contentLengthConflict = false
    /// More than one Content-Length field, or a comma list ("5, 5"), even if all values agree.
    @usableFromInline var contentLengthRepeated = false
    /// A field named like a framing header with "_" for "-" (Content_Length,
    /// Transfer_Encoding): some back ends fold "_" into "-" and would frame by it.
    @usableFromInline var framingNameWithUnderscore = false
    @usableFromInline var te = TransferCodings()
    @usableFromInline var connection = ConnectionTokens()
    @usableFromInline var hostCount = 0
    @usableFromInline var hostIndex = -1
    @usableFromInline var hostInvalid = false
    @usableFromInline var hasUpgradeHeader = false
    @usableFromInline var expectContinue = false

    @usableFromInline
    init(_ buf: UnsafeRawBufferPointer, _ headers: UnsafeMutableBufferPointer<HeaderField>, count: Int) {
        var k = 0
        while k < count {
            let f = headers[k]
            switch f.kind {
            case .contentLength:
                if contentLengthPresent { contentLengthRepeated = true }
                contentLengthPresent = true
                var j = Int(f.value.offset)
                while j < f.value.end {
                    if buf[j] == ASCII.comma { contentLengthRepeated = true; break }
                    j += 1
                }
                if let v = parseContentLength(buf, f.value) {
                    if let prev = contentLength, prev != v { contentLengthConflict = true }
                    contentLength = v
                } else {
                    contentLengthInvalid = true
                }
            case .transferEncoding:
                te.add(buf, f.value)
            case .connection:
                connection.add(buf, f.value)
            case .host:
                hostCount += 1
                hostIndex = k
                var i = Int(f.value.offset)
                while i < f.value.end {
                    if !isAuthorityChar(buf[i]) { hostInvalid = true; break }
                    i += 1
                }
            case .upgrade:
                hasUpgradeHeader = true
            case .expect:
                if equalsLowercase(buf, start: Int(f.value.offset), count: Int(f.value.length), "100-continue") {
                    expectContinue = true
                }
            case .other:
                let len = Int(f.name.length)
                if (len == 14 && equalsLowercase(buf, start: Int(f.name.offset), count: 14, "content_length"))
                    || (len == 17 && equalsLowercase(buf, start: Int(f.name.offset), count: 17, "transfer_encoding")) {
                    framingNameWithUnderscore = true
                }
            default:
                break
            }
            k += 1
        }
    }
}
