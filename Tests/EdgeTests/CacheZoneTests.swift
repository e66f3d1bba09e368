import XCTest
@testable import Edge

/// The response cache's storage and header parsing without sockets: buddy
/// blocks merge back, LRU eviction under the bound, variant replacement,
/// purge by prefix, pinned entries outliving eviction, and the
/// Cache-Control / date / entity-tag parsers on hostile input.
final class CacheZoneTests: XCTestCase {
    private func bytes(_ s: String, _ body: (UnsafeRawBufferPointer) -> Void) {
        var a = Array(s.utf8)
        a.withUnsafeMutableBytes { body(UnsafeRawBufferPointer($0)) }
    }

    /// Stores `key` with `size` bytes; the entry index or -1.
    private func store(_ z: inout CacheZone, _ key: String, size: Int, stats: CacheStats, vary: UInt64 = 0) -> Int32 {
        let k = Array(key.utf8)
        let e = z.reserve(bytes: k.count + size, stats: stats)
        guard e >= 0 else { return -1 }
        k.withUnsafeBytes { z.base(e).copyMemory(from: $0.baseAddress!, byteCount: k.count) }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        k.withUnsafeBytes { CacheHeaders.fnv(&h, $0) }
        z.entries[Int(e)].hash = h
        z.entries[Int(e)].varyHash = vary
        z.entries[Int(e)].keyLength = Int32(k.count)
        z.entries[Int(e)].bodyLength = Int32(size)
        z.link(e)
        return e
    }

    private func find(_ z: CacheZone, _ key: String) -> Int32 {
        let k = Array(key.utf8)
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        k.withUnsafeBytes { CacheHeaders.fnv(&h, $0) }
        return k.withUnsafeBytes { z.first(hash: h, key: $0) }
    }

    func testLRUEvictionAndBuddyMerging() throws {
        let stats = CacheStats()
        var z = CacheZone()
        defer { z.tearDown() }
        XCTAssertTrue(z.setUp(maxSize: 256 << 10, maxObject: 32 << 10))
        for i in 0..<8 { XCTAssertGreaterThanOrEqual(store(&z, "/o\(i) h", size: 20_000, stats: stats), 0) }
        XCTAssertEqual(z.count, 8)
        XCTAssertEqual(stats.evictions.load(ordering: .relaxed), 0)
        z.touch(find(z, "/o0 h"))
        XCTAssertGreaterThanOrEqual(store(&z, "/o8 h", size: 20_000, stats: stats), 0)
        XCTAssertEqual(stats.evictions.load(ordering: .relaxed), 1)
        XCTAssertLessThan(find(z, "/o1 h"), 0, "the least recently used entry goes")
        XCTAssertGreaterThanOrEqual(find(z, "/o0 h"), 0, "a touched entry stays")
        // Purging everything merges the blocks back: a top-size object fits again.
        XCTAssertEqual(z.purge(prefix: [], exact: false), 8)
        XCTAssertEqual(z.bytes, 0)
        XCTAssertGreaterThanOrEqual(store(&z, "/big h", size: 40_000, stats: stats), 0)
        XCTAssertLessThan(z.reserve(bytes: 10 << 20, stats: stats), 0, "larger than a top block: refused, nothing evicted")
        XCTAssertEqual(z.count, 1)
    }

    func testVariantsReplacePinsAndPrefixPurge() throws {
        let stats = CacheStats()
        var z = CacheZone()
        defer { z.tearDown() }
        XCTAssertTrue(z.setUp(maxSize: 1 << 20, maxObject: 64 << 10))
        let a = store(&z, "/v h", size: 100, stats: stats, vary: 1)
        let b = store(&z, "/v h", size: 100, stats: stats, vary: 2)
        XCTAssertEqual(z.count, 2, "two variants of one key")
        let a2 = store(&z, "/v h", size: 100, stats: stats, vary: 1)
        XCTAssertEqual(z.count, 2, "the same variant replaces")
        XCTAssertFalse(z.entries[Int(a)].live)
        XCTAssertTrue(z.entries[Int(a2)].live && z.entries[Int(b)].live)
        // A pinned entry is unlinked by a purge but its block stays until unpinned.
        z.entries[Int(b)].pins = 1
        _ = store(&z, "/other h", size: 100, stats: stats)
        XCTAssertEqual(z.purge(prefix: Array("/v".utf8), exact: false), 2)
        XCTAssertTrue(z.entries[Int(b)].live && !z.entries[Int(b)].linked)
        z.entries[Int(b)].pins = 0
        z.release(b)
        XCTAssertFalse(z.entries[Int(b)].live)
        XCTAssertEqual(z.purge(prefix: Array("/othe".utf8), exact: true), 0, "exact purge needs the whole target")
        XCTAssertEqual(z.purge(prefix: Array("/other".utf8), exact: true), 1)
        XCTAssertEqual(z.bytes, 0)
    }

    func testCacheControlParsing() {
        func d(_ s: String) -> CacheDirectives { var x = CacheDirectives(); bytes(s) { x.parse($0) }; return x }
        XCTAssertEqual(d("max-age=60").maxAge, 60)
        XCTAssertEqual(d("public, s-maxage=\"30\", max-age=5").sMaxAge, 30)
        XCTAssertTrue(d("No-Store").noStore)
        XCTAssertTrue(d("private=\"set-cookie\", max-age=1").isPrivate)
        XCTAssertTrue(d(" , must-revalidate,,no-cache").mustRevalidate)
        XCTAssertEqual(d("max-age=99999999999999999999999").maxAge > 0, true, "huge values saturate, never overflow")
        XCTAssertEqual(d("max-age=").maxAge, 0, "a malformed max-age means stale")
        for junk in ["=", "==,,", "max-age=\"", "\"\"\"", String(repeating: ",", count: 1000), "max-age=-5"] { _ = d(junk) }
    }

    func testHTTPDatesAndEntityTags() {
        bytes("Sun, 06 Nov 1994 08:49:37 GMT") { XCTAssertEqual(CacheHeaders.httpDate($0), 784111777) }
        bytes("Mon, 01 Jan 2024 00:00:00 GMT") { XCTAssertEqual(CacheHeaders.httpDate($0), 1704067200) }
        for bad in ["", "Sun, 06 Nov 1994 08:49:37", "Sun, 06 Xyz 1994 08:49:37 GMT", "Sun, 6 Nov 1994 08:49:37 GMT ", "Sun, 06 Nov 1994 25:49:37 GMT"] {
            bytes(bad) { XCTAssertNil(CacheHeaders.httpDate($0), bad) }
        }
        func hit(_ list: String, _ tag: String) -> Bool {
            var r = false
            bytes(list) { l in self.bytes(tag) { t in r = CacheHeaders.noneMatchHits(l, t) } }
            return r
        }
        XCTAssertTrue(hit("\"a\", \"b\"", "\"b\""))
        XCTAssertTrue(hit("W/\"b\"", "\"b\""), "weak comparison")
        XCTAssertTrue(hit("*", "\"x\""))
        XCTAssertFalse(hit("\"a\"", "\"b\""))
        XCTAssertFalse(hit("\"a", "\"a\""), "an unterminated tag matches nothing")
        XCTAssertFalse(hit("", ""))
        bytes("12") { XCTAssertEqual(CacheHeaders.seconds($0), 12) }
        bytes("1x") { XCTAssertEqual(CacheHeaders.seconds($0), -1) }
    }
}
