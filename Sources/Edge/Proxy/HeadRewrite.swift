import Protocols

/// Writes the heads Edge sends: the request head to the upstream (hop-by-hop
/// fields removed, X-Forwarded-*, Via, X-Request-Id added) and the response head
/// to the client. Bytes go into the socket's head buffer and are queued as one
/// segment; no allocation.
extension Reactor {
    /// The socket's head buffer, rewound when nothing in flight still uses it; -1 if the pool is empty.
    func outBuffer(_ slot: Int32) -> Int32 {
        var id = socks[Int(slot)].outBuf
        if id >= 0 && buffers.refs[Int(id)] == 1 { buffers.end[Int(id)] = 0 }
        if id < 0 {
            id = buffers.takeHead()
            if id < 0 { return -1 }
            socks[Int(slot)].outBuf = id
        }
        return id
    }

    @inline(__always) func headWriter(_ id: Int32) -> HeadWriter {
        HeadWriter(buffers.pointer(id) + Int(buffers.end[Int(id)]), capacity: Int(buffers.capacity(id) - buffers.end[Int(id)]))
    }

    /// Queues what `w` wrote; false if it overflowed the head buffer or the
    /// socket's segment ring is full (an upstream flooding 1xx heads in one
    /// read would otherwise overrun the 16-entry ring and trap on `segCount`).
    @inline(__always) func commitHead(_ slot: Int32, _ id: Int32, _ w: HeadWriter) -> Bool {
        if w.overflowed || segmentRoom(slot) < 1 { return false }
        let p = buffers.pointer(id) + Int(buffers.end[Int(id)])
        enqueue(slot, p, w.count, id: id)
        buffers.end[Int(id)] += Int32(w.count)
        return true
    }

    @inline(__always) private func isHopByHop(_ kind: HeaderKind) -> Bool {
        switch kind {
        case .connection, .keepAlive, .proxyConnection, .te, .trailer, .upgrade, .transferEncoding: return true
        default: return false
        }
    }

    func writeRequestHead(to u: Int32, client c: Int32, _ head: inout RequestHead, _ buf: UnsafeRawBufferPointer, _ route: CompiledRoute,
                          detached: Bool = false) -> Bool {
        let xi = Int(socks[Int(c)].exchange)
        // Detached: the head goes only to `requestHeadBuf` (an HTTP/2 upstream re-reads it as fields).
        let id = detached ? buffers.takeHead() : outBuffer(u)
        if id < 0 { return false }
        var w = headWriter(id)
        w.append(buf, range: head.method)
        w.appendByte(0x20)
        var target = head.isAbsoluteForm ? head.absolutePath : head.target
        let rewritesPrefix = (route.stripPrefix || route.hasPrefixRewrite) && route.pathMatch == .prefix
        if rewritesPrefix && Int(target.length) >= route.path.count {
            target.offset += Int32(route.path.count)
            target.length -= Int32(route.path.count)
            let first: UInt8 = target.length > 0 ? buf[Int(target.offset)] : 0
            if route.hasPrefixRewrite {
                w.append(route.prefixRewrite.buffer)
                let endsWithSlash = route.prefixRewrite.count > 0
                    && route.prefixRewrite.buffer[route.prefixRewrite.count - 1] == UInt8(ascii: "/")
                if first == UInt8(ascii: "/") && endsWithSlash { target.offset += 1; target.length -= 1 }
                else if route.prefixRewrite.count == 0 && first != UInt8(ascii: "/") { w.appendByte(UInt8(ascii: "/")) }
            } else if first != UInt8(ascii: "/") {
                w.appendByte(UInt8(ascii: "/"))
            }
        } else if target.length == 0 || buf[Int(target.offset)] == UInt8(ascii: "?") {
            // "http://a.example?q" has an empty path: origin-form needs the "/".
            w.appendByte(UInt8(ascii: "/"))
        }
        w.append(buf, range: target)
        w.append(" HTTP/1.1\r\n")
        var hasRequestId = false
        let headers = UnsafeBufferPointer(headerTable)
        let v = Int(exchanges[xi].view)
        let rewritesHost = route.hostRewrite.count > 0
        for k in 0..<head.headerCount {
            let f = headerTable[k]
            if isHopByHop(f.kind) { continue }
            if Reactor.isForwardedClientCert(buf, f.name) { continue }
            switch f.kind {
            case .xForwardedFor, .xForwardedProto, .xForwardedHost: continue
            case .host where head.isAbsoluteForm || rewritesHost: continue
            // Re-written below from the parsed length: one field, canonical digits.
            case .contentLength: continue
            case .xRequestId: hasRequestId = true
            default: break
            }
            if head.connectionListsOther && HTTP1Parser.isListedInConnection(buf, headers: headers, count: head.headerCount, name: f.name) { continue }
            if route.requestEditCount > 0 && editReplaces(v, route.firstRequestEdit, route.requestEditCount, buf, f.name) { continue }
            if replacesTraceparent(buf, f) { continue }
            if exchanges[xi].policy.active && isPolicyIdentityHeader(xi, buf, f.name) { continue }
            w.append(buf, range: f.name); w.append(": "); w.append(buf, range: f.value); w.append("\r\n")
        }
        switch head.framing {
        case .chunked: w.append("Transfer-Encoding: chunked\r\n")
        case .contentLength(let n): w.append("Content-Length: "); w.appendDecimal(n); w.append("\r\n")
        case .none, .untilClose: break
        }
        // Upgrade (WebSocket...) passes through for bodiless requests; the
        // connection turns raw only if the upstream really answers 101.
        // `Upgrade: h2c` is never honoured nor forwarded (h2c smuggling, RFC 9113 §3.1).
        let upgrading = head.wantsUpgrade && head.framing == .none && !upgradeNamesH2c(buf, count: head.headerCount)
        exchanges[xi].upgradeRequested = upgrading
        if upgrading {
            for k in 0..<head.headerCount where headerTable[k].kind == .upgrade {
                w.append("Upgrade: "); w.append(buf, range: headerTable[k].value); w.append("\r\n")
            }
            w.append("Connection: upgrade\r\n")
        }
        var host = ByteRange.empty
        if head.isAbsoluteForm {
            host = head.absoluteAuthority
            if !rewritesHost { w.append("Host: "); w.append(buf, range: host); w.append("\r\n") }
        } else if head.hostIndex >= 0 {
            host = headerTable[head.hostIndex].value
        }
        if rewritesHost { w.append("Host: "); w.append(route.hostRewrite.buffer); w.append("\r\n") }
        // An HTTP/1.0 request may come without Host; what goes upstream is
        // HTTP/1.1, which needs one: empty when there is no authority (RFC 9112 §3.2).
        else if !head.isAbsoluteForm && head.hostIndex < 0 { w.append("Host: \r\n") }
        if route.requestEditCount > 0 { appendEdits(&w, v, route.firstRequestEdit, route.requestEditCount) }
        if exchanges[xi].policy.authenticated { appendPolicyRequestHeaders(&w, xi) }
        w.append("X-Forwarded-For: ")
        for k in 0..<head.headerCount where headerTable[k].kind == .xForwardedFor {
            w.append(buf, range: headerTable[k].value); w.append(", ")
        }
        w.append(clientAddressText(c))
        w.append("\r\n")
        appendForwardedTLS(&w, client: c)
        if host.length > 0 { w.append("X-Forwarded-Host: "); w.append(buf, range: host); w.append("\r\n") }
        w.append("Via: 1.1 edge\r\n")
        appendTraceparent(xi, &w)
        if !hasRequestId {
            w.append("X-Request-Id: ")
            appendExchangeRequestId(xi, &w)
            w.append("\r\n")
        }
        if exchanges[xi].cache.revalidating { appendCacheValidators(&w, xi) }
        w.append("\r\n")
        if detached {
            guard !w.overflowed else { buffers.release(id); return false }
            buffers.end[Int(id)] = Int32(w.count)
            if exchanges[xi].requestHeadBuf >= 0 { buffers.release(exchanges[xi].requestHeadBuf) }
            exchanges[xi].requestHeadBuf = id
            exchanges[xi].requestHeadLength = Int32(w.count)
            return true
        }
        let start = buffers.end[Int(id)]
        guard commitHead(u, id, w) else { return false }
        // Kept for one resend if the pooled connection turns out stale.
        if exchanges[xi].requestHeadBuf >= 0 { buffers.release(exchanges[xi].requestHeadBuf) }
        if start == 0 {
            buffers.retain(id)
            exchanges[xi].requestHeadBuf = id
            exchanges[xi].requestHeadLength = Int32(w.count)
        } else {
            exchanges[xi].requestHeadBuf = -1
        }
        return true
    }

    /// 128 random-looking bits as 32 hex digits: splitmix64 over a per-reactor
    /// random seed and a counter (unique per process, no syscall per request).
    @inline(__always) func appendRequestId(_ w: inout HeadWriter) {
        requestIdCounter &+= 1
        w.appendHex(Reactor.mix(requestIdSeed &+ requestIdCounter), minDigits: 16)
        w.appendHex(Reactor.mix(requestIdSeed ^ (requestIdCounter &* 0x9E37_79B9_7F4A_7C15)), minDigits: 16)
    }

    @inline(__always) static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Response head to the client. `interim` for 1xx (no connection handling).
    func writeResponseHead(to c: Int32, _ head: inout ResponseHead, _ buf: UnsafeRawBufferPointer, interim: Bool) -> Bool {
        let xi = Int(socks[Int(c)].exchange)
        let id = outBuffer(c)
        if id < 0 { return false }
        var w = headWriter(id)
        w.append("HTTP/1.1 ")
        w.appendDecimal(UInt64(head.status))
        w.appendByte(0x20)
        w.append(buf, range: head.reason)
        w.append("\r\n")
        // Compressed bodies go out chunked (Compression/ResponseCompression.swift).
        let compressing = !interim && head.status != 101 && compressionStart(xi, head, buf)
        let chunked = compressing || head.framing == .chunked
        var length: UInt64? = nil
        if !compressing, case .contentLength(let n) = head.framing { length = n }
        let headers = UnsafeBufferPointer(headerTable)
        let v = exchanges[xi].view
        var route: CompiledRoute? = nil
        if !interim && v >= 0 && exchanges[xi].route >= 0 { route = views[Int(v)].routes[Int(exchanges[xi].route)] }
        let edits = route?.responseEditCount ?? 0
        for k in 0..<head.headerCount {
            let f = headerTable[k]
            if isHopByHop(f.kind) { continue }
            // A framed length is re-written once below (HEAD/304 lengths pass as sent).
            if (chunked || length != nil) && f.kind == .contentLength { continue }
            if head.connectionListsOther && HTTP1Parser.isListedInConnection(buf, headers: headers, count: head.headerCount, name: f.name) { continue }
            if edits > 0, let r = route, editReplaces(Int(v), r.firstResponseEdit, edits, buf, f.name) { continue }
            if compressing && compressionRewriteField(&w, f, buf, xi) { continue }
            w.append(buf, range: f.name); w.append(": "); w.append(buf, range: f.value); w.append("\r\n")
        }
        if edits > 0, let r = route { appendEdits(&w, Int(v), r.firstResponseEdit, edits) }
        if compressing { appendCompressionHeaders(&w, xi) }
        if !interim && exchanges[xi].policy.active { appendPolicyResponseHeaders(&w, xi) }
        if head.status == 101 {
            for k in 0..<head.headerCount where headerTable[k].kind == .upgrade {
                w.append("Upgrade: "); w.append(buf, range: headerTable[k].value); w.append("\r\n")
            }
            w.append("Connection: upgrade\r\n\r\n")
            return commitHead(c, id, w)
        }
        if !interim {
            if chunked && !exchanges[xi].response.dechunk { w.append("Transfer-Encoding: chunked\r\n") }
            if let length { w.append("Content-Length: "); w.appendDecimal(length); w.append("\r\n") }
            w.append("Via: 1.1 edge\r\n")
            if exchanges[xi].cache.active { appendCacheStatus(&w, xi) }
            appendAltSvc(&w, xi)
            appendAttempts(&w, xi)
            if !exchanges[xi].keepAlive { w.append("Connection: close\r\n") }
            else if exchanges[xi].versionMinor == 0 { w.append("Connection: keep-alive\r\n") }
        }
        w.append("\r\n")
        return commitHead(c, id, w)
    }

    /// True if a `set` or `remove` edit names this header (case-insensitive).
    @inline(__always) func editReplaces(_ v: Int, _ first: Int32, _ count: Int32, _ buf: UnsafeRawBufferPointer, _ name: ByteRange) -> Bool {
        let edits = views[v].headerEdits
        for k in Int(first)..<Int(first + count) {
            let e = edits[k]
            if e.op == .add || Int(name.length) != e.lowerName.count { continue }
            guard let want = e.lowerName.base else { continue }
            var same = true
            for j in 0..<Int(name.length) {
                var ch = buf[Int(name.offset) + j]
                if ch >= 0x41 && ch <= 0x5A { ch |= 0x20 }
                if ch != want.load(fromByteOffset: j, as: UInt8.self) { same = false; break }
            }
            if same { return true }
        }
        return false
    }

    /// Appends the `add` and `set` edits as header lines.
    @inline(__always) func appendEdits(_ w: inout HeadWriter, _ v: Int, _ first: Int32, _ count: Int32) {
        let edits = views[v].headerEdits
        for k in Int(first)..<Int(first + count) where edits[k].op != .remove {
            w.append(edits[k].name.buffer); w.append(": "); w.append(edits[k].value.buffer); w.append("\r\n")
        }
    }
}
