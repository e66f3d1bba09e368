import Atomics
import Glibc

/// Purge requests from the admin thread to every worker's caches. The admin
/// thread appends a request and bumps `generation`; a worker compares one
/// relaxed atomic per cache lookup and, only when it changed (rare), takes the
/// lock to read the requests it has not applied. Workers never block each other
/// on the hot path.
final class CachePurge: @unchecked Sendable {
    struct Request { var generation: Int; var prefix: [UInt8]; var exact: Bool }

    /// Bumped once per purge request (never freed: process lifetime).
    static let generation = UnsafeAtomic<Int>.create(0)
    static let board = CachePurge()
    /// Kept requests; a worker further behind than this purges everything.
    static let keep = 64

    private var mutex = pthread_mutex_t()
    private var requests: [Request] = []

    private init() { pthread_mutex_init(&mutex, nil) }

    /// Records a purge (empty prefix = everything) and returns its generation.
    func post(prefix: [UInt8], exact: Bool) -> Int {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        let g = Self.generation.load(ordering: .relaxed) + 1
        requests.append(Request(generation: g, prefix: prefix, exact: exact))
        if requests.count > Self.keep { requests.removeFirst(requests.count - Self.keep) }
        Self.generation.store(g, ordering: .releasing)
        return g
    }

    /// Applies the requests newer than `zone.purgeGeneration` to `zone`; entries removed.
    func apply(to zone: inout CacheZone) -> Int {
        pthread_mutex_lock(&mutex)
        let pending = requests.filter { $0.generation > zone.purgeGeneration }
        let oldest = requests.first?.generation ?? Int.max
        let latest = Self.generation.load(ordering: .relaxed)
        pthread_mutex_unlock(&mutex)
        var n = 0
        if zone.purgeGeneration + 1 < oldest {
            n = zone.purge(prefix: [], exact: false)  // missed some requests: drop everything
        } else {
            for r in pending { n += zone.purge(prefix: r.prefix, exact: r.exact) }
        }
        zone.purgeGeneration = latest
        return n
    }

    /// `POST /cache/purge[?prefix=/p | ?path=/exact]` (or the same as a
    /// `prefix=` / `path=` form body): everything when neither is given.
    static func adminRespond(method: String, head: [UInt8], body: [UInt8]) -> AdminResponse {
        guard method == "POST" else {
            return AdminResponse(status: 405, body: "method not allowed\n", extraHeaders: ["Allow": "POST"])
        }
        var params = [UInt8]()
        if let eol = head.firstIndex(of: 13), let q = head[..<eol].firstIndex(of: 0x3F) {
            var end = q + 1
            while end < eol && head[end] != 0x20 { end += 1 }
            params = Array(head[(q + 1)..<end])
        }
        if params.isEmpty { params = body.filter { $0 != 10 && $0 != 13 } }
        var prefix = [UInt8](), exact = false
        for pair in params.split(separator: 0x26) {
            let kv = pair.split(separator: 0x3D, maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2 else { return AdminResponse(status: 400, body: "expected prefix=/path or path=/path\n") }
            let name = String(decoding: kv[0], as: UTF8.self)
            guard name == "prefix" || name == "path" || name == "key" else {
                return AdminResponse(status: 400, body: "unknown parameter '\(name)': expected prefix=/path or path=/path\n")
            }
            guard let value = percentDecoded(Array(kv[1])), value.first == 0x2F else {
                return AdminResponse(status: 400, body: "\(name) must be a path starting with /\n")
            }
            prefix = value
            exact = name != "prefix"
        }
        let g = board.post(prefix: prefix, exact: exact)
        let what = prefix.isEmpty ? "all" : String(decoding: prefix, as: UTF8.self)
        let body = #"{"purge":"\#(jsonEscaped(what))","exact":\#(exact),"generation":\#(g)}"# + "\n"
        return AdminResponse(status: 200, contentType: "application/json", body: body)
    }

    private static func percentDecoded(_ b: [UInt8]) -> [UInt8]? {
        var out = [UInt8](), i = 0
        while i < b.count {
            if b[i] == 0x25 {
                guard i + 2 < b.count, let v = UInt8(String(decoding: b[(i + 1)...(i + 2)], as: UTF8.self), radix: 16) else { return nil }
                out.append(v); i += 3
            } else { out.append(b[i]); i += 1 }
        }
        return out
    }

    private static func jsonEscaped(_ s: String) -> String {
        var o = ""
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": o += "\\\""
            case "\\": o += "\\\\"
            default: if ch.value < 0x20 { o += "?" } else { o.unicodeScalars.append(ch) }
            }
        }
        return o
    }
}
