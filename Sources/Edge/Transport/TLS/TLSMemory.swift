import COpenSSL
import Glibc

/// OpenSSL's allocator, installed once at `edge run` start (before OpenSSL
/// allocates anything) with `CRYPTO_set_mem_functions`. OpenSSL 3.0 allocates
/// small blocks on every record it reads or writes (WPACKET sub-packets,
/// 40 bytes each), which would be heap allocations per HTTPS request. Blocks
/// up to 256 bytes come from a per-thread free list instead: each worker keeps
/// reusing its own blocks, with no lock and no sharing.
///
/// Safety: every block carries a 16-byte header naming its class, so any
/// thread may free any block (a small block freed on another thread joins that
/// thread's list, or goes back to malloc when the list is full); larger blocks
/// go straight to malloc/free. If OpenSSL already allocated before `install`,
/// OpenSSL refuses the switch and keeps plain malloc.
enum TLSMemory {
    private static let headerSize = 16
    private static let classSizes: [Int] = [64, 256]
    private static let maxCachedPerClass = 8192
    private static let magicSmall: UInt32 = 0x5EDA_11C5
    private static let magicLarge: UInt32 = 0x1A46_E0B1

    /// Per-thread free lists, one per class (blocks linked through their first word).
    private struct Cache {
        var heads: (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) = (nil, nil)
        var counts: (Int, Int) = (0, 0)
    }

    nonisolated(unsafe) private static var key = pthread_key_t()
    nonisolated(unsafe) private(set) static var installed = false

    /// Installs the allocator; false if OpenSSL had already allocated.
    @discardableResult
    static func install() -> Bool {
        if installed { return true }
        guard pthread_key_create(&key, { raw in
            guard let raw else { return }
            let c = raw.assumingMemoryBound(to: Cache.self)
            TLSMemory.drain(&c.pointee.heads.0); TLSMemory.drain(&c.pointee.heads.1)
            c.deallocate()
        }) == 0 else { return false }
        installed = CRYPTO_set_mem_functions(allocate, reallocate, release) == 1
        return installed
    }

    private static func drain(_ head: inout UnsafeMutableRawPointer?) {
        while let b = head { head = b.load(as: UnsafeMutableRawPointer?.self); free(b) }
    }

    @inline(__always) private static func cache() -> UnsafeMutablePointer<Cache>? {
        if let raw = pthread_getspecific(key) { return raw.assumingMemoryBound(to: Cache.self) }
        let c = UnsafeMutablePointer<Cache>.allocate(capacity: 1)
        c.initialize(to: Cache())
        guard pthread_setspecific(key, c) == 0 else { c.deallocate(); return nil }
        return c
    }

    @inline(__always) private static func sizeClass(_ size: Int) -> Int {
        size <= classSizes[0] ? 0 : (size <= classSizes[1] ? 1 : -1)
    }

    private static func take(_ size: Int) -> UnsafeMutableRawPointer? {
        let k = sizeClass(size)
        if k < 0 {
            guard let base = malloc(headerSize + size) else { return nil }
            base.storeBytes(of: magicLarge, as: UInt32.self)
            base.storeBytes(of: UInt32(truncatingIfNeeded: size), toByteOffset: 4, as: UInt32.self)
            base.storeBytes(of: size, toByteOffset: 8, as: Int.self)
            return base + headerSize
        }
        var block: UnsafeMutableRawPointer? = nil
        if let c = cache() {
            if k == 0, let b = c.pointee.heads.0 { c.pointee.heads.0 = b.load(as: UnsafeMutableRawPointer?.self); c.pointee.counts.0 -= 1; block = b }
            if k == 1, let b = c.pointee.heads.1 { c.pointee.heads.1 = b.load(as: UnsafeMutableRawPointer?.self); c.pointee.counts.1 -= 1; block = b }
        }
        if block == nil { block = malloc(headerSize + classSizes[k]) }
        guard let base = block else { return nil }
        base.storeBytes(of: magicSmall, as: UInt32.self)
        base.storeBytes(of: UInt32(k), toByteOffset: 4, as: UInt32.self)
        return base + headerSize
    }

    private static func give(_ p: UnsafeMutableRawPointer) {
        let base = p - headerSize
        let magic = base.load(as: UInt32.self)
        guard magic == magicSmall, let c = cache() else { free(base); return }
        let k = Int(base.load(fromByteOffset: 4, as: UInt32.self))
        if k == 0 && c.pointee.counts.0 < maxCachedPerClass {
            base.storeBytes(of: c.pointee.heads.0, as: UnsafeMutableRawPointer?.self)
            c.pointee.heads.0 = base; c.pointee.counts.0 += 1
        } else if k == 1 && c.pointee.counts.1 < maxCachedPerClass {
            base.storeBytes(of: c.pointee.heads.1, as: UnsafeMutableRawPointer?.self)
            c.pointee.heads.1 = base; c.pointee.counts.1 += 1
        } else {
            free(base)
        }
    }

    @inline(__always) private static func usable(_ p: UnsafeMutableRawPointer) -> Int {
        let base = p - headerSize
        if base.load(as: UInt32.self) == magicSmall {
            let k = Int(base.load(fromByteOffset: 4, as: UInt32.self))
            return k == 0 ? classSizes[0] : classSizes[1]
        }
        return base.load(fromByteOffset: 8, as: Int.self)
    }

    private static let allocate: @convention(c) (Int, UnsafePointer<CChar>?, Int32) -> UnsafeMutableRawPointer? = { size, _, _ in
        TLSMemory.take(size)
    }

    private static let reallocate: @convention(c) (UnsafeMutableRawPointer?, Int, UnsafePointer<CChar>?, Int32) -> UnsafeMutableRawPointer? = { p, size, _, _ in
        guard let p else { return TLSMemory.take(size) }
        if size == 0 { TLSMemory.give(p); return nil }
        let have = TLSMemory.usable(p)
        if size <= have && TLSMemory.sizeClass(size) >= 0 && TLSMemory.sizeClass(have) == TLSMemory.sizeClass(size) { return p }
        guard let q = TLSMemory.take(size) else { return nil }
        q.copyMemory(from: p, byteCount: min(have, size))
        TLSMemory.give(p)
        return q
    }

    private static let release: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, Int32) -> Void = { p, _, _ in
        guard let p else { return }
        TLSMemory.give(p)
    }
}
