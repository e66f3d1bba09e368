import CIOUring
import Glibc
import Protocols

/// Request → route. Runs on reactors for every request: hash lookups only
/// (no scan over routes), no allocation, no String, no ARC.
///
/// Precedence: host exact > wildcard (longest suffix first) > any host; within
/// a host bucket: exact path > longest prefix > regex > no path condition; ties
/// keep file order. A candidate whose method/header/query conditions fail falls
/// through to the next candidate in that same order, across host levels too.
extension RouteTable {
    /// Most specific matching route for `req` on `listener`, or -1.
    /// `worker` is the calling reactor's index (0..<workers): it selects that
    /// reactor's PCRE2 match data (see `prepareForWorkers`). A worker without
    /// match data sees every regex condition as false (never a trap).
    package func match(listener: Int, _ req: RequestView, worker: Int) -> Int {
        guard listener >= 0, listener < listenerIndex.count else { return -1 }
        let li = listenerIndex[listener]
        var host = req.host
        // "example.com." (FQDN form) names the same host as "example.com".
        if host.count > 1, host[host.count - 1] == UInt8(ascii: ".") {
            host = UnsafeRawBufferPointer(rebasing: host[0..<(host.count - 1)])
        }
        if host.count > 0 {
            let s = li.exactHosts.find(host.baseAddress, host.count, foldCase: true, in: hashSlots)
            if s >= 0 {
                let r = matchBucket(Int(hashSlots[s].first), req, worker)
                if r >= 0 { return r }
            }
            if li.wildcardHosts.capacity > 0, let base = host.baseAddress {
                // Suffixes that start at a dot with at least one byte before it,
                // longest first: "a.b.example.com" tries ".b.example.com", ".example.com", ".com".
                var i = 1
                while i < host.count {
                    if host[i] == UInt8(ascii: ".") {
                        let s = li.wildcardHosts.find(base + i, host.count - i, foldCase: true, in: hashSlots)
                        if s >= 0 {
                            let r = matchBucket(Int(hashSlots[s].first), req, worker)
                            if r >= 0 { return r }
                        }
                    }
                    i += 1
                }
            }
        }
        if li.anyBucket >= 0 { return matchBucket(Int(li.anyBucket), req, worker) }
        return -1
    }

    /// First route of one host bucket, in precedence order, whose remaining
    /// conditions hold; -1 if none.
    @inline(__always)
    private func matchBucket(_ b: Int, _ req: RequestView, _ worker: Int) -> Int {
        guard b >= 0, b < hostBuckets.count else { return -1 }
        let bucket = hostBuckets[b]
        let path = req.path
        if bucket.exactPaths.capacity > 0 {
            let s = bucket.exactPaths.find(path.baseAddress, path.count, foldCase: false, in: hashSlots)
            if s >= 0 {
                let r = firstPassing(hashSlots[s].first, hashSlots[s].count, req, worker, pathChecked: true)
                if r >= 0 { return r }
            }
        }
        if bucket.prefixLengthCount > 0 {
            var k = Int(bucket.firstPrefixLength)
            let end = k + Int(bucket.prefixLengthCount)
            while k < end {
                let len = Int(prefixLengths[k])
                k += 1
                guard len <= path.count else { continue }
                let s = bucket.prefixes.find(path.baseAddress, len, foldCase: false, in: hashSlots)
                if s >= 0 {
                    let r = firstPassing(hashSlots[s].first, hashSlots[s].count, req, worker, pathChecked: true)
                    if r >= 0 { return r }
                }
            }
        }
        if bucket.regexCount > 0 {
            let r = firstPassing(bucket.firstRegex, bucket.regexCount, req, worker, pathChecked: false)
            if r >= 0 { return r }
        }
        if bucket.catchAllCount > 0 {
            return firstPassing(bucket.firstCatchAll, bucket.catchAllCount, req, worker, pathChecked: false)
        }
        return -1
    }

    /// First route of a candidate run whose conditions hold. `pathChecked`:
    /// the index lookup already proved the path condition.
    @inline(__always)
    private func firstPassing(_ first: Int32, _ count: Int32, _ req: RequestView, _ worker: Int, pathChecked: Bool) -> Int {
        var i = Int(first)
        let end = i + Int(count)
        guard i >= 0, end <= candidates.count else { return -1 }
        while i < end {
            let ri = Int(candidates[i])
            i += 1
            guard ri >= 0, ri < routes.count else { continue }
            if routePasses(routes[ri], req, worker, pathChecked: pathChecked) { return ri }
        }
        return -1
    }

    @inline(__always)
    private func routePasses(_ r: CompiledRoute, _ req: RequestView, _ worker: Int, pathChecked: Bool) -> Bool {
        if r.methodMask != 0 && r.methodMask & (UInt16(1) << UInt16(req.method.rawValue & 15)) == 0 { return false }
        if !pathChecked {
            switch r.pathMatch {
            case .any: break
            case .prefix:
                guard req.path.count >= r.path.count else { return false }
                if r.path.count > 0 {
                    guard let have = req.path.baseAddress, let want = r.path.base,
                          memcmp(have, want, r.path.count) == 0 else { return false }
                }
            case .exact:
                guard req.path.count == r.path.count else { return false }
                if r.path.count > 0 {
                    guard let have = req.path.baseAddress, let want = r.path.base,
                          memcmp(have, want, r.path.count) == 0 else { return false }
                }
            case .regex:
                guard regexMatches(r.pathRegex, req.path, worker) else { return false }
            }
        }
        if r.headerMatcherCount > 0 && !headersPass(r.firstHeaderMatcher, r.headerMatcherCount, req, worker) { return false }
        if r.queryMatcherCount > 0 && !queryPasses(r.firstQueryMatcher, r.queryMatcherCount, req, worker) { return false }
        return true
    }

    /// Full match of `subject` against regex `i` with this worker's match data.
    @inline(__always)
    func regexMatches(_ i: Int32, _ subject: UnsafeRawBufferPointer, _ worker: Int) -> Bool {
        guard i >= 0, Int(i) < regexes.count, worker >= 0, worker < regexMatchData.count,
              let md = regexMatchData[worker] else { return false }
        return Regex.matches(regexes[Int(i)], subject, matchData: md)
    }
}
