import Glibc
import Protocols

/// What the cache does for one exchange (HTTP/1.1 downstream only).
struct CacheExchangeState {
    /// The route caches and this request may use the cache.
    var active = false
    var hash: UInt64 = 0
    /// Entry pinned by this exchange (served from, or being revalidated), -1 if none.
    var entry: Int32 = -1
    var revalidating = false
    /// Entry being filled from the upstream response, and its body bytes so far.
    var fill: Int32 = -1
    var filled = 0
    /// Head buffer holding the request's key while it is upstream (-1: none).
    var keyBuf: Int32 = -1
    /// The request carried Authorization (only `public` / `s-maxage` responses are shared).
    var authorized = false
    /// This exchange is the first miss of its key; others wait for it (Cache/CacheCoalescing.swift).
    var leader = false
    /// Next exchange waiting on the same leader, and the leader waited on.
    var nextWaiter: Int32 = -1
    var waitingOn: Int32 = -1
    /// Label for `x-edge-cache` on responses that went upstream.
    var label: CacheLabel = .miss
}

enum CacheLabel: UInt8 { case miss, stale, bypass }

/// The response cache's hooks into the HTTP/1.1 path: lookup before proxying,
/// the response head (store or refresh), body capture, and hits written
/// straight from the arena (stored head and body are queued by reference; only
/// the per-hit lines — Age, x-edge-cache, Connection — are written into the
/// head buffer). Nothing here allocates after a zone's first use.
extension Reactor {
    @inline(__always) func cacheZone(_ v: Int32, _ r: Int32) -> UnsafeMutablePointer<CacheZone>? {
        guard v >= 0, r >= 0, let z = views[Int(v)].caches, Int(r) < views[Int(v)].routes.count else { return nil }
        return z + Int(r)
    }

    /// True when the request was answered from the cache. Otherwise it goes
    /// upstream (as a miss, a revalidation, or untouched).
    func cacheLookup(_ c: Int32, _ route: CompiledRoute, _ head: inout RequestHead, _ buf: UnsafeRawBufferPointer) -> Bool {
        let xi = Int(socks[Int(c)].exchange)
        let m = exchanges[xi].method
        guard exchanges[xi].codec == .h1, m == .get || m == .head, head.framing == .none,
              let zp = cacheZone(exchanges[xi].view, exchanges[xi].route) else { return false }
        if !zp.pointee.ready {
            guard zp.pointee.setUp(maxSize: route.cache.maxSize, maxObject: route.cache.maxObject) else { return false }
        }
        if CachePurge.generation.load(ordering: .relaxed) != zp.pointee.purgeGeneration { cacheApplyPurges(zp) }
        var forceRevalidate = false
        var conditional = false
        var noneMatch = ByteRange.empty, modifiedSince = ByteRange.empty
        for k in 0..<head.headerCount {
            let f = headerTable[k]
            let name = CacheHeaders.slice(buf, f.name)
            if CacheHeaders.equalsLower(name, "cache-control") {
                var d = CacheDirectives()
                d.parse(CacheHeaders.slice(buf, f.value))
                if d.noStore { exchanges[xi].cache.active = true; exchanges[xi].cache.label = .bypass; return false }
                if d.noCache || d.maxAge == 0 { forceRevalidate = true }
            } else if CacheHeaders.equalsLower(name, "pragma") {
                if CacheHeaders.equalsLower(CacheHeaders.slice(buf, f.value), "no-cache") { forceRevalidate = true }
            } else if CacheHeaders.equalsLower(name, "authorization") {
                exchanges[xi].cache.authorized = true
            } else if CacheHeaders.equalsLower(name, "if-none-match") {
                noneMatch = f.value; conditional = true
            } else if CacheHeaders.equalsLower(name, "if-modified-since") {
                modifiedSince = f.value; conditional = true
            } else if CacheHeaders.equalsLower(name, "range") || CacheHeaders.equalsLower(name, "if-match") || CacheHeaders.equalsLower(name, "if-range") {
                return false  // partial and preconditioned requests pass through untouched
            }
        }
        // Key: "<target> <host>" in the zone's scratch buffer.
        let target = head.isAbsoluteForm ? head.absolutePath : head.target
        let host = head.isAbsoluteForm ? head.absoluteAuthority : (head.hostIndex >= 0 ? headerTable[head.hostIndex].value : .empty)
        let keyLength = Int(target.length) + 1 + Int(host.length)
        guard keyLength <= CacheZone.scratchBytes / 2 else { return false }
        let s = zp.pointee.scratch
        s.copyMemory(from: buf.baseAddress.unsafelyUnwrapped + Int(target.offset), byteCount: Int(target.length))
        s.storeBytes(of: 0x20, toByteOffset: Int(target.length), as: UInt8.self)
        for j in 0..<Int(host.length) {
            var ch = buf[Int(host.offset) + j]
            if ch >= 0x41 && ch <= 0x5A { ch |= 0x20 }
            s.storeBytes(of: ch, toByteOffset: Int(target.length) + 1 + j, as: UInt8.self)
        }
        let key = UnsafeRawBufferPointer(start: s, count: keyLength)
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        CacheHeaders.fnv(&hash, key)
        exchanges[xi].cache.active = true
        exchanges[xi].cache.hash = hash
        var e = zp.pointee.first(hash: hash, key: key)
        while e >= 0 {
            if zp.pointee.entries[Int(e)].varyHash == requestVaryHash(zp.pointee.varyNames(e), head.headerCount, buf) { break }
            e = zp.pointee.next(after: e, hash: hash, key: key)
        }
        if e >= 0 && exchanges[xi].cache.authorized && !zp.pointee.entries[Int(e)].shared { e = -1 }
        if e >= 0 {
            let en = zp.pointee.entries[Int(e)]
            let fresh = nowMs < en.freshUntilMs && !en.alwaysRevalidate && !forceRevalidate
            if fresh {
                var notModified = false
                if noneMatch.length > 0 {
                    let tag = UnsafeRawBufferPointer(start: zp.pointee.headStart(e) + Int(en.etagOffset), count: Int(en.etagLength))
                    notModified = CacheHeaders.noneMatchHits(CacheHeaders.slice(buf, noneMatch), tag)
                } else if modifiedSince.length > 0 && en.lastModifiedLength > 0 {
                    let lm = UnsafeRawBufferPointer(start: zp.pointee.headStart(e) + Int(en.lastModifiedOffset), count: Int(en.lastModifiedLength))
                    if let a = CacheHeaders.httpDate(lm), let b = CacheHeaders.httpDate(CacheHeaders.slice(buf, modifiedSince)) { notModified = a <= b }
                }
                stats.cache.bump(stats.cache.hits)
                if notModified { stats.cache.bump(stats.cache.notModified) }
                cacheServe(c, e, notModified: notModified, label: "hit", consume: head.headLength)
                return true
            }
            if (en.etagLength > 0 || en.lastModifiedLength > 0) && !conditional {
                zp.pointee.entries[Int(e)].pins += 1
                exchanges[xi].cache.entry = e
                exchanges[xi].cache.revalidating = true
                exchanges[xi].cache.label = .stale
                stats.cache.bump(stats.cache.stale)
                cacheKeepKey(xi, key)
                return false
            }
        }
        stats.cache.bump(stats.cache.misses)
        cacheKeepKey(xi, key)
        if route.cache.coalesce && m == .get && !forceRevalidate { return cacheCoalesce(c, zp, head.headLength) }
        return false
    }

    /// Copies the key into a head buffer the exchange keeps until its response is stored.
    private func cacheKeepKey(_ xi: Int, _ key: UnsafeRawBufferPointer) {
        let id = buffers.takeHead()
        guard id >= 0 else { return }
        guard key.count <= Int(buffers.capacity(id)), let p = key.baseAddress else { buffers.release(id); return }
        buffers.pointer(id).copyMemory(from: p, byteCount: key.count)
        buffers.end[Int(id)] = Int32(key.count)
        exchanges[xi].cache.keyBuf = id
    }

    /// Hash of the request's values for the Vary'd names (`,`-separated, lower case).
    func requestVaryHash(_ names: UnsafeRawBufferPointer, _ headerCount: Int, _ buf: UnsafeRawBufferPointer) -> UInt64 {
        if names.count == 0 { return 0 }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        var i = 0
        while i < names.count {
            var j = i
            while j < names.count && names[j] != 0x2C { j += 1 }
            let name = UnsafeRawBufferPointer(rebasing: names[i..<j])
            for k in 0..<headerCount where CacheHeaders.sameName(CacheHeaders.slice(buf, headerTable[k].name), name) {
                CacheHeaders.fnv(&h, CacheHeaders.slice(buf, headerTable[k].value))
                break
            }
            h = (h ^ 0x0A) &* 0x100_0000_01b3
            i = j + 1
        }
        return h
    }

    /// The same hash over the request head Edge sent upstream (the client's
    /// head is gone by the time the response arrives); nil if it is not kept.
    func sentVaryHash(_ names: UnsafeRawBufferPointer, _ xi: Int) -> UInt64? {
        if names.count == 0 { return 0 }
        let id = exchanges[xi].requestHeadBuf
        guard id >= 0 else { return nil }
        let sent = UnsafeRawBufferPointer(start: buffers.pointer(id), count: Int(exchanges[xi].requestHeadLength))
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        var i = 0
        while i < names.count {
            var j = i
            while j < names.count && names[j] != 0x2C { j += 1 }
            let name = UnsafeRawBufferPointer(rebasing: names[i..<j])
            // Scan header lines "Name: value\r\n" after the request line.
            var p = 0
            while p < sent.count && sent[p] != 0x0A { p += 1 }
            p += 1
            while p < sent.count {
                var eol = p
                while eol < sent.count && sent[eol] != 0x0A { eol += 1 }
                var colon = p
                while colon < eol && sent[colon] != 0x3A { colon += 1 }
                if colon < eol && CacheHeaders.sameName(UnsafeRawBufferPointer(rebasing: sent[p..<colon]), name) {
                    var a = colon + 1, b = eol
                    while a < b && (sent[a] == 0x20 || sent[a] == 0x09) { a += 1 }
                    while b > a && (sent[b - 1] == 0x20 || sent[b - 1] == 0x09 || sent[b - 1] == 0x0D) { b -= 1 }
                    CacheHeaders.fnv(&h, UnsafeRawBufferPointer(rebasing: sent[a..<b]))
                    break
                }
                p = eol + 1
            }
            h = (h ^ 0x0A) &* 0x100_0000_01b3
            i = j + 1
        }
        return h
    }

    /// Writes a stored response to the client and ends the exchange like a local answer.
    func cacheServe(_ c: Int32, _ e: Int32, notModified: Bool, label: StaticString, consume: Int) {
        let xi = Int(socks[Int(c)].exchange)
        guard let zp = cacheZone(exchanges[xi].view, exchanges[xi].route) else { return }
        decideLocalKeepAlive(c)
        if exchanges[xi].cache.entry != e {
            zp.pointee.entries[Int(e)].pins += 1
            if exchanges[xi].cache.entry >= 0 { cacheUnpin(zp, exchanges[xi].cache.entry) }
            exchanges[xi].cache.entry = e
        }
        zp.pointee.touch(e)
        let en = zp.pointee.entries[Int(e)]
        let id = outBuffer(c)
        guard id >= 0, segmentRoom(c) >= 3 else {
            respondError(c, 503, "no buffer for the response", cause: "overloaded", consume: consume)
            return
        }
        let age = max(0, en.initialAgeS + (nowMs - en.storedMs) / 1000)
        var w = headWriter(id)
        var bodyBytes = 0
        if notModified {
            w.append("HTTP/1.1 304 Not Modified\r\n")
            if en.etagLength > 0 {
                w.append("ETag: ")
                w.append(UnsafeRawBufferPointer(start: zp.pointee.headStart(e) + Int(en.etagOffset), count: Int(en.etagLength)))
                w.append("\r\n")
            }
            if en.lastModifiedLength > 0 {
                w.append("Last-Modified: ")
                w.append(UnsafeRawBufferPointer(start: zp.pointee.headStart(e) + Int(en.lastModifiedOffset), count: Int(en.lastModifiedLength)))
                w.append("\r\n")
            }
        } else {
            enqueue(c, zp.pointee.headStart(e), Int(en.headLength), id: -1)
        }
        w.append("Age: "); w.appendDecimal(UInt64(age)); w.append("\r\nx-edge-cache: "); w.append(label); w.append("\r\n")
        if exchanges[xi].policy.active { appendPolicyResponseHeaders(&w, xi) }
        if !exchanges[xi].keepAlive { w.append("Connection: close\r\n") }
        else if exchanges[xi].versionMinor == 0 { w.append("Connection: keep-alive\r\n") }
        w.append("\r\n")
        guard commitHead(c, id, w) else { closeSock(c); return }
        if !notModified && exchanges[xi].method != .head && en.bodyLength > 0 {
            enqueue(c, zp.pointee.bodyStart(e), Int(en.bodyLength), id: -1)
            bodyBytes = Int(en.bodyLength)
        }
        obsLocal(xi, notModified ? 304 : en.status, nil, bodyBytes: bodyBytes)
        finishLocal(c, consume: consume)
    }

    /// `x-edge-cache` on a response that went upstream (writeResponseHead).
    @inline(__always) func appendCacheStatus(_ w: inout HeadWriter, _ xi: Int) {
        switch exchanges[xi].cache.label {
        case .miss: w.append("x-edge-cache: miss\r\n")
        case .stale: w.append("x-edge-cache: stale\r\n")
        case .bypass: w.append("x-edge-cache: bypass\r\n")
        }
    }

    /// Validators of the entry being revalidated, added to the upstream request (writeRequestHead).
    func appendCacheValidators(_ w: inout HeadWriter, _ xi: Int) {
        let e = exchanges[xi].cache.entry
        guard e >= 0, let zp = cacheZone(exchanges[xi].view, exchanges[xi].route) else { return }
        let en = zp.pointee.entries[Int(e)]
        if en.etagLength > 0 {
            w.append("If-None-Match: ")
            w.append(UnsafeRawBufferPointer(start: zp.pointee.headStart(e) + Int(en.etagOffset), count: Int(en.etagLength)))
            w.append("\r\n")
        }
        if en.lastModifiedLength > 0 {
            w.append("If-Modified-Since: ")
            w.append(UnsafeRawBufferPointer(start: zp.pointee.headStart(e) + Int(en.lastModifiedOffset), count: Int(en.lastModifiedLength)))
            w.append("\r\n")
        }
    }

    /// Drops the exchange's pins and any unfinished fill (endExchangeView).
    func cacheExchangeEnded(_ xi: Int) {
        let st = exchanges[xi].cache
        guard st.active else { return }
        if st.leader { cacheLeaderEnded(xi) }
        if st.waitingOn >= 0 { cacheStopWaiting(xi) }
        if st.keyBuf >= 0 { buffers.release(st.keyBuf) }
        guard let zp = cacheZone(exchanges[xi].view, exchanges[xi].route) else { exchanges[xi].cache = CacheExchangeState(); return }
        let b0 = zp.pointee.bytes
        if st.fill >= 0 { zp.pointee.release(st.fill) }
        if st.entry >= 0 { cacheUnpin(zp, st.entry) }
        stats.cache.bump(stats.cache.bytes, zp.pointee.bytes - b0)
        exchanges[xi].cache = CacheExchangeState()
    }

    func cacheUnpin(_ zp: UnsafeMutablePointer<CacheZone>, _ e: Int32) {
        if zp.pointee.entries[Int(e)].pins > 0 { zp.pointee.entries[Int(e)].pins -= 1 }
        zp.pointee.release(e)
    }

    private func cacheApplyPurges(_ zp: UnsafeMutablePointer<CacheZone>) {
        let b0 = zp.pointee.bytes, c0 = zp.pointee.count
        let n = CachePurge.board.apply(to: &zp.pointee)
        stats.cache.bump(stats.cache.purged, n)
        stats.cache.bump(stats.cache.bytes, zp.pointee.bytes - b0)
        stats.cache.bump(stats.cache.entries, zp.pointee.count - c0)
    }
}
