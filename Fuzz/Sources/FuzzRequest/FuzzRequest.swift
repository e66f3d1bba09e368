import FuzzSupport
import Protocols

// libFuzzer target: HTTP1Parser.parseRequest.
// Input: byte 0 picks the limits, byte 1 the header-table capacity, the rest
// is the buffer (copied to an exact-size allocation). Checks: every range lies
// in the head, headLength <= count, field/semantic invariants, every prefix
// of a complete head is .incomplete, the head alone parses identically, and
// the head re-serialized as a proxy forwards it parses to the same semantics.
// Incremental path: the buffer fed in pieces (sizes taken from its own bytes)
// through one HeadScanState gives, after each piece, what the one-shot parse
// of the bytes so far gives: the first non-incomplete status at the same piece,
// the same head.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequest(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let limits = fuzzLimits(input.byte())
    let capByte = input.byte()
    let capacity = capByte >= 0xF0 ? 128 : Int(capByte % 17)
    let buf = ExactBytes(input.rest)
    let table = HeaderTable(capacity: capacity)

    var head = RequestHead()
    let status = HTTP1Parser.parseRequest(buf.buffer, limits: limits, head: &head, headers: table.fields)
    switch status {
    case .incomplete:
        // Incomplete only while no limit is reached.
        require(buf.count < limits.maxHeaderBytes, "incomplete with \(buf.count) bytes, maxHeaderBytes \(limits.maxHeaderBytes)")
        // Any prefix of an incomplete head is incomplete too.
        let k = buf.count / 2
        require(parse(buf.prefix(k), limits, capacity).status == .incomplete, "prefix \(k) of an incomplete head is not incomplete")
    case .error(let e):
        require([400, 414, 431, 501, 505].contains(e.status), "request error status \(e.status)")
    case .complete:
        withExtendedLifetime(buf) { checkComplete(buf, head, table, limits: limits, capacity: capacity) }
    }
    withExtendedLifetime(buf) { checkIncremental(buf, status, head, limits, capacity) }
    withExtendedLifetime((buf, table)) {}
    return 0
}

func checkIncremental(_ buf: ExactBytes, _ status: ParseStatus, _ head: RequestHead, _ limits: HTTP1Limits, _ capacity: Int) {
    let b = buf.buffer
    let t = HeaderTable(capacity: capacity)
    var state = HeadScanState()
    var n = 0
    while true {
        // Piece sizes 1...8 from the data itself, so the fuzzer explores splits too.
        n = n < b.count ? min(b.count, n + 1 + Int(b[n] & 7)) : b.count
        var h = RequestHead()
        let s = HTTP1Parser.parseRequest(UnsafeRawBufferPointer(rebasing: b[0..<n]), limits: limits, state: &state,
                                         head: &h, headers: t.fields)
        if n == b.count {
            require(s == status, "incremental \(s) vs one-shot \(status) over \(n) bytes")
            if case .complete = s { require(same(h, head), "incremental head differs") }
            return
        }
        if case .incomplete = s { continue }
        let one = parse(buf.prefix(n), limits, capacity)
        require(s == one.status, "incremental \(s) vs one-shot \(one.status) at \(n) bytes")
        if case .complete = s { require(same(h, one.head), "incremental head differs at \(n) bytes") }
        return
    }
}

func parse(_ b: ExactBytes, _ limits: HTTP1Limits, _ capacity: Int) -> (status: ParseStatus, head: RequestHead, table: HeaderTable) {
    let t = HeaderTable(capacity: capacity)
    var h = RequestHead()
    let s = HTTP1Parser.parseRequest(b.buffer, limits: limits, head: &h, headers: t.fields)
    return (s, h, t)
}

func checkComplete(_ buf: ExactBytes, _ head: RequestHead, _ table: HeaderTable, limits: HTTP1Limits, capacity: Int) {
    let b = buf.buffer
    let n = buf.count, len = head.headLength
    require(len >= 16 && len <= n, "headLength \(len) of \(n)")  // "M / HTTP/1.0\r\n\r\n" is the shortest
    require(len <= limits.maxHeaderBytes, "headLength \(len) over maxHeaderBytes \(limits.maxHeaderBytes)")
    require(b[len - 4] == 0x0D && b[len - 3] == 0x0A && b[len - 2] == 0x0D && b[len - 1] == 0x0A, "head does not end in CRLF CRLF")
    require(inside(head.method, len) && head.method.length > 0, "method \(head.method)")
    require(inside(head.target, len) && head.target.length > 0, "target \(head.target)")
    require(head.target.offset == Int32(head.method.end) + 1, "target does not follow method + SP")
    require(head.target.end - Int(head.method.offset) + 11 <= limits.maxRequestLine, "request line over maxRequestLine")
    require(HTTPMethod.classify(b, start: Int(head.method.offset), count: Int(head.method.length)) == head.methodKind,
            "methodKind mismatch")
    require(head.versionMinor <= 1, "versionMinor \(head.versionMinor)")
    require(head.headerCount <= capacity && head.headerCount <= max(limits.maxHeaderCount, 0), "headerCount \(head.headerCount)")
    checkFields(b, table.fields, count: head.headerCount, headLength: len)
    if head.headerCount > 0 {
        require(Int(table.fields[0].name.offset) == head.target.end + 11, "first field does not follow the request line")
    }
    if head.hostIndex >= 0 {
        require(head.hostIndex < head.headerCount && table.fields[head.hostIndex].kind == .host, "hostIndex \(head.hostIndex)")
    } else {
        require(head.hostIndex == -1 && head.versionMinor == 0, "no Host in HTTP/1.1 (hostIndex \(head.hostIndex))")
    }
    if head.isAbsoluteForm {
        require(inside(head.absoluteAuthority, head.target.end) && head.absoluteAuthority.length > 0
                && Int(head.absoluteAuthority.offset) > Int(head.target.offset), "absoluteAuthority \(head.absoluteAuthority)")
        require(head.absolutePath.length == 0 || (head.absolutePath.offset == Int32(head.absoluteAuthority.end)
                && head.absolutePath.end == head.target.end), "absolutePath \(head.absolutePath)")
    }
    switch head.framing {
    case .contentLength(let v): require(v > 0, "Content-Length framing of 0")
    case .chunked: require(head.versionMinor == 1, "chunked in HTTP/1.0")
    case .none: break
    case .untilClose: require(false, "request framed until close")
    }
    if head.expectContinue { require(head.versionMinor == 1, "100-continue in HTTP/1.0") }

    // Prefixes of a complete head are incomplete; the head alone parses the same.
    for k in [len - 1, len / 2, Int(head.target.end)] where k < len {
        let s = parse(buf.prefix(k), limits, capacity).status
        require(s == .incomplete, "prefix \(k) of a \(len)-byte head: \(s)")
    }
    let alone = parse(buf.prefix(len), limits, capacity)
    require(alone.status == .complete && same(alone.head, head), "head alone parses differently: \(alone.status)")

    // Forwarded form (no leading CRLFs, values OWS-trimmed) keeps the semantics.
    var line: [UInt8] = []
    append(&line, b, head.method)
    line.append(0x20)
    append(&line, b, head.target)
    line += Array(" HTTP/1.\(head.versionMinor)".utf8)
    let fwd = ExactBytes.copy(reserialize(startLine: line, b, table.fields, count: head.headerCount))
    let big = HTTP1Limits(maxRequestLine: 1 << 20, maxHeaderBytes: 1 << 22, maxHeaderCount: 1 << 20)
    let re = parse(fwd, big, max(capacity, 1))
    require(re.status == .complete, "re-serialized head does not parse: \(re.status)")
    let h2 = re.head
    require(h2.headLength == fwd.count && h2.headerCount == head.headerCount && h2.methodKind == head.methodKind
            && h2.versionMinor == head.versionMinor && h2.framing == head.framing && h2.keepAlive == head.keepAlive
            && h2.expectContinue == head.expectContinue && h2.hostIndex == head.hostIndex
            && h2.wantsUpgrade == head.wantsUpgrade && h2.connectionListsOther == head.connectionListsOther
            && h2.isAbsoluteForm == head.isAbsoluteForm, "re-serialized head has other semantics")
    for k in 0..<head.headerCount {
        require(re.table.fields[k].kind == table.fields[k].kind, "field \(k) kind changed when re-serialized")
    }
}

func same(_ a: RequestHead, _ b: RequestHead) -> Bool {
    a.method == b.method && a.methodKind == b.methodKind && a.target == b.target && a.versionMinor == b.versionMinor
        && a.headerCount == b.headerCount && a.headLength == b.headLength && a.framing == b.framing
        && a.keepAlive == b.keepAlive && a.expectContinue == b.expectContinue && a.hostIndex == b.hostIndex
        && a.wantsUpgrade == b.wantsUpgrade && a.connectionListsOther == b.connectionListsOther
        && a.absoluteAuthority == b.absoluteAuthority && a.absolutePath == b.absolutePath
        && a.isAbsoluteForm == b.isAbsoluteForm
}
