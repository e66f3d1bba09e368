// HTTP/1.1 response-head parser (RFC 9112 §4, §6.3). Every failure is a 502:
// whatever the upstream sent wrong, the client sees a bad gateway.

extension HTTP1Parser {
    /// Parses a response head from the start of `buf`. `requestMethod` decides
    /// bodiless responses. Framing (RFC 9112 §6.3): 1xx/204/304, any response to
    /// HEAD and 2xx to CONNECT → `.none`; Transfer-Encoding with final `chunked` →
    /// `.chunked` (Content-Length is then ignored, and keepAlive is cleared so the
    /// upstream connection is not reused); other Transfer-Encoding → `.untilClose`;
    /// Content-Length n → `.contentLength(n)` (`.none` for 0); else `.untilClose`.
    /// keepAlive is false whenever framing is `.untilClose`.
    public static func parseResponse(_ buf: UnsafeRawBufferPointer, limits: HTTP1Limits, requestMethod: HTTPMethod,
                                     head: inout ResponseHead, headers: UnsafeMutableBufferPointer<HeaderField>) -> ParseStatus {
        head = ResponseHead()
        let n = buf.count
        let headLimit = clampLimit(limits.maxHeaderBytes)
        let end = min(n, headLimit)
        @inline(__always) func bad(_ r: StaticString) -> ParseStatus { .error(HTTP1Error(status: 502, reason: r)) }
        @inline(__always) func exhausted() -> ParseStatus { headLimit <= n ? bad("response head too large") : .incomplete }

        var p = 0
        switch skipLeadingEmptyLines(buf, end: end) {
        case .next(let q): p = q
        case .exhausted: return exhausted()
        case .invalid(let r): return bad(r)
        }

        // "HTTP/" DIGIT "." DIGIT SP 3DIGIT, then SP reason CRLF or CRLF.
        var k = 0
        while k < 12 {
            guard p + k < end else { return exhausted() }
            let c = buf[p + k]
            switch k {
            case 0...4:
                let lit: StaticString = "HTTP/"
                if c != lit.utf8Start[k] { return bad("invalid status line") }
            case 5, 7, 9, 10, 11:
                if !isDigit(c) { return bad("invalid status line") }
            case 6:
                if c != 0x2E { return bad("invalid status line") }
            default:  // 8
                if c != ASCII.sp { return bad("invalid status line") }
            }
            k += 1
        }
        guard buf[p + 5] == 0x31, buf[p + 7] == 0x30 || buf[p + 7] == 0x31 else {
            return bad("unsupported HTTP version")
        }
        head.versionMinor = buf[p + 7] == 0x31 ? 1 : 0
        let status = UInt16(buf[p + 9] &- 0x30) &* 100 &+ UInt16(buf[p + 10] &- 0x30) &* 10 &+ UInt16(buf[p + 11] &- 0x30)
        guard status >= 100 else { return bad("invalid status line") }
        head.status = status
        var i = p + 12
        guard i < end else { return exhausted() }
        if buf[i] == ASCII.sp {
            i += 1
            let reasonStart = i
            while i < end && (isFieldVchar(buf[i]) || isOWS(buf[i])) { i += 1 }
            head.reason = byteRange(reasonStart, i)
        } else {
            head.reason = byteRange(i, i)
        }
        guard i < end else { return exhausted() }
        if buf[i] == ASCII.lf { return bad("bare LF in head") }
        if buf[i] != ASCII.cr { return bad("invalid status line") }
        guard i + 1 < end else { return exhausted() }
        if buf[i + 1] != ASCII.lf { return bad("bare CR in head") }
        p = i + 2

        let capacity = min(clampLimit(limits.maxHeaderCount), headers.count)
        var count = 0
        while true {
            if count == capacity && p < end && buf[p] != ASCII.cr { return bad("too many response header fields") }
            switch lexFieldLine(buf, from: p, end: end) {
            case .field(let f, let next):
                guard count < capacity else { return bad("too many response header fields") }
                headers[count] = f
                count += 1
                p = next
                continue
            case .end(let next):
                p = next
            case .exhausted:
                return exhausted()
            case .invalid(let r):
                return bad(r)
            }
            break
        }
        head.headerCount = count
        head.headLength = p
        return applyResponseSemantics(buf, headers: headers, requestMethod: requestMethod, head: &head)
    }

    static func applyResponseSemantics(_ buf: UnsafeRawBufferPointer, headers: UnsafeMutableBufferPointer<HeaderField>,
                                       requestMethod: HTTPMethod, head: inout ResponseHead) -> ParseStatus {
        @inline(__always) func bad(_ r: StaticString) -> ParseStatus { .error(HTTP1Error(status: 502, reason: r)) }
        let s = HeadSummary(buf, headers, count: head.headerCount)
        let http11 = head.versionMinor == 1
        let status = head.status

        if s.connection.invalid { return bad("invalid Connection header") }
        // Edge drops Connection-listed fields; without Content-Length the client
        // could not find the end of this response on a kept-alive connection.
        if s.connection.listsContentLength { return bad("Connection lists Content-Length") }
        head.keepAlive = http11 ? !s.connection.close : (s.connection.keepAlive && !s.connection.close)
        head.connectionListsOther = s.connection.other

        if s.te.present {
            // RFC 9112 §6.1: TE in an HTTP/1.0 message means the framing is faulty.
            if !http11 { return bad("Transfer-Encoding in HTTP/1.0 response") }
            if s.te.invalid { return bad("invalid Transfer-Encoding") }
            if s.te.chunkedCount > 1 { return bad("chunked applied more than once") }
        } else {
            if s.contentLengthInvalid { return bad("invalid Content-Length") }
            if s.contentLengthConflict { return bad("conflicting Content-Length") }
        }

        let bodiless = status < 200 || status == 204 || status == 304 || requestMethod == .head
            || (requestMethod == .connect && status < 300)
        if bodiless {
            head.framing = .none
        } else if s.te.present {
            // TE overrides CL (§6.3 rule 3); a message carrying both is suspect, so don't reuse.
            if s.te.lastIsChunked {
                head.framing = .chunked
                if s.contentLengthPresent { head.keepAlive = false }
            } else {
                head.framing = .untilClose
            }
        } else if let cl = s.contentLength {
            head.framing = cl > 0 ? .contentLength(cl) : .none
        } else {
            head.framing = .untilClose
        }
        if head.framing == .untilClose { head.keepAlive = false }
        return .complete
    }
}
