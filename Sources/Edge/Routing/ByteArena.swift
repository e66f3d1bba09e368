/// Byte storage for one `RouteTable`: strings copied into 64KiB chunks whose
/// addresses never move, so `StaticBytes` can point at them the moment they
/// are interned (no fix-up pass). The table takes the chunks and frees them
/// in its deinit.
final class ByteArena {
    static let chunkSize = 64 * 1024
    private(set) var chunks: [UnsafeMutableRawPointer] = []
    private var current: UnsafeMutableRawPointer? = nil
    private var used = 0
    private var capacity = 0

    func intern(_ bytes: [UInt8]) -> StaticBytes {
        guard !bytes.isEmpty else { return .empty }
        let p: UnsafeMutableRawPointer
        if bytes.count > Self.chunkSize / 4 {
            // Large strings (direct-response bodies) get their own block.
            p = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 8)
            chunks.append(p)
        } else {
            if current == nil || used + bytes.count > capacity {
                let c = UnsafeMutableRawPointer.allocate(byteCount: Self.chunkSize, alignment: 16)
                chunks.append(c)
                current = c; used = 0; capacity = Self.chunkSize
            }
            guard let c = current else { return .empty }
            p = c + used
            used += bytes.count
        }
        bytes.withUnsafeBytes { src in
            if let b = src.baseAddress { p.copyMemory(from: b, byteCount: bytes.count) }
        }
        return StaticBytes(base: UnsafeRawPointer(p), count: bytes.count)
    }

    func intern(_ s: String) -> StaticBytes { intern(Array(s.utf8)) }

    /// ASCII-lower-cased copy (host names, header names).
    func internLower(_ s: String) -> StaticBytes {
        intern(s.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 })
    }

    /// Hands the chunks to their new owner; this arena forgets them.
    func takeChunks() -> [UnsafeMutableRawPointer] {
        defer { chunks = []; current = nil; used = 0; capacity = 0 }
        return chunks
    }

    deinit {
        // Only reached with chunks still here if compilation was abandoned.
        for c in chunks { c.deallocate() }
    }
}
