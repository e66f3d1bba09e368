/// Where matching starts for one listener: hash lookups by host instead of a
/// scan over routes, so match cost does not grow with the route count.
struct ListenerIndex {
    /// Lower-cased host → host bucket.
    var exactHosts: ByteHashTable
    /// Lower-cased suffix with its leading dot (".example.com") → host bucket.
    var wildcardHosts: ByteHashTable
    /// Bucket of routes without a host condition; -1 = none.
    var anyBucket: Int32
}

/// The routes sharing one host condition, grouped by path condition. Each
/// group keeps its routes in file order (runs in `RouteTable.candidates`), so
/// a candidate that fails its method/header/query checks falls through to the
/// next one, and ties go to the earlier route.
struct HostBucket {
    /// Exact path → candidate run.
    var exactPaths: ByteHashTable
    /// Prefix bytes → candidate run; probed for each distinct length, longest first.
    var prefixes: ByteHashTable
    /// Distinct prefix lengths, descending, in `RouteTable.prefixLengths`.
    var firstPrefixLength: Int32
    var prefixLengthCount: Int32
    /// Regex routes in file order (candidate run).
    var firstRegex: Int32
    var regexCount: Int32
    /// Routes without a path condition (and `path_prefix: "/"`), file order.
    var firstCatchAll: Int32
    var catchAllCount: Int32
}

/// The index arrays as the compiler builds them, before the table copies
/// them into memory it owns.
struct RouteIndexParts {
    var listeners: [ListenerIndex] = []
    var buckets: [HostBucket] = []
    var slots: [HashSlot] = []
    var candidates: [Int32] = []
    var prefixLengths: [Int32] = []
}

/// Groups one listener's compiled routes into host buckets and path groups.
enum RouteIndexBuilder {
    /// `path_prefix: "/"` matches every origin-form path: rank it with the
    /// catch-alls, so the usual default route does not shadow regex routes.
    static func isCatchAll(_ r: CompiledRoute) -> Bool {
        switch r.pathMatch {
        case .any: return true
        case .prefix: return r.path.count <= 1
        case .exact, .regex: return false
        }
    }

    private final class BucketDraft {
        var exact: [[UInt8]: (key: StaticBytes, routes: [Int32])] = [:]
        var exactOrder: [[UInt8]] = []
        var prefix: [[UInt8]: (key: StaticBytes, routes: [Int32])] = [:]
        var prefixOrder: [[UInt8]] = []
        var regex: [Int32] = []
        var catchAll: [Int32] = []
    }

    /// Adds the index of routes `first..<first+count` (global indices into `routes`).
    static func addListener(routes: [CompiledRoute], first: Int, count: Int, into parts: inout RouteIndexParts) {
        var exactHosts: [[UInt8]: (key: StaticBytes, draft: BucketDraft)] = [:]
        var wildcardHosts: [[UInt8]: (key: StaticBytes, draft: BucketDraft)] = [:]
        var hostOrder: [(wildcard: Bool, key: [UInt8])] = []
        var any: BucketDraft? = nil

        for i in first..<(first + count) {
            let r = routes[i]
            let draft: BucketDraft
            let hostKey = Array(r.host.buffer)
            switch r.hostMatch {
            case .any:
                if any == nil { any = BucketDraft() }
                draft = any ?? BucketDraft()
            case .exact:
                if let d = exactHosts[hostKey] { draft = d.draft } else {
                    draft = BucketDraft(); exactHosts[hostKey] = (r.host, draft); hostOrder.append((false, hostKey))
                }
            case .wildcard:
                if let d = wildcardHosts[hostKey] { draft = d.draft } else {
                    draft = BucketDraft(); wildcardHosts[hostKey] = (r.host, draft); hostOrder.append((true, hostKey))
                }
            }
            let idx = Int32(i)
            if isCatchAll(r) { draft.catchAll.append(idx); continue }
            let pathKey = Array(r.path.buffer)
            switch r.pathMatch {
            case .exact:
                if draft.exact[pathKey] == nil { draft.exactOrder.append(pathKey); draft.exact[pathKey] = (r.path, []) }
                draft.exact[pathKey]?.routes.append(idx)
            case .prefix:
                if draft.prefix[pathKey] == nil { draft.prefixOrder.append(pathKey); draft.prefix[pathKey] = (r.path, []) }
                draft.prefix[pathKey]?.routes.append(idx)
            case .regex:
                draft.regex.append(idx)
            case .any:
                draft.catchAll.append(idx)
            }
        }

        var exactEntries: [ByteHashTableBuilder.Entry] = []
        var wildcardEntries: [ByteHashTableBuilder.Entry] = []
        for h in hostOrder {
            guard let entry = h.wildcard ? wildcardHosts[h.key] : exactHosts[h.key] else { continue }
            let bucket = emit(entry.draft, into: &parts)
            let e = ByteHashTableBuilder.Entry(key: entry.key, first: bucket, count: 1)
            if h.wildcard { wildcardEntries.append(e) } else { exactEntries.append(e) }
        }
        let anyBucket = any.map { emit($0, into: &parts) } ?? -1
        parts.listeners.append(ListenerIndex(
            exactHosts: ByteHashTableBuilder.build(exactEntries, into: &parts.slots),
            wildcardHosts: ByteHashTableBuilder.build(wildcardEntries, into: &parts.slots),
            anyBucket: anyBucket))
    }

    /// Writes one bucket's candidate runs and tables; returns its index.
    private static func emit(_ d: BucketDraft, into parts: inout RouteIndexParts) -> Int32 {
        func run(_ list: [Int32]) -> (Int32, Int32) {
            let first = Int32(parts.candidates.count)
            parts.candidates.append(contentsOf: list)
            return (first, Int32(list.count))
        }
        var exactEntries: [ByteHashTableBuilder.Entry] = []
        for k in d.exactOrder {
            guard let e = d.exact[k] else { continue }
            let (f, c) = run(e.routes)
            exactEntries.append(.init(key: e.key, first: f, count: c))
        }
        var prefixEntries: [ByteHashTableBuilder.Entry] = []
        var lengths = Set<Int>()
        for k in d.prefixOrder {
            guard let e = d.prefix[k] else { continue }
            let (f, c) = run(e.routes)
            prefixEntries.append(.init(key: e.key, first: f, count: c))
            lengths.insert(k.count)
        }
        let (firstRegex, regexCount) = run(d.regex)
        let (firstCatchAll, catchAllCount) = run(d.catchAll)
        let firstLength = Int32(parts.prefixLengths.count)
        parts.prefixLengths.append(contentsOf: lengths.sorted(by: >).map { Int32($0) })
        let bucket = HostBucket(
            exactPaths: ByteHashTableBuilder.build(exactEntries, into: &parts.slots),
            prefixes: ByteHashTableBuilder.build(prefixEntries, into: &parts.slots),
            firstPrefixLength: firstLength, prefixLengthCount: Int32(lengths.count),
            firstRegex: firstRegex, regexCount: regexCount,
            firstCatchAll: firstCatchAll, catchAllCount: catchAllCount)
        parts.buckets.append(bucket)
        return Int32(parts.buckets.count - 1)
    }
}
