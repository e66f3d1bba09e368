import Foundation
import XCTest

/// The response cache (Sources/Edge/Cache) against a real origin
/// (`cache_origin.py`) that counts the requests it gets: hits cost no upstream
/// request, freshness expires and revalidates with 304, Vary variants,
/// no-store/private, client 304s, LRU under the size bound, coalescing of
/// concurrent misses, and purge through the admin API.
final class CacheTests: XCTestCase {
    final class Origin {
        let port: UInt16
        let process: ManagedProcess

        init(dir: URL) throws {
            port = try Ports.free()
            let script = Paths.repoRoot.appendingPathComponent("Tests/IntegrationTests/cache_origin.py").path
            process = try ManagedProcess(name: "cache-origin", executable: try Paths.require("python3"),
                                         arguments: ["-u", script, "--port", String(port)], dir: dir)
            let deadline = OS.now() + 10
            while OS.now() < deadline {
                if Ports.connectErrno(port) == 0 { return }
                OS.sleepMs(30)
            }
            throw HarnessError("cache_origin.py did not start: \(process.stderrText())")
        }

        func stats() throws -> [String: Any] { try HTTP.get(port: port, "/_stats").json() }
        func count(_ path: String) throws -> Int { (try stats()["paths"] as? [String: Int])?[path] ?? 0 }
        func total() throws -> Int { try stats()["total"] as? Int ?? -1 }
        func inm(_ path: String) throws -> [String] { (try stats()["inm"] as? [String: [String]])?[path] ?? [] }
    }

    private var origin: Origin?
    private var harness: EdgeHarness?

    override func tearDown() {
        harness?.stop()
        origin?.process.stop()
        super.tearDown()
    }

    /// Edge with a caching route for `/c/` (and `/small/` with a tiny size bound) in front of the origin.
    private func start(cache: String = "{ max_size: 1MiB, max_object: 64KiB, coalesce_timeout: 5s }",
                       adminToken: String? = nil, environment: [String: String] = [:], workers: String = "1") throws -> (EdgeHarness, Origin) {
        let dir = try Paths.makeTempDir("cache-origin")
        let o = try Origin(dir: dir)
        origin = o
        var opts = EdgeOptions()
        opts.upEndpoints = ["127.0.0.1:\(o.port)"]
        opts.extraRoutes = """
              - match: { path_prefix: "/c/" }
                cluster: up
                cache: \(cache)
              - match: { path_prefix: "/small/" }
                cluster: up
                cache: { max_size: 256KiB, max_object: 32KiB }
              - match: { path_prefix: "/nocache/" }
                cluster: up
        """
        opts.environment = environment
        opts.workers = workers
        if let adminToken {
            opts.environment["EDGE_TEST_ADMIN_TOKEN"] = adminToken
            opts.adminExtra = "  token_env: EDGE_TEST_ADMIN_TOKEN"
        }
        // The harness also starts upstream.py on a free port; on a shared machine another
        // process may take that port first, so one retry with fresh ports.
        for attempt in 0..<2 {
            let h = try EdgeHarness(options: opts)
            harness = h
            do {
                try h.start()
                return (h, o)
            } catch let e as HarnessError where attempt == 0 && e.description.contains("Address already in use") {
                h.stop()
            }
        }
        throw HarnessError("edge harness did not start")
    }

    private func get(_ h: EdgeHarness, _ path: String, _ headers: [String] = []) throws -> HTTPResponse {
        try HTTP.get(port: h.listenPort, path, headers: headers)
    }

    func testHitsAreServedWithoutUpstreamTrafficAndAgeGrows() throws {
        let (h, o) = try start()
        let path = "/c/a?cc=max-age%3D60"
        let first = try get(h, path)
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual(first.header("x-edge-cache"), "miss")
        for _ in 0..<5 {
            let r = try get(h, path)
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(r.header("x-edge-cache"), "hit")
            XCTAssertEqual(r.text, first.text, "a hit carries the stored body")
            XCTAssertNotNil(r.header("age"))
        }
        XCTAssertEqual(try o.count(path), 1, "hits must not reach the origin")
        OS.sleepMs(2100)
        let later = try get(h, path)
        XCTAssertEqual(later.header("x-edge-cache"), "hit")
        XCTAssertGreaterThanOrEqual(Int(later.header("age") ?? "") ?? -1, 2, "Age grows while the entry is held")
        // HEAD is answered from the GET entry, without a body.
        let c = try RawClient(port: h.listenPort)
        defer { c.close() }
        let head = try HTTP.request(c, method: "HEAD", path, port: h.listenPort)
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.header("x-edge-cache"), "hit")
        XCTAssertEqual(head.body.count, 0)
        XCTAssertEqual(try o.count(path), 1)
        let metrics = try h.metricsText()
        XCTAssertTrue(metrics.contains("edge_cache_hits_total{worker=\"0\"} 7"), metrics.components(separatedBy: "\n").filter { $0.hasPrefix("edge_cache") }.joined(separator: "\n"))
        XCTAssertTrue(metrics.contains("edge_cache_misses_total{worker=\"0\"} 1"))
        XCTAssertTrue(metrics.contains("edge_cache_entries{worker=\"0\"} 1"))
    }

    func testExpiredEntryIsRevalidatedWith304() throws {
        let (h, o) = try start()
        let path = "/c/r?cc=max-age%3D1&etag=v1"
        let first = try get(h, path)
        XCTAssertEqual(first.header("x-edge-cache"), "miss")
        XCTAssertEqual(try get(h, path).header("x-edge-cache"), "hit")
        XCTAssertEqual(try o.count(path), 1)
        OS.sleepMs(1600)
        let r = try get(h, path)
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.header("x-edge-cache"), "revalidated")
        XCTAssertEqual(r.text, first.text, "a 304 from the origin serves the stored body")
        XCTAssertEqual(try o.count(path), 2)
        XCTAssertEqual(try o.inm(path), ["\"v1\""], "the revalidation carries If-None-Match")
        // Refreshed: fresh again for max-age.
        XCTAssertEqual(try get(h, path).header("x-edge-cache"), "hit")
        XCTAssertEqual(try o.count(path), 2)
        // Last-Modified alone revalidates with If-Modified-Since.
        let lm = "/c/lm?cc=max-age%3D1&lm=1"
        _ = try get(h, lm)
        OS.sleepMs(1600)
        XCTAssertEqual(try get(h, lm).header("x-edge-cache"), "revalidated")
        XCTAssertEqual((try o.stats()["ims"] as? [String: [String]])?[lm]?.count, 1)
        // A no-cache response is stored but revalidated every time.
        let nc = "/c/nc?cc=no-cache&etag=z"
        XCTAssertEqual(try get(h, nc).header("x-edge-cache"), "miss")
        XCTAssertEqual(try get(h, nc).header("x-edge-cache"), "revalidated")
        XCTAssertEqual(try o.count(nc), 2)
    }

    func testVaryStoresOneVariantPerHeaderValue() throws {
        let (h, o) = try start()
        let path = "/c/v?cc=max-age%3D60&vary=Accept-Language"
        let en = try get(h, path, ["Accept-Language: en"])
        let fr = try get(h, path, ["Accept-Language: fr"])
        XCTAssertTrue(en.text.contains("Accept-Language=en"), en.text)
        XCTAssertTrue(fr.text.contains("Accept-Language=fr"), fr.text)
        let en2 = try get(h, path, ["Accept-Language: en"])
        let fr2 = try get(h, path, ["Accept-Language: fr"])
        XCTAssertEqual(en2.header("x-edge-cache"), "hit")
        XCTAssertEqual(fr2.header("x-edge-cache"), "hit")
        XCTAssertEqual(en2.text, en.text)
        XCTAssertEqual(fr2.text, fr.text)
        XCTAssertEqual(try o.count(path), 2, "one origin request per variant")
        XCTAssertEqual(try get(h, path, ["Accept-Language: de"]).header("x-edge-cache"), "miss")
        XCTAssertEqual(try o.count(path), 3)
    }

    func testNoStorePrivateCookiesAndAuthorizationAreNeverShared() throws {
        let (h, o) = try start()
        for path in ["/c/ns?cc=no-store", "/c/pv?cc=private%2C%20max-age%3D60", "/c/ck?cc=max-age%3D60&cookie=1", "/c/none"] {
            XCTAssertEqual(try get(h, path).header("x-edge-cache"), "miss", path)
            XCTAssertEqual(try get(h, path).header("x-edge-cache"), "miss", path)
            XCTAssertEqual(try o.count(path), 2, "\(path) must not be cached")
        }
        // A request with no-store bypasses a stored entry.
        let p = "/c/b?cc=max-age%3D60"
        _ = try get(h, p)
        XCTAssertEqual(try get(h, p, ["Cache-Control: no-store"]).header("x-edge-cache"), "bypass")
        XCTAssertEqual(try o.count(p), 2)
        // Authorization: not shared unless the response says public.
        let a = "/c/auth?cc=max-age%3D60"
        _ = try get(h, a, ["Authorization: Bearer x"])
        _ = try get(h, a, ["Authorization: Bearer x"])
        XCTAssertEqual(try o.count(a), 2)
        let pub = "/c/pub?cc=public%2C%20max-age%3D60"
        _ = try get(h, pub, ["Authorization: Bearer x"])
        XCTAssertEqual(try get(h, pub, ["Authorization: Bearer y"]).header("x-edge-cache"), "hit")
        XCTAssertEqual(try o.count(pub), 1)
        // A route without cache never says x-edge-cache.
        XCTAssertNil(try get(h, "/nocache/x?cc=max-age%3D60").header("x-edge-cache"))
    }

    func testClientConditionalRequestGets304FromCache() throws {
        let (h, o) = try start()
        let path = "/c/e?cc=max-age%3D60&etag=t1&lm=1"
        _ = try get(h, path)
        let r = try get(h, path, ["If-None-Match: \"other\", \"t1\""])
        XCTAssertEqual(r.status, 304)
        XCTAssertEqual(r.header("etag"), "\"t1\"")
        XCTAssertEqual(r.header("x-edge-cache"), "hit")
        XCTAssertEqual(r.body.count, 0)
        XCTAssertEqual(try get(h, path, ["If-None-Match: \"nope\""]).status, 200)
        XCTAssertEqual(try get(h, path, ["If-Modified-Since: Tue, 02 Jan 2024 00:00:00 GMT"]).status, 304)
        XCTAssertEqual(try get(h, path, ["If-Modified-Since: Sun, 31 Dec 2023 00:00:00 GMT"]).status, 200)
        XCTAssertEqual(try o.count(path), 1)
    }

    func testLRUEvictsUnderTheSizeBound() throws {
        let (h, o) = try start()
        // /small/: 256 KiB per worker; 20 KB objects take 32 KiB blocks: at most 8 fit.
        func p(_ i: Int) -> String { "/small/o\(i)?cc=max-age%3D60&size=20000" }
        for i in 0..<12 {
            XCTAssertEqual(try get(h, p(i)).body.count, 20000)
            if i == 0 { continue }
            // Keep o0 recently used: it must survive while older ones go.
            XCTAssertEqual(try get(h, p(0)).header("x-edge-cache"), "hit", "o0 after o\(i)")
        }
        XCTAssertEqual(try get(h, p(11)).header("x-edge-cache"), "hit")
        XCTAssertEqual(try get(h, p(1)).header("x-edge-cache"), "miss", "the least recently used entry was evicted")
        XCTAssertEqual(try o.count(p(1)), 2)
        XCTAssertEqual(try o.count(p(0)), 1)
        let metrics = try h.metricsText()
        let evictions = metrics.components(separatedBy: "\n").first { $0.hasPrefix("edge_cache_evictions_total{worker=\"0\"}") }
        XCTAssertGreaterThanOrEqual(Int(evictions?.split(separator: " ").last ?? "") ?? 0, 4, evictions ?? "no evictions metric")
        let bytes = metrics.components(separatedBy: "\n").first { $0.hasPrefix("edge_cache_bytes{worker=\"0\"}") }
        XCTAssertLessThanOrEqual(Int(bytes?.split(separator: " ").last ?? "") ?? Int.max, 256 << 10 + 1 << 20, bytes ?? "")
        // Objects over max_object pass through uncached.
        let big = "/small/big?cc=max-age%3D60&size=40000"
        _ = try get(h, big)
        XCTAssertEqual(try get(h, big).header("x-edge-cache"), "miss")
        XCTAssertEqual(try o.count(big), 2)
    }

    func testHundredConcurrentMissesMakeOneUpstreamRequest() throws {
        let (h, o) = try start()
        let path = "/c/slow?cc=max-age%3D60&delay=300"
        let script = """
        import http.client, sys, threading
        port = int(sys.argv[1]); path = sys.argv[2]
        out = [None] * 100
        barrier = threading.Barrier(100)
        def one(i):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            barrier.wait()
            try:
                c.request("GET", path)
                r = c.getresponse()
                out[i] = "%d %s %s" % (r.status, r.getheader("x-edge-cache"), r.read().decode().strip())
            except Exception as e:
                out[i] = "error %r" % (e,)
        ts = [threading.Thread(target=one, args=(i,)) for i in range(100)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        print("\\n".join(out))
        """
        let r = try runCommand(try Paths.require("python3"), ["-c", script, String(h.listenPort), path], timeout: 60)
        let lines = r.stdoutText.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 100, r.stderr)
        let bodies = Set(lines.map { $0.split(separator: " ", maxSplits: 2).last.map(String.init) ?? "" })
        XCTAssertTrue(lines.allSatisfy { $0.hasPrefix("200 ") }, lines.filter { !$0.hasPrefix("200 ") }.prefix(5).joined(separator: "\n"))
        XCTAssertEqual(bodies.count, 1, "every client gets the one stored response: \(bodies.prefix(3))")
        XCTAssertEqual(try o.count(path), 1, "100 concurrent misses of one key make one upstream request")
        let metrics = try h.metricsText()
        let coalesced = metrics.components(separatedBy: "\n").first { $0.hasPrefix("edge_cache_coalesced_total{worker=\"0\"}") }
        XCTAssertGreaterThan(Int(coalesced?.split(separator: " ").last ?? "") ?? 0, 0, coalesced ?? "")
    }

    func testCoalescedWaitIsBoundedThenGoesUpstream() throws {
        let (h, o) = try start(cache: "{ max_size: 1MiB, max_object: 64KiB, coalesce_timeout: 200ms }")
        // The first response takes 1.5 s; a second request gives up waiting after 200 ms.
        let path = "/c/vslow?cc=max-age%3D60&delay=1500"
        let port = h.listenPort
        let slow = Thread { _ = try? HTTP.get(port: port, path) }
        slow.start()
        OS.sleepMs(300)
        let t0 = OS.now()
        let r = try get(h, path)
        XCTAssertEqual(r.status, 200)
        XCTAssertLessThan(OS.now() - t0, 1.6 + 1.0)
        XCTAssertEqual(try o.count(path), 2, "the waiter went upstream itself after coalesce_timeout")
    }

    func testPurgeThroughTheAdminAPI() throws {
        let token = "cache-purge-token-\(getpid())"
        let (h, o) = try start(adminToken: token)
        let p1 = "/c/p1?cc=max-age%3D60", p2 = "/c/p2?cc=max-age%3D60"
        _ = try get(h, p1); _ = try get(h, p2)
        XCTAssertEqual(try get(h, p1).header("x-edge-cache"), "hit")
        let url = "http://127.0.0.1:\(h.adminPort)/cache/purge"
        XCTAssertEqual(try Curl.run(["-X", "POST", url]).status, 401, "purge needs the admin token")
        XCTAssertEqual(try get(h, p1).header("x-edge-cache"), "hit", "a refused purge purges nothing")
        let prefix = try Curl.run(["-X", "POST", "-H", "Authorization: Bearer \(token)", url + "?prefix=/c/p1"])
        XCTAssertEqual(prefix.status, 200, prefix.bodyText)
        XCTAssertEqual(try get(h, p1).header("x-edge-cache"), "miss")
        XCTAssertEqual(try get(h, p2).header("x-edge-cache"), "hit", "a prefix purge leaves other keys")
        let all = try Curl.run(["-X", "POST", "-H", "Authorization: Bearer \(token)", url])
        XCTAssertEqual(all.status, 200, all.bodyText)
        XCTAssertEqual(try get(h, p2).header("x-edge-cache"), "miss")
        XCTAssertEqual(try o.count(p1), 2)
        XCTAssertEqual(try o.count(p2), 2)
        XCTAssertEqual(try Curl.run(["-X", "POST", "-H", "Authorization: Bearer \(token)", url + "?prefix=nope"]).status, 400)
        XCTAssertEqual(try Curl.run(["-H", "Authorization: Bearer \(token)", url]).status, 405)
    }

    /// Hits are written from the arena: no heap allocation per hit (Benchmarks/alloc counter, LD_PRELOAD).
    func testCacheHitsDoNotAllocate() throws {
        let dir = try Paths.makeTempDir("cache-alloc")
        let lib = try PerformanceTests.buildAllocCounter(in: dir)
        let (h, o) = try start(environment: ["LD_PRELOAD": lib])
        let path = "/c/alloc?cc=max-age%3D600&size=2000"
        let c = try RawClient(port: h.listenPort)
        defer { c.close() }
        func run(_ n: Int) throws {
            for i in 0..<n {
                let r = try HTTP.request(c, path, port: h.listenPort)
                if r.status != 200 || r.body.count != 2000 || (i > 0 && r.header("x-edge-cache") != "hit") {
                    throw HarnessError("request \(i): not a cache hit: \(r.status) \(r.header("x-edge-cache") ?? "-")")
                }
            }
        }
        func allocations() throws -> Double {
            let m = try HTTP.get(port: h.adminPort, "/metrics")
            guard let v = EdgeHarness.parseMetrics(String(decoding: m.body, as: UTF8.self))["edge_heap_allocations_total"] else {
                throw HarnessError("edge_heap_allocations_total missing from /metrics")
            }
            return v
        }
        try run(1_000)
        let a = try allocations()
        let b = try allocations()
        let n = 5_000
        try run(n)
        let d = try allocations()
        let perHit = (d - b - (b - a)) / Double(n)
        print(String(format: "cache hit allocations: %.3f per hit (%.0f over %d)", perHit, d - b - (b - a), n))
        XCTAssertGreaterThan(a, 0, "counter reads 0: is alloc_count.so preloaded?")
        XCTAssertLessThanOrEqual(perHit, 0.05, "a cache hit must not allocate")
        XCTAssertEqual(try o.count(path), 1)
    }

    private func metric(_ text: String, _ name: String, worker: Int) -> Int {
        let line = text.components(separatedBy: "\n").first { $0.hasPrefix("\(name){worker=\"\(worker)\"}") }
        return Int(line?.split(separator: " ").last ?? "") ?? -1
    }

    /// Each worker has its own cache; a purge posted once reaches both.
    func testPurgeReachesEveryWorker() throws {
        let (h, o) = try start(workers: "2")
        let path = "/c/w?cc=max-age%3D600"
        var filled = false
        for _ in 0..<60 where !filled {
            _ = try get(h, path)  // a fresh connection each time: SO_REUSEPORT spreads them
            let m = try h.metricsText()
            filled = metric(m, "edge_cache_entries", worker: 0) == 1 && metric(m, "edge_cache_entries", worker: 1) == 1
        }
        XCTAssertTrue(filled, "both workers should hold the entry after 60 connections")
        XCTAssertLessThanOrEqual(try o.count(path), 2, "one upstream fetch per worker at most")
        let purge = try Curl.run(["-X", "POST", "http://127.0.0.1:\(h.adminPort)/cache/purge"])
        XCTAssertEqual(purge.status, 200)
        var purged = false
        for _ in 0..<60 where !purged {
            _ = try get(h, path)
            let m = try h.metricsText()
            purged = metric(m, "edge_cache_purged_total", worker: 0) == 1 && metric(m, "edge_cache_purged_total", worker: 1) == 1
        }
        XCTAssertTrue(purged, "each worker applies the purge before its next lookup")
        XCTAssertGreaterThan(try o.count(path), 2, "after the purge each worker fetched again")
    }

    /// Caches belong to the config snapshot: after a reload they start empty, the old ones are freed.
    func testReloadStartsWithAnEmptyCache() throws {
        let (h, o) = try start()
        let path = "/c/reload?cc=max-age%3D600"
        XCTAssertEqual(try get(h, path).header("x-edge-cache"), "miss")
        XCTAssertEqual(try get(h, path).header("x-edge-cache"), "hit")
        let r = try Curl.run(["-X", "POST", "http://127.0.0.1:\(h.adminPort)/reload"])
        XCTAssertEqual(r.status, 200, r.bodyText)
        XCTAssertEqual(try get(h, path).header("x-edge-cache"), "miss")
        XCTAssertEqual(try get(h, path).header("x-edge-cache"), "hit")
        XCTAssertEqual(try o.count(path), 2)
        let m = try h.metricsText()
        XCTAssertEqual(metric(m, "edge_cache_entries", worker: 0), 1, "the old snapshot's cache was freed")
    }
}
