// HTTP/1.1 request-head parser (RFC 9112 §2-§3, §6.3). Strict on purpose: a
// proxy that accepts what its upstream reads differently enables smuggling.
// Stateless: the caller re-parses from the start of the buffer on each call.

/// Namespace for the HTTP/1.x head parsers.
public enum HTTP1Parser {
    /// Leading empty lines tolerated before a start line (RFC 9112 §2.2 says at least one).
    @usableFromInline static var maxLeadingEmptyLines: Int { 8 }
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
        let n = buf.count
        let headLimit = clampLimit(limits.maxHeaderBytes)
        @inline(__always) func bad(_ r: StaticString) -> ParseStatus { .error(HTTP1Error(status: 400, reason: r)) }
        let tooLarge = ParseStatus.error(HTTP1Error(status: 431, reason: "request header fields too large"))

        // Leading empty lines.
        var p = 0
        switch skipLeadingEmptyLines(buf, end: min(n, headLimit)) {
        case .next(let q): p = q
        case .exhausted: return headLimit <= n ? tooLarge : .incomplete
        case .invalid(let r): return bad(r)
        }

        // Request line, bounded by both the line limit and the head limit.
        let lineLimit = p + clampLimit(limits.maxRequestLine)
        let end = min(n, min(lineLimit, headLimit))
        @inline(__always) func lineExhausted() -> ParseStatus {
            if lineLimit <= n && lineLimit <= headLimit {
                return .error(HTTP1Error(status: 414, reason: "request line too long"))
            }
            return headLimit <= n ? tooLarge : .incomplete
        }

        let methodStart = p
        var i = p
        while i < end && isTchar(buf[i]) { i += 1 }
        guard i < end else { return lineExhausted() }
        if buf[i] != ASCII.sp || i == methodStart {
            if buf[i] == ASCII.lf { return bad("bare LF in head") }
            return bad(i == methodStart ? "invalid method" : (buf[i] == ASCII.cr ? "malformed request line" : "invalid method"))
        }
        let methodEnd = i

        let targetStart = i + 1
        i = targetStart
        while i < end && isVisibleASCII(buf[i]) { i += 1 }
        guard i < end else { return lineExhausted() }
        if buf[i] != ASCII.sp || i == targetStart {
            switch buf[i] {
            case ASCII.lf: return bad("bare LF in head")
            case ASCII.sp, ASCII.cr: return bad("malformed request line")
            default: return bad("invalid request target")
            }
        }
        let targetEnd = i

        // "HTTP/" DIGIT "." DIGIT CR LF, checked byte by byte as bytes arrive.
        let v = i + 1
        var k = 0
        while k < 10 {
            guard v + k < end else { return lineExhausted() }
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
        head.versionMinor = minor == 0x31 ? 1 : 0
        head.method = byteRange(methodStart, methodEnd)
        head.methodKind = HTTPMethod.classify(buf, start: methodStart, count: methodEnd - methodStart)
        head.target = byteRange(targetStart, targetEnd)
        if let r = analyzeTarget(buf, start: targetStart, end: targetEnd, head: &head) { return bad(r) }
        p = v + 10

        // Header fields.
        let fieldEnd = min(n, headLimit)
        let capacity = min(clampLimit(limits.maxHeaderCount), headers.count)
        var count = 0
        while true {
            if count == capacity && p < fieldEnd && buf[p] != ASCII.cr {
                return .error(HTTP1Error(status: 431, reason: "too many header fields"))
            }
            switch lexFieldLine(buf, from: p, end: fieldEnd) {
            case .field(let f, let next):
                guard count < capacity else { return .error(HTTP1Error(status: 431, reason: "too many header fields")) }
                headers[count] = f
                count += 1
                p = next
                continue
            case .end(let next):
                p = next
            case .exhausted:
                return headLimit <= n ? tooLarge : .incomplete
            case .invalid(let r):
                return bad(r)
            }
            break
        }
        head.headerCount = count
        head.headLength = p
        return applyRequestSemantics(buf, headers: headers, head: &head)
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
