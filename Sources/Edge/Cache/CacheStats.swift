import Atomics

/// Response-cache counters one reactor shares with the control thread
/// (relaxed atomics like the rest of `WorkerStats`).
struct CacheStats: @unchecked Sendable {
    let hits = UnsafeAtomic<Int>.create(0)
    let misses = UnsafeAtomic<Int>.create(0)
    /// Stale entries revalidated upstream, and of those answered 304 (entry refreshed).
    let stale = UnsafeAtomic<Int>.create(0)
    let revalidated = UnsafeAtomic<Int>.create(0)
    /// Client conditional requests answered 304 from the cache.
    let notModified = UnsafeAtomic<Int>.create(0)
    /// Misses that waited for another request's response to the same key.
    let coalesced = UnsafeAtomic<Int>.create(0)
    let stores = UnsafeAtomic<Int>.create(0)
    let evictions = UnsafeAtomic<Int>.create(0)
    let purged = UnsafeAtomic<Int>.create(0)
    /// Bytes and entries held right now (gauges).
    let bytes = UnsafeAtomic<Int>.create(0)
    let entries = UnsafeAtomic<Int>.create(0)

    @inline(__always) func bump(_ a: UnsafeAtomic<Int>, _ by: Int = 1) {
        a.wrappingIncrement(by: by, ordering: .relaxed)
    }
}

extension EdgeServer {
    /// The `edge_cache_*` families of /metrics.
    func renderCacheMetrics(_ out: inout String) {
        func family(_ name: String, _ help: String, _ type: String, _ value: (CacheStats) -> Int) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (i, w) in workers.enumerated() { out += "\(name){worker=\"\(i)\"} \(value(w.cache))\n" }
        }
        family("edge_cache_hits_total", "Responses served from the response cache (incl. 304s to conditional requests).", "counter") { $0.hits.load(ordering: .relaxed) }
        family("edge_cache_misses_total", "Cacheable requests sent upstream because nothing usable was stored.", "counter") { $0.misses.load(ordering: .relaxed) }
        family("edge_cache_stale_total", "Stale entries revalidated upstream.", "counter") { $0.stale.load(ordering: .relaxed) }
        family("edge_cache_revalidated_total", "Revalidations the upstream answered 304 (entry refreshed).", "counter") { $0.revalidated.load(ordering: .relaxed) }
        family("edge_cache_not_modified_total", "Client conditional requests answered 304 from the cache.", "counter") { $0.notModified.load(ordering: .relaxed) }
        family("edge_cache_coalesced_total", "Misses that waited for a concurrent request to the same key.", "counter") { $0.coalesced.load(ordering: .relaxed) }
        family("edge_cache_stores_total", "Responses stored.", "counter") { $0.stores.load(ordering: .relaxed) }
        family("edge_cache_evictions_total", "Entries evicted (LRU) to make room.", "counter") { $0.evictions.load(ordering: .relaxed) }
        family("edge_cache_purged_total", "Entries removed by POST /cache/purge.", "counter") { $0.purged.load(ordering: .relaxed) }
        family("edge_cache_bytes", "Bytes of arena blocks holding stored responses.", "gauge") { $0.bytes.load(ordering: .relaxed) }
        family("edge_cache_entries", "Stored responses.", "gauge") { $0.entries.load(ordering: .relaxed) }
    }
}
