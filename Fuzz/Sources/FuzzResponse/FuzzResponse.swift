import FuzzSupport
import Protocols

// libFuzzer target: HTTP1Parser.parseResponse.
// Input: byte 0 picks the request method (HTTPMethod raw value mod 10), byte 1
// the limits, byte 2 the header-table capacity; the rest is the buffer (an
// exact-size copy). Checks: every error is a 502, ranges lie in the head,
// status 100...999, the RFC 9112 §6.3 framing rules, prefixes of a complete
// head are .incomplete, the head alone parses identically, and the head
// re-serialized as a proxy forwards it keeps its framing.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzResponse(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let method = HTTPMethod(rawValue: input.byte() % 10) ?? .other
    let limits = fuzzLimits(input.byte())
    let capByte = input.byte()
    let capacity = capByte >= 0xF0 ? 128 : Int(capByte % 17)
    let buf = ExactBytes(input.rest)

    let r = parse(buf, method, limits, capacity)
    switch r.status {
    case .incomplete:
        require(buf.count < limits.maxHeaderBytes, "incomplete with \(buf.count) bytes, maxHeaderBytes \(limits.maxHeaderBytes)")
        let k = buf.count / 2
        require(parse(buf.prefix(k), method, limits, capacity).status == .incomplete, "prefix \(k) of an incomplete head is not incomplete")
    case .error(let e):
        require(e.status == 502, "response error status \(e.status)")
    case .complete:
        withExtendedLifetime(buf) { checkComplete(buf, r.head, r.table, method: method, limits: limits, capacity: capacity) }
    }
    withExtendedLifetime(buf) {}
    return 0
}

func parse(_ b: ExactBytes, _ method: HTTPMethod, _ limits: HTTP1Limits, _ capacity: Int)
    -> (status: ParseStatus, head: ResponseHead, table: HeaderTable) {
    let t = HeaderTable(capacity: capacity)
    var h = ResponseHead()
    let s = HTTP1Parser.parseResponse(b.buffer, limits: limits, requestMethod: method, head: &h, headers: t.fields)
    return (s, h, t)
}

func checkComplete(_ buf: ExactBytes, _ head: ResponseHead, _ table: HeaderTable, method: HTTPMethod,
                   limits: HTTP1Limits, capacity: Int) {
    let b = buf.buffer
    let n = buf.count, len = head.headLength
    require(len >= 16 && len <= n && len <= limits.maxHeaderBytes, "headLength \(len) of \(n)")  // "HTTP/1.1 200\r\n\r\n"
    require(b[len - 4] == 0x0D && b[len - 3] == 0x0A && b[len - 2] == 0x0D && b[len - 1] == 0x0A, "head does not end in CRLF CRLF")
    require(head.status >= 100 && head.status <= 999, "status \(head.status)")
    require(head.versionMinor <= 1, "versionMinor \(head.versionMinor)")
    require(inside(head.reason, len), "reason \(head.reason)")
    require(head.headerCount <= capacity && head.headerCount <= max(limits.maxHeaderCount, 0), "headerCount \(head.headerCount)")
    checkFields(b, table.fields, count: head.headerCount, headLength: len)
    for i in Int(head.reason.offset)..<head.reason.end {
        let c = b[i]
        require(c == 0x09 || (c >= 0x20 && c != 0x7F), "reason byte \(c)")
    }
    let s = head.status
    let bodiless = s < 200 || s == 204 || s == 304 || method == .head || (method == .connect && s < 300)
    switch head.framing {
    case .none: break
    case .contentLength(let v): require(v > 0 && !bodiless, "Content-Length framing \(v), bodiless \(bodiless)")
    case .chunked: require(!bodiless && head.versionMinor == 1, "chunked framing, bodiless \(bodiless)")
    case .untilClose: require(!bodiless && !head.keepAlive, "until-close framing with keep-alive or bodiless")
    }
    if bodiless { require(head.framing == .none, "bodiless response with framing \(head.framing)") }

    for k in [len - 1, len / 2, Int(head.reason.offset)] where k < len {
        let st = parse(buf.prefix(k), method, limits, capacity).status
        require(st == .incomplete, "prefix \(k) of a \(len)-byte head: \(st)")
    }
    let alone = parse(buf.prefix(len), method, limits, capacity)
    require(alone.status == .complete && same(alone.head, head), "head alone parses differently: \(alone.status)")

    // Re-serialized: "HTTP/1.x SSS reason" CRLF, fields, CRLF.
    var line = Array("HTTP/1.\(head.versionMinor) \(head.status) ".utf8)
    append(&line, b, head.reason)
    let fwd = ExactBytes.copy(reserialize(startLine: line, b, table.fields, count: head.headerCount))
    let big = HTTP1Limits(maxRequestLine: 1 << 20, maxHeaderBytes: 1 << 22, maxHeaderCount: 1 << 20)
    let re = parse(fwd, method, big, max(capacity, 1))
    require(re.status == .complete, "re-serialized head does not parse: \(re.status)")
    let h2 = re.head
    require(h2.headLength == fwd.count && h2.status == head.status && h2.versionMinor == head.versionMinor
            && h2.headerCount == head.headerCount && h2.framing == head.framing && h2.keepAlive == head.keepAlive
            && h2.connectionListsOther == head.connectionListsOther && h2.reason.length == head.reason.length,
            "re-serialized head has other semantics")
}

func same(_ a: ResponseHead, _ b: ResponseHead) -> Bool {
    a.status == b.status && a.reason == b.reason && a.versionMinor == b.versionMinor && a.headerCount == b.headerCount
        && a.headLength == b.headLength && a.framing == b.framing && a.keepAlive == b.keepAlive
        && a.connectionListsOther == b.connectionListsOther
}
