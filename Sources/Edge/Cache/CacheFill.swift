import Glibc
import Protocols

/// The response side of the cache: deciding whether an upstream response is
/// stored, copying its head and body into an arena block as they stream to the
/// client, and refreshing an entry when a revalidation comes back 304.
extension Reactor {
    /// Called with the final response head parsed (before it goes to the
    /// client). True when the cache answered the client itself (a 304 to a
    /// revalidation: the stored entry is served), so the caller stops.
    func cacheResponseHead(_ c: Int32, _ u: Int32, _ head: inout ResponseHead, _ buf: UnsafeRawBufferPointer) -> Bool {
        let xi = Int(socks[Int(c)].exchange)
        let handled = cacheDecide(c, u, &head, buf)
        // Waiters need not wait for a response that will not be stored.
        if xi >= 0 && exchanges[xi].cache.leader && exchanges[xi].cache.fill < 0 { cacheLeaderEnded(xi) }
        return handled
    }

    private func cacheDecide(_ c: Int32, _ u: Int32, _ head: inout ResponseHead, _ buf: UnsafeRawBufferPointer) -> Bool {
        let xi = Int(socks[Int(c)].exchange)
        guard exchanges[xi].cache.active, exchanges[xi].cache.label != .bypass,
              let zp = cacheZone(exchanges[xi].view, exchanges[xi].route), zp.pointee.ready else { return false }
        let v = Int(exchanges[xi].view), r = Int(exchanges[xi].route)
        let settings = views[v].routes[r].cache
        var d = CacheDirectives()
        var expires: Int64? = nil, expiresGiven = false, date: Int64? = nil, age: Int64 = 0
        var setCookie = false, varyStar = false
        for k in 0..<head.headerCount {
            let f = headerTable[k]
            let name = CacheHeaders.slice(buf, f.name), value = CacheHeaders.slice(buf, f.value)
            if CacheHeaders.equalsLower(name, "cache-control") { d.parse(value) }
            else if CacheHeaders.equalsLower(name, "expires") { expiresGiven = true; expires = CacheHeaders.httpDate(value) }
            else if CacheHeaders.equalsLower(name, "date") { date = CacheHeaders.httpDate(value) }
            else if CacheHeaders.equalsLower(name, "age") { age = max(0, CacheHeaders.seconds(value)) }
            else if CacheHeaders.equalsLower(name, "set-cookie") { setCookie = true }
            else if CacheHeaders.equalsLower(name, "vary") && value.contains(0x2A) { varyStar = true }
        }
        let wallNow = Int64(time(nil))
        // Freshness lifetime in ms: s-maxage, max-age, Expires - Date, then default_ttl (200 only); -1 none.
        var lifetimeMs: Int64 = -1
        if d.sMaxAge >= 0 { lifetimeMs = d.sMaxAge * 1000 }
        else if d.maxAge >= 0 { lifetimeMs = d.maxAge * 1000 }
        else if expiresGiven { lifetimeMs = max(0, ((expires ?? 0) - (date ?? wallNow)) * 1000) }
        else if settings.defaultTtlMs > 0 && head.status == 200 { lifetimeMs = Int64(settings.defaultTtlMs) }

        if exchanges[xi].cache.revalidating, exchanges[xi].cache.entry >= 0 {
            let e = exchanges[xi].cache.entry
            if head.status == 304 {
                let old = zp.pointee.entries[Int(e)]
                let keep = old.freshUntilMs - old.storedMs
                zp.pointee.entries[Int(e)].storedMs = nowMs
                zp.pointee.entries[Int(e)].initialAgeS = age
                zp.pointee.entries[Int(e)].freshUntilMs = nowMs + (lifetimeMs >= 0 ? lifetimeMs : keep) - age * 1000
                stats.cache.bump(stats.cache.revalidated)
                consumeInput(u, head.headLength)
                exchanges[xi].responseDone = true
                detach(c, u)
                let reusable = head.keepAlive && head.framing == .none && exchanges[xi].request.done
                    && socks[Int(u)].inHead < 0 && !socks[Int(u)].eof && socks[Int(u)].segCount == 0 && !socks[Int(u)].sendInFlight
                if reusable { poolRelease(u) } else { closeSock(u) }
                releaseExchangeBuffers(c)
                cacheServe(c, e, notModified: false, label: "revalidated", consume: 0)
                return true
            }
            // Anything else replaces (200) or bypasses the stored entry.
        }
        guard exchanges[xi].method == .get, exchanges[xi].codec == .h1 else { return false }
        switch head.status {
        case 200, 203, 204, 300, 301, 308, 404, 410: break
        default: return false
        }
        var bodyLength: UInt64 = 0
        switch head.framing {
        case .contentLength(let n): bodyLength = n
        case .none: bodyLength = 0
        case .chunked, .untilClose: return false  // only length-framed bodies are stored
        }
        if d.noStore || d.isPrivate || varyStar || bodyLength > settings.maxObject { return false }
        if setCookie && !settings.allowSetCookie { return false }
        if exchanges[xi].cache.authorized && !(d.isPublic || d.sMaxAge >= 0 || d.mustRevalidate) { return false }
        var etag = ByteRange.empty, lastModified = ByteRange.empty
        for k in 0..<head.headerCount {
            let name = CacheHeaders.slice(buf, headerTable[k].name)
            if CacheHeaders.equalsLower(name, "etag") { etag = headerTable[k].value }
            else if CacheHeaders.equalsLower(name, "last-modified") { lastModified = headerTable[k].value }
        }
        let validators = etag.length > 0 || lastModified.length > 0
        if lifetimeMs <= 0 && !(validators && (lifetimeMs == 0 || d.noCache)) { return false }

        // Vary names, lower-cased and `,`-separated, written after the key.
        let keyBuf = exchanges[xi].cache.keyBuf
        guard keyBuf >= 0, let varyBytes = cacheVaryNames(&head, buf, zp),
              let varyHash = sentVaryHash(UnsafeRawBufferPointer(start: zp.pointee.scratch + CacheZone.scratchBytes / 2, count: varyBytes), xi)
        else { return false }
        let keyLength = Int(buffers.count(keyBuf))
        let headBound = head.headLength + 256 + Int(views[v].routes[r].responseEditCount) * 512
        let b0 = zp.pointee.bytes, c0 = zp.pointee.count
        let e = zp.pointee.reserve(bytes: keyLength + varyBytes + headBound + Int(bodyLength), stats: stats.cache)
        stats.cache.bump(stats.cache.bytes, zp.pointee.bytes - b0)
        stats.cache.bump(stats.cache.entries, zp.pointee.count - c0)
        if e < 0 { return false }
        let base = zp.pointee.base(e)
        // The key was kept in a head buffer at lookup; the vary names are in the scratch buffer.
        base.copyMemory(from: buffers.pointer(keyBuf), byteCount: keyLength)
        (base + keyLength).copyMemory(from: zp.pointee.scratch + CacheZone.scratchBytes / 2, byteCount: varyBytes)
        var w = HeadWriter(base + keyLength + varyBytes, capacity: headBound)
        w.append("HTTP/1.1 "); w.appendDecimal(UInt64(head.status)); w.appendByte(0x20); w.append(buf, range: head.reason); w.append("\r\n")
        let edits = views[v].routes[r].responseEditCount
        let firstEdit = views[v].routes[r].firstResponseEdit
        let headers = UnsafeBufferPointer(headerTable)
        for k in 0..<head.headerCount {
            let f = headerTable[k]
            switch f.kind {
            case .connection, .keepAlive, .proxyConnection, .te, .trailer, .upgrade, .transferEncoding, .contentLength: continue
            default: break
            }
            let name = CacheHeaders.slice(buf, f.name)
            if CacheHeaders.equalsLower(name, "age") { continue }
            if head.connectionListsOther && HTTP1Parser.isListedInConnection(buf, headers: headers, count: head.headerCount, name: f.name) { continue }
            if edits > 0 && editReplaces(v, firstEdit, edits, buf, f.name) { continue }
            w.append(buf, range: f.name); w.append(": ")
            if f.value.offset == etag.offset && etag.length > 0 {
                zp.pointee.entries[Int(e)].etagOffset = Int32(w.count); zp.pointee.entries[Int(e)].etagLength = etag.length
            } else if f.value.offset == lastModified.offset && lastModified.length > 0 {
                zp.pointee.entries[Int(e)].lastModifiedOffset = Int32(w.count); zp.pointee.entries[Int(e)].lastModifiedLength = lastModified.length
            }
            w.append(buf, range: f.value); w.append("\r\n")
        }
        if edits > 0 { appendEdits(&w, v, firstEdit, edits) }
        w.append("Content-Length: "); w.appendDecimal(bodyLength); w.append("\r\nVia: 1.1 edge\r\n")
        if w.overflowed {
            zp.pointee.release(e)
            stats.cache.bump(stats.cache.bytes, zp.pointee.bytes - b0)
            return false
        }
        zp.pointee.entries[Int(e)].hash = exchanges[xi].cache.hash
        zp.pointee.entries[Int(e)].varyHash = varyHash
        zp.pointee.entries[Int(e)].keyLength = Int32(keyLength)
        zp.pointee.entries[Int(e)].varyLength = Int32(varyBytes)
        zp.pointee.entries[Int(e)].headLength = Int32(w.count)
        zp.pointee.entries[Int(e)].bodyLength = Int32(bodyLength)
        zp.pointee.entries[Int(e)].status = head.status
        zp.pointee.entries[Int(e)].initialAgeS = age
        zp.pointee.entries[Int(e)].storedMs = nowMs
        zp.pointee.entries[Int(e)].freshUntilMs = nowMs + max(0, lifetimeMs) - age * 1000
        zp.pointee.entries[Int(e)].alwaysRevalidate = d.noCache || (d.mustRevalidate && lifetimeMs <= 0)
        zp.pointee.entries[Int(e)].shared = d.isPublic || d.sMaxAge >= 0 || d.mustRevalidate
        exchanges[xi].cache.fill = e
        exchanges[xi].cache.filled = 0
        return false
    }

    /// Writes the response's Vary names, lower-cased and `,`-separated, into the
    /// scratch buffer's second half; their length (names that do not fit are dropped: not stored).
    private func cacheVaryNames(_ head: inout ResponseHead, _ buf: UnsafeRawBufferPointer, _ zp: UnsafeMutablePointer<CacheZone>) -> Int? {
        let out = zp.pointee.scratch + CacheZone.scratchBytes / 2
        let cap = CacheZone.scratchBytes / 2
        var n = 0
        for k in 0..<head.headerCount where CacheHeaders.equalsLower(CacheHeaders.slice(buf, headerTable[k].name), "vary") {
            let v = CacheHeaders.slice(buf, headerTable[k].value)
            var i = 0
            while i < v.count {
                while i < v.count && (v[i] == 0x20 || v[i] == 0x09 || v[i] == 0x2C) { i += 1 }
                let s = i
                while i < v.count && v[i] != 0x2C && v[i] != 0x20 && v[i] != 0x09 { i += 1 }
                if i == s { continue }
                guard n + (i - s) + 1 <= cap else { return nil }
                if n > 0 { out.storeBytes(of: 0x2C, toByteOffset: n, as: UInt8.self); n += 1 }
                for j in s..<i {
                    var ch = v[j]
                    if ch >= 0x41 && ch <= 0x5A { ch |= 0x20 }
                    out.storeBytes(of: ch, toByteOffset: n, as: UInt8.self); n += 1
                }
            }
        }
        return n
    }

    /// `downstreamSendData` with the body bytes copied into the entry being
    /// filled; the entry is stored once the whole body has passed.
    func cacheSendData(_ xi: Int, from u: Int32) -> HTTP1Error? {
        let fill = exchanges[xi].cache.fill
        guard fill >= 0, let zp = cacheZone(exchanges[xi].view, exchanges[xi].route) else { return downstreamSendData(xi, from: u) }
        let total = Int(zp.pointee.entries[Int(fill)].bodyLength)
        let body = zp.pointee.bodyStart(fill)
        // Copy what is queued (up to the body's end); bytes not taken this time are copied again next time.
        var off = exchanges[xi].cache.filled
        var h = socks[Int(u)].inHead
        while h >= 0 && off < total {
            let b = buffers.bytes(h)
            let n = min(b.count, total - off)
            if n > 0, let p = b.baseAddress { (body + off).copyMemory(from: p, byteCount: n) }
            off += n
            h = buffers.next[Int(h)]
        }
        let before = exchanges[xi].response.remaining
        let result = downstreamSendData(xi, from: u)
        let taken = exchanges[xi].response.mode == .length ? Int(before - exchanges[xi].response.remaining) : 0
        exchanges[xi].cache.filled += taken
        if result == nil && exchanges[xi].response.done && exchanges[xi].cache.filled == total {
            let c0 = zp.pointee.count
            zp.pointee.link(fill)
            exchanges[xi].cache.fill = -1
            stats.cache.bump(stats.cache.stores)
            stats.cache.bump(stats.cache.entries, zp.pointee.count - c0)
            cacheFillDone(xi, zp, fill)
        }
        return result
    }
}
