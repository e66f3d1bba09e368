import CIOUring
import Glibc
import Protocols

/// Header and query-parameter conditions, checked against the raw request
/// bytes. A condition on a repeated header/parameter holds if ANY occurrence
/// satisfies it (`absent`: if none exists).
///
/// Headers: names compare case-insensitively (matcher names are stored
/// lower-cased), values byte-for-byte. Query: the string after '?' is split on
/// '&', each pair at its first '='; names and values compare as RAW bytes —
/// no percent- or '+'-decoding (so `a%20b` in the request only matches
/// `a%20b` in the config). A bare `flag` (no '=') is present with an empty value.
extension RouteTable {
    func headersPass(_ first: Int32, _ count: Int32, _ req: RequestView, _ worker: Int) -> Bool {
        var i = Int(first)
        let end = i + Int(count)
        guard i >= 0, end <= matchers.count else { return false }
        while i < end {
            if !headerMatcherHolds(matchers[i], req, worker) { return false }
            i += 1
        }
        return true
    }

    func queryPasses(_ first: Int32, _ count: Int32, _ req: RequestView, _ worker: Int) -> Bool {
        var i = Int(first)
        let end = i + Int(count)
        guard i >= 0, end <= matchers.count else { return false }
        while i < end {
            if !queryMatcherHolds(matchers[i], req, worker) { return false }
            i += 1
        }
        return true
    }

    @inline(__always)
    private func headerMatcherHolds(_ m: CompiledMatcher, _ req: RequestView, _ worker: Int) -> Bool {
        let head = req.head
        guard let headBase = head.baseAddress else { return m.kind == .absent }
        var found = false
        for f in req.headers {
            guard f.name.offset >= 0, f.name.length >= 0, f.name.end <= head.count,
                  Int(f.name.length) == m.name.count, let want = m.name.base,
                  ByteHash.equal(headBase + Int(f.name.offset), want, m.name.count, foldCase: true) else { continue }
            guard f.value.offset >= 0, f.value.length >= 0, f.value.end <= head.count else { continue }
            let value = UnsafeRawBufferPointer(start: headBase + Int(f.value.offset), count: Int(f.value.length))
            switch m.kind {
            case .present: return true
            case .absent: found = true
            case .exact: if bytesEqual(value, m.value) { return true }
            case .regex: if regexMatches(m.regex, value, worker) { return true }
            }
        }
        return m.kind == .absent && !found
    }

    @inline(__always)
    private func queryMatcherHolds(_ m: CompiledMatcher, _ req: RequestView, _ worker: Int) -> Bool {
        let q = req.query
        var found = false
        var start = 0
        while start <= q.count, let base = q.baseAddress, q.count > 0 {
            var end = start
            while end < q.count && q[end] != UInt8(ascii: "&") { end += 1 }
            var eq = start
            while eq < end && q[eq] != UInt8(ascii: "=") { eq += 1 }
            let name = UnsafeRawBufferPointer(start: base + start, count: eq - start)
            if bytesEqual(name, m.name) {
                let valueStart = min(eq + 1, end)
                let value = UnsafeRawBufferPointer(start: base + valueStart, count: end - valueStart)
                switch m.kind {
                case .present: return true
                case .absent: found = true
                case .exact: if bytesEqual(value, m.value) { return true }
                case .regex: if regexMatches(m.regex, value, worker) { return true }
                }
            }
            start = end + 1
        }
        return m.kind == .absent && !found
    }

    @inline(__always)
    private func bytesEqual(_ a: UnsafeRawBufferPointer, _ b: StaticBytes) -> Bool {
        guard a.count == b.count else { return false }
        guard a.count > 0 else { return true }
        guard let pa = a.baseAddress, let pb = b.base else { return false }
        return memcmp(pa, pb, a.count) == 0
    }
}
