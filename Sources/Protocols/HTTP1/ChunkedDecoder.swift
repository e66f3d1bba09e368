// Incremental, strict decoder for the chunked transfer coding (RFC 9112 §7.1).
// A byte-at-a-time state machine for framing (size lines, extensions, CRLFs,
// trailers) so input may be split anywhere; payload is handed back as slices of
// the caller's buffer, never copied.

/// Decodes one chunked body. Call `step` repeatedly with the same buffer and the
/// index returned by the previous event (0 for each new buffer):
/// - `.data(start, end)`: payload `buf[start..<end]`; continue at `end`.
/// - `.framing(end)`: framing bytes consumed; continue at `end` (may equal `buf.count`).
/// - `.needMore`: `index == buf.count`; nothing was consumed, feed the next buffer.
/// - `.done(end)`: the body ended at `end`; bytes after it belong to the next message.
/// - `.error`: always status 400; the decoder stays failed.
/// Every `.data`/`.framing` consumes at least one byte, so caller loops terminate.
public struct ChunkedDecoder: Sendable {
    @usableFromInline enum State: UInt8, Sendable {
        case sizeStart, size, sizeLF
        case extWS, extNameWS, extName, extAfterName, extValueWS, extToken, extQuoted, extQuotedEscape, extAfterQuoted
        case data, dataCR, dataLF
        case trailerStart, trailerName, trailerValue, trailerLF, finalLF
        case done, failed
    }

    /// Limit on chunk-extension bytes in one size line.
    public static var maxExtensionBytes: Int { 4096 }

    @usableFromInline var state: State = .sizeStart
    @usableFromInline var size: UInt64 = 0
    @usableFromInline var digits = 0
    @usableFromInline var extBytes = 0
    @usableFromInline var trailerBytes = 0
    @usableFromInline let maxTrailerBytes: Int
    @usableFromInline var failure = HTTP1Error(status: 400, reason: "invalid chunked encoding")

    public init(maxTrailerBytes: Int = 16384) {
        self.maxTrailerBytes = maxTrailerBytes
    }

    /// True once the final CRLF of the body has been consumed.
    public var isDone: Bool { state == .done }

    public mutating func step(_ buf: UnsafeRawBufferPointer, at index: Int) -> ChunkedEvent {
        if state == .done { return .done(end: index) }
        if state == .failed { return .error(failure) }
        let n = buf.count
        guard index >= 0, index <= n else { return fail("chunk index out of range") }
        if index == n { return .needMore }

        if state == .data {
            let avail = n - index
            let take = size < UInt64(avail) ? Int(size) : avail
            size -= UInt64(take)
            if size == 0 { state = .dataCR }
            return .data(start: index, end: index + take)
        }

        var i = index
        while i < n {
            let c = buf[i]
            i += 1
            if let err = consume(c) { return fail(err) }
            if state == .data { return .framing(end: i) }
            if state == .done { return .done(end: i) }
        }
        return .framing(end: n)
    }

    @usableFromInline
    mutating func fail(_ reason: StaticString) -> ChunkedEvent {
        state = .failed
        failure = HTTP1Error(status: 400, reason: reason)
        return .error(failure)
    }

    /// Advances the framing state machine by one byte; returns an error reason or nil.
    @usableFromInline
    mutating func consume(_ c: UInt8) -> StaticString? {
        switch state {
        case .sizeStart, .size, .sizeLF, .dataCR, .dataLF, .data, .done, .failed:
            break
        default:
            if state.rawValue >= State.trailerStart.rawValue {
                trailerBytes += 1
                if trailerBytes > maxTrailerBytes { return "chunked trailer too large" }
            } else if c != ASCII.cr && c != ASCII.lf {
                // Extension bytes (after the size digits, before CR).
                extBytes += 1
                if extBytes > ChunkedDecoder.maxExtensionBytes { return "chunk extension too long" }
            }
        }
        if c == ASCII.lf && state != .sizeLF && state != .dataLF && state != .trailerLF && state != .finalLF {
            return "bare LF in chunked body"
        }

        switch state {
        case .sizeStart:
            guard let d = hexValue(c) else { return "invalid chunk size" }
            size = d
            digits = 1
            extBytes = 0
            state = .size
        case .size:
            if let d = hexValue(c) {
                digits += 1
                if digits > 16 { return "chunk size too large" }
                size = (size << 4) | d  // ≤ 16 digits: cannot overflow
                return nil
            }
            if size > UInt64(Int64.max) { return "chunk size too large" }
            return afterExtensionItem(c, ws: .extWS)
        case .extWS:
            return afterExtensionItem(c, ws: .extWS)
        case .extNameWS:
            if isOWS(c) { return nil }
            guard isTchar(c) else { return "invalid chunk extension" }
            state = .extName
        case .extName:
            if isTchar(c) { return nil }
            if c == ASCII.equals { state = .extValueWS; return nil }
            return afterExtensionItem(c, ws: .extAfterName)
        case .extAfterName:
            if c == ASCII.equals { state = .extValueWS; return nil }
            return afterExtensionItem(c, ws: .extAfterName)
        case .extValueWS:
            if isOWS(c) { return nil }
            if c == ASCII.dquote { state = .extQuoted; return nil }
            guard isTchar(c) else { return "invalid chunk extension" }
            state = .extToken
        case .extToken:
            if isTchar(c) { return nil }
            return afterExtensionItem(c, ws: .extWS)
        case .extAfterQuoted:
            return afterExtensionItem(c, ws: .extWS)
        case .extQuoted:
            if c == ASCII.dquote { state = .extAfterQuoted; return nil }
            if c == ASCII.backslash { state = .extQuotedEscape; return nil }
            guard isFieldVchar(c) || isOWS(c) else { return "invalid chunk extension" }
        case .extQuotedEscape:
            guard isFieldVchar(c) || isOWS(c) else { return "invalid chunk extension" }
            state = .extQuoted
        case .sizeLF:
            guard c == ASCII.lf else { return "bare CR in chunked body" }
            if size == 0 {
                trailerBytes = 0
                state = .trailerStart
            } else {
                state = .data
            }
        case .dataCR:
            guard c == ASCII.cr else { return "missing CRLF after chunk data" }
            state = .dataLF
        case .dataLF:
            guard c == ASCII.lf else { return "missing CRLF after chunk data" }
            state = .sizeStart
        case .trailerStart:
            if c == ASCII.cr { state = .finalLF; return nil }
            if isOWS(c) { return "obs-fold not allowed" }
            guard isTchar(c) else { return "invalid trailer field" }
            state = .trailerName
        case .trailerName:
            if isTchar(c) { return nil }
            guard c == ASCII.colon else { return "invalid trailer field" }
            state = .trailerValue
        case .trailerValue:
            if isFieldVchar(c) || isOWS(c) { return nil }
            guard c == ASCII.cr else { return "invalid trailer field" }
            state = .trailerLF
        case .trailerLF:
            guard c == ASCII.lf else { return "bare CR in chunked body" }
            state = .trailerStart
        case .finalLF:
            guard c == ASCII.lf else { return "bare CR in chunked body" }
            state = .done
        case .data, .done, .failed:
            return "invalid chunked decoder state"
        }
        return nil
    }

    /// Shared tail of the size line: whitespace moves to `ws`, ";" starts an
    /// extension, CR ends the line; anything else is an error. The grammar only
    /// allows BWS before ";" or "=", so CR right after whitespace is refused.
    @usableFromInline
    mutating func afterExtensionItem(_ c: UInt8, ws: State) -> StaticString? {
        if isOWS(c) { state = ws; return nil }
        if c == ASCII.semicolon { state = .extNameWS; return nil }
        if c == ASCII.cr {
            if state == .extWS || state == .extAfterName { return "whitespace before CRLF in chunk line" }
            state = .sizeLF
            return nil
        }
        return state == .size ? "invalid chunk size" : "invalid chunk extension"
    }
}
