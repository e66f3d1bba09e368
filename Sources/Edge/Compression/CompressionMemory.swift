import Glibc

/// Per-worker memory for zlib, brotli and zstd (their allocator callbacks all
/// land here). Blocks are rounded up to a power of two and, when freed, kept
/// on a free list of their size class instead of going back to malloc: a
/// brotli encoder re-created for each response (brotli has no reset) or a
/// zstd context re-sizing its workspace then reuses the same blocks, so a
/// worker in steady state does no heap allocation per compressed response.
/// One reactor thread uses it: plain fields, no locks.
struct CompressionMemory {
    static let minShift = 6
    static let classes = 22  // 64 B ... 128 MiB
    /// Each block starts with a 16-byte header holding its class (keeps malloc's alignment).
    static let header = 16

    var freeLists: (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?,
                    UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?,
                    UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?,
                    UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?,
                    UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?,
                    UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) =
        (nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil)
    /// Bytes handed out (live) and kept on the free lists (cached).
    var live = 0
    var cached = 0
    /// Past this many cached bytes freed blocks go back to malloc.
    var cacheLimit = 256 << 20
    /// Blocks obtained from malloc (the allocation counter of this memory).
    var mallocs = 0

    @inline(__always) static func sizeClass(_ size: Int) -> Int {
        let need = size + header
        if need <= 1 << minShift { return 0 }
        let bits = Int.bitWidth - (need - 1).leadingZeroBitCount
        return bits - minShift
    }

    mutating func allocate(_ size: Int) -> UnsafeMutableRawPointer? {
        guard size >= 0 else { return nil }
        let k = Self.sizeClass(size)
        guard k < Self.classes else { return nil }  // > 128 MiB: the library reports out of memory
        let bytes = 1 << (k + Self.minShift)
        let block: UnsafeMutableRawPointer
        if let b = head(k) {
            setHead(k, b.load(fromByteOffset: Self.header, as: UnsafeMutableRawPointer?.self))
            cached -= bytes
            block = b
        } else {
            guard let b = malloc(bytes) else { return nil }
            mallocs &+= 1
            block = b
        }
        block.storeBytes(of: k, as: Int.self)
        live += bytes
        return block + Self.header
    }

    mutating func free(_ p: UnsafeMutableRawPointer?) {
        guard let p else { return }
        let block = p - Self.header
        let k = block.load(as: Int.self)
        guard k >= 0 && k < Self.classes else { return }
        let bytes = 1 << (k + Self.minShift)
        live -= bytes
        if cached + bytes > cacheLimit { Glibc.free(block); return }
        block.storeBytes(of: head(k), toByteOffset: Self.header, as: UnsafeMutableRawPointer?.self)
        setHead(k, block)
        cached += bytes
    }

    /// Returns every cached block to malloc (worker shutdown).
    mutating func trim() {
        for k in 0..<Self.classes {
            while let b = head(k) {
                setHead(k, b.load(fromByteOffset: Self.header, as: UnsafeMutableRawPointer?.self))
                Glibc.free(b)
            }
        }
        cached = 0
    }

    @inline(__always) private func head(_ k: Int) -> UnsafeMutableRawPointer? {
        withUnsafeBytes(of: freeLists) { $0.load(fromByteOffset: k * MemoryLayout<UnsafeMutableRawPointer?>.stride, as: UnsafeMutableRawPointer?.self) }
    }

    @inline(__always) private mutating func setHead(_ k: Int, _ p: UnsafeMutableRawPointer?) {
        withUnsafeMutableBytes(of: &freeLists) { $0.storeBytes(of: p, toByteOffset: k * MemoryLayout<UnsafeMutableRawPointer?>.stride, as: UnsafeMutableRawPointer?.self) }
    }
}
