// HTTP/1.1 request-head parser (RFC 9112 §2-§3, §6.3). Strict on purpose: a
// proxy that accepts what its upstream reads differently enables smuggling.
//
// Incremental scanning. A head may arrive a few bytes per packet; re-parsing
// the whole buffer on every receive costs O(n²) for a trickled head. The parser
// is therefore written as a resumable left-to-right scan (`scanRequestHead`):
// each stage (request-line method / target / version bytes, then field lines,
// each field line itself through `FieldCursor`) stops where the input runs out
// and records its position in a small POD, `HeadScanState`. Resuming over the
// same bytes plus more continues from that position, so each byte is examined
// once per stage, and the outcome after any prefix is exactly what the one-shot
// parse of that prefix returns: same errors (400/414/431/505...) reported at the
// same byte, same limits. The one-shot `parseRequest` is that same scan started
// from a fresh state, so the two cannot drift apart.
//
// What is not kept between calls: the header-field table (the proxy's is
// per-reactor scratch shared by all connections) and the request-line results
// (`RequestHead`). So when the blank line arrives in a call that resumed after
// the request line, the head is parsed once more from the start (one O(n) pass
// per head) to fill the table and the head; the cross-field rules (Host count,
// Content-Length / Transfer-Encoding, Connection...) run only then, as today.

/// Namespace for the HTTP/1.x head parsers.
public enum HTTP1Parser {
    /// Leading empty lines tolerated before a start line (RFC 9112 §2.2 says at least one).
    @usableFromInline static var maxLeadingEmptyLines: Int { 8 }
}

/// How far an incremental request-head scan got (`HTTP1Parser.parseRequest(_:limits:state:head:headers:)`).
/// Plain data (40 bytes), kept per connection between receives. Offsets count
/// from the start of the head buffer, which may only grow at its end between
/// calls. Reset it (`HeadScanState()`) whenever a new head starts; the parser
/// resets it itself after `.complete` and `.error`.
public struct HeadScanState: Equatable, Sendable {
    @usableFromInline enum Stage: UInt8, Sendable { case leading, method, target, version, fields }
    @usableFromInline var stage: Stage = .leading
    /// Version bytes ("HTTP/1.1\r\n") already checked.
    @usableFromInline var versionBytes: UInt8 = 0
    /// Start of the request line (after skipped empty lines), then of the current field line.
    @usableFromInline var line: Int32 = 0
    @usableFromInline var methodEnd: Int32 = 0
    @usableFromInline var targetEnd: Int32 = 0
    /// Field lines lexed so far.
    @usableFromInline var fields: Int32 = 0
    /// Request-line scan position, then the current field line's cursor (its `i`).
    @usableFromInline var cursor = FieldCursor()
    @inlinable public init() {}

    /// Bytes at the start of the buffer this state has examined (they must not change).
    @inlinable public var examined: Int {
        switch stage {
        case .leading: return 0
        case .method, .target, .version: return Int(cursor.i)
        case .fields: return cursor.stage == .lineStart ? Int(line) : Int(cursor.i)
        }
    }
}

extension HTTP1Parser {
    /// Parses a request head from the start of `buf` (everything received so far
    /// for this request). Returns `.incomplete` while the blank line has not
    /// arrived and no limit is exceeded, `.complete` with `head` filled and
    /// `headers[0..<head.headerCount]` written, or `.error`.
    ///
    /// All ranges are offsets from the start of `buf`; `head.headLength` counts
    /// from `buf[0]` (including skipped leading CRLFs), so the caller consumes
    /// exactly `headLength` bytes. Content-Length 0 yields framing `.none`.
    public static func parseRequest(_ buf: UnsafeRawBufferPointer, limits: HTTP1Limits, head: inout RequestHead,
                                    headers: UnsafeMutableBufferPointer<HeaderField>) -> ParseStatus {
        head = RequestHead()
        var state = HeadScanState()
        let s = scanRequestHead(buf, limits: limits, state: &state, head: &head, headers: headers)
        guard case .complete = s else { return s }
        return applyRequestSemantics(buf, headers: headers, head: &head)
    }

    /// Incremental form of `parseRequest` for a head that arrives in pieces:
    /// `buf` is everything received so far (the bytes of the previous call plus
    /// more), `state` what earlier calls examined. Examines only bytes not yet
    /// examined (plus, once, the whole head when it completes) and returns exactly
    /// what `parseRequest(buf, ...)` returns. `head` and `headers` are written as
    /// by `parseRequest` when it returns `.complete`; `headers` may be clobbered
    /// between calls (scratch shared by connections). `state` is reset on
    /// `.complete` and `.error`.
    public static func parseRequest(_ buf: UnsafeRawBufferPointer, limits: HTTP1Limits, state: inout HeadScanState,
                                    head: inout RequestHead, headers: UnsafeMutableBufferPointer<HeaderField>) -> ParseStatus {
        // Defensive: a buffer shorter than what was examined is not a continuation.
        if state.examined > buf.count { state = HeadScanState() }
        let resumed = state.stage == .fields
        head = RequestHead()
        switch scanRequestHead(buf, limits: limits, state: &state, head: &head, headers: headers) {
        case .incomplete:
            return .incomplete
        case .error(let e):
            state = HeadScanState()
            return .error(e)
        case .complete:
            state = HeadScanState()
            // The request line (and maybe fields) were read in earlier calls: fill head and table now.
            if resumed { return parseRequest(buf, limits: limits, head: &head, headers: headers) }
            return applyRequestSemantics(buf, headers: headers, head: &head)
        }
    }

    /// The resumable scan behind both entry points. `.complete` means the blank
    /// line was reached (`headLength`, `headerCount` set; request-line fields of
    /// `head` set only if the request line ended in this call); the request
    /// semantics are not applied yet. On `.incomplete`, `state` records progress.
    @usableFromInline
    static func scanRequestHead(_ buf: UnsafeRawBufferPointer, limits: HTTP1Limits, state st: inout HeadScanState,
                                head: inout RequestHead, headers: UnsafeMutableBufferPointer<HeaderField>) -> ParseStatus {
        let n = buf.count
        let headLimit = clampLimit(limits.maxHeaderBytes)
        @inline(__always) func bad(_ r: StaticString) -> ParseStatus { .error(HTTP1Error(status: 400, reason: r)) }
        let tooLarge = ParseStatus.error(HTTP1Error(status: 431, reason: "request header fields too large"))

        // Leading empty lines: at most 9 CRLFs, re-examined until the request line starts.
        if st.stage == .leading {
            switch skipLeadingEmptyLines(buf, end: min(n, headLimit)) {
            case .next(let q):
                st.stage = .method
                st.line = Int32(truncatingIfNeeded: q)
                st.cursor.i = st.line
            case .exhausted: return headLimit <= n ? tooLarge : .incomplete
            case .invalid(let r): return bad(r)
            }
        }

        // Request line, bounded by both the line limit and the head limit.
        let methodStart = Int(st.line)
        let lineLimit = methodStart + clampLimit(limits.maxRequestLine)
        let end = min(n, min(lineLimit, headLimit))
        @inline(__always) func lineExhausted() -> ParseStatus {
            if lineLimit <= n && lineLimit <= headLimit {
                return .error(HTTP1Error(status: 414, reason: "request line too long"))
            }
            return headLimit <= n ? tooLarge : .incomplete
        }
        var i = Int(st.cursor.i)
        var p = 0
        var count = 0
        switch st.stage {
        case .leading:
            return .incomplete  // unreachable: left above
        case .method:
            while i < end && isTchar(buf[i]) { i += 1 }
            guard i < end else { st.cursor.i = Int32(truncatingIfNeeded: i); return lineExhausted() }
            if buf[i] != ASCII.sp || i == methodStart {
                if buf[i] == ASCII.lf { return bad("bare LF in head") }
                return bad(i == methodStart ? "invalid method" : (buf[i] == ASCII.cr ? "malformed request line" : "invalid method"))
            }
            st.methodEnd = Int32(truncatingIfNeeded: i)
            i += 1
            fallthrough
        case .target:
            let targetStart = Int(st.methodEnd) + 1
            while i < end && isVisibleASCII(buf[i]) { i += 1 }
            guard i < end else { st.stage = .target; st.cursor.i = Int32(truncatingIfNeeded: i); return lineExhausted() }
            if buf[i] != ASCII.sp || i == targetStart {
                switch buf[i] {
                case ASCII.lf: return bad("bare LF in head")
                case ASCII.sp, ASCII.cr: return bad("malformed request line")
                default: return bad("invalid request target")
                }
            }
            st.targetEnd = Int32(truncatingIfNeeded: i)
            st.versionBytes = 0
            fallthrough
        case .version:
            // "HTTP/" DIGIT "." DIGIT CR LF, checked byte by byte as bytes arrive.
            let v = Int(st.targetEnd) + 1
            var k = Int(st.versionBytes)
            while k < 10 {
                guard v + k < end else {
                    st.stage = .version
                    st.versionBytes = UInt8(truncatingIfNeeded: k)
                    st.cursor.i = Int32(truncatingIfNeeded: v + k)
                    return lineExhausted()
                }
                let c = buf[v + k]
                switch k {
                case 0...4:
                    let lit: StaticString = "HTTP/"
                    if c != lit.utf8Start[k] { return bad("invalid HTTP version") }
                case 5, 7:
                    if !isDigit(c) { return bad("invalid HTTP version") }
                case 6:
                    if c != 0x2E { return bad("invalid HTTP version") }
                case 8:
                    if c == ASCII.lf { return bad("bare LF in head") }
                    if c == ASCII.sp { return bad("malformed request line") }
                    if c != ASCII.cr { return bad("invalid HTTP version") }
                default:
                    if c != ASCII.lf { return bad("bare CR in head") }
                }
                k += 1
            }
            let major = buf[v + 5], minor = buf[v + 7]
            guard major == 0x31, minor == 0x30 || minor == 0x31 else {
                return .error(HTTP1Error(status: 505, reason: "HTTP version not supported"))
            }
            let methodEnd = Int(st.methodEnd), targetStart = methodEnd + 1, targetEnd = Int(st.targetEnd)
            head.versionMinor = minor == 0x31 ? 1 : 0
            head.method = byteRange(methodStart, methodEnd)
            head.methodKind = HTTPMethod.classify(buf, start: methodStart, count: methodEnd - methodStart)
            head.target = byteRange(targetStart, targetEnd)
            if let r = analyzeTarget(buf, start: targetStart, end: targetEnd, head: &head) { return bad(r) }
            p = v + 10
            st.stage = .fields
            st.cursor = FieldCursor()
        case .fields:
            p = Int(st.line)
            count = Int(st.fields)
        }

        // Header fields.
        let fieldEnd = min(n, headLimit)
        let capacity = min(clampLimit(limits.maxHeaderCount), headers.count)
        while true {
            if count == capacity && p < fieldEnd && buf[p] != ASCII.cr {
                return .error(HTTP1Error(status: 431, reason: "too many header fields"))
            }
            switch lexFieldLine(buf, from: p, end: fieldEnd, cursor: &st.cursor) {
            case .field(let f, let next):
                guard count < capacity else { return .error(HTTP1Error(status: 431, reason: "too many header fields")) }
                headers[count] = f
                count += 1
                p = next
                continue
            case .end(let next):
                p = next
            case .exhausted:
                st.line = Int32(truncatingIfNeeded: p)
                st.fields = Int32(truncatingIfNeeded: count)
                return headLimit <= n ? tooLarge : .incomplete
            case .invalid(let r):
                return bad(r)
            }
            break
        }
        head.headerCount = count
        head.headLength = p
        return .complete
    }

    /// Checks the target form against the method (RFC 9112 §3.2) and splits absolute-form.
    static func analyzeTarget(_ buf: UnsafeRawBufferPointer, start: Int, end: Int, head: inout RequestHead) -> StaticString? {
        let first = buf[start]
        if head.methodKind == .connect {
            // authority-form: host ":" port, nothing else.
            var colon = -1
            var i = start
            while i < end {
                let c = buf[i]
                if !isAuthorityChar(c) { return "invalid CONNECT target" }
                if c == ASCII.colon { colon = i }
                i += 1
            }
            let portLen = end - colon - 1
            guard colon > start, portLen >= 1, portLen <= 5 else { return "invalid CONNECT target" }
            i = colon + 1
            while i < end {
                if !isDigit(buf[i]) { return "invalid CONNECT target" }
                i += 1
            }
            return nil
        }
        if first == ASCII.slash { return nil }
        if first == 0x2A {  // "*"
            return end - start == 1 && head.methodKind == .options ? nil : "invalid asterisk-form target"
        }
        // absolute-form with an http(s) scheme.
        var a = -1
        if end - start >= 7 && equalsLowercase(buf, start: start, count: 7, "http://") { a = start + 7 }
        else if end - start >= 8 && equalsLowercase(buf, start: start, count: 8, "https://") { a = start + 8 }
        guard a >= 0 else { return "invalid request target" }
        var i = a
        while i < end && buf[i] != ASCII.slash && buf[i] != 0x3F { // "?"
            if !isAuthorityChar(buf[i]) { return "invalid absolute-form authority" }
            i += 1
        }
        guard i > a else { return "invalid absolute-form authority" }
        head.isAbsoluteForm = true
        head.absoluteAuthority = byteRange(a, i)
        // The rest ("/path?q" or "?q"); empty when the target ends after the authority.
        head.absolutePath = i < end ? byteRange(i, end) : .empty
        return nil
    }

    /// Content-Length / Transfer-Encoding / Connection / Host / Expect rules for requests.
    static func applyRequestSemantics(_ buf: UnsafeRawBufferPointer, headers: UnsafeMutableBufferPointer<HeaderField>,
                                      head: inout RequestHead) -> ParseStatus {
        @inline(__always) func bad(_ r: StaticString) -> ParseStatus { .error(HTTP1Error(status: 400, reason: r)) }
        let s = HeadSummary(buf, headers, count: head.headerCount)
        let http11 = head.versionMinor == 1

        if s.hostCount > 1 { return bad("multiple Host headers") }
        if s.hostInvalid { return bad("invalid Host header") }
        if http11 && s.hostCount == 0 { return bad("missing Host header") }
        head.hostIndex = s.hostIndex

        if s.framingNameWithUnderscore { return bad("framing header name with underscore") }
        if s.contentLengthInvalid { return bad("invalid Content-Length") }
        if s.contentLengthConflict { return bad("conflicting Content-Length") }
        // RFC 9110 §8.6 lets a recipient reject "5, 5" or repeated fields; a proxy
        // must not pass them on unchanged, and Edge forwards fields verbatim.
        if s.contentLengthRepeated { return bad("repeated Content-Length") }

        if s.te.present {
            if s.contentLengthPresent { return bad("both Content-Length and Transfer-Encoding") }
            if !http11 { return bad("Transfer-Encoding in HTTP/1.0 request") }
            if s.te.invalid { return bad("invalid Transfer-Encoding") }
            if s.te.chunkedCount > 1 { return bad("chunked applied more than once") }
            if s.te.chunkedCount == 1 && !s.te.lastIsChunked { return bad("chunked is not the final coding") }
            if s.te.hasOther || !s.te.lastIsChunked {
                return .error(HTTP1Error(status: 501, reason: "unsupported transfer coding"))
            }
            head.framing = .chunked
        } else if let cl = s.contentLength, cl > 0 {
            head.framing = .contentLength(cl)
        } else {
            head.framing = .none
        }

        if s.connection.invalid { return bad("invalid Connection header") }
        if s.connection.listsContentLength || s.connection.listsHost { return bad("Connection lists Content-Length or Host") }
        head.keepAlive = http11 ? !s.connection.close : (s.connection.keepAlive && !s.connection.close)
        head.wantsUpgrade = s.connection.upgrade && s.hasUpgradeHeader
        head.connectionListsOther = s.connection.other
        head.expectContinue = http11 && s.expectContinue
        return .complete
    }
}

/// Result of skipping the empty lines that may precede a start line.
@usableFromInline
enum LeadingLines {
    case next(Int)
    case exhausted
    case invalid(StaticString)
}

/// Skips up to `HTTP1Parser.maxLeadingEmptyLines` CRLFs at the start of `buf`.
@usableFromInline
func skipLeadingEmptyLines(_ buf: UnsafeRawBufferPointer, end: Int) -> LeadingLines {
    var p = 0
    var skipped = 0
    while true {
        guard p < end else { return .exhausted }
        let c = buf[p]
        if c == ASCII.lf { return .invalid("bare LF in head") }
        if c != ASCII.cr { return .next(p) }
        guard p + 1 < end else { return .exhausted }
        if buf[p + 1] != ASCII.lf { return .invalid("bare CR in head") }
        skipped += 1
        if skipped > HTTP1Parser.maxLeadingEmptyLines { return .invalid("too many empty lines before start line") }
        p += 2
    }
}

extension HTTPMethod {
    /// Classifies a method token (case-sensitive, RFC 9110 §9.1) without allocating.
    /// `buf[start..<start+count]` must be in bounds.
    public static func classify(_ buf: UnsafeRawBufferPointer, start: Int, count: Int) -> HTTPMethod {
        guard count >= 3, count <= 7, start >= 0, start <= buf.count - count else { return .other }
        @inline(__always) func eq(_ s: StaticString) -> Bool {
            let lit = s.utf8Start
            var k = 0
            while k < count {
                if buf[start + k] != lit[k] { return false }
                k += 1
            }
            return true
        }
        switch count {
        case 3: return eq("GET") ? .get : (eq("PUT") ? .put : .other)
        case 4: return eq("HEAD") ? .head : (eq("POST") ? .post : .other)
        case 5: return eq("TRACE") ? .trace : (eq("PATCH") ? .patch : .other)
        case 6: return eq("DELETE") ? .delete : .other
        case 7: return eq("CONNECT") ? .connect : (eq("OPTIONS") ? .options : .other)
        default: return .other
        }
    }
}
