import CBrotli
import CZlib
import CZstd
import Glibc

/// Content codings Edge can produce (`compression.algorithms`).
enum CompressionAlgorithm: UInt8, Sendable {
    case none = 0, gzip, br, zstd

    /// The `Content-Encoding` token.
    var token: StaticString {
        switch self {
        case .none: return "identity"
        case .gzip: return "gzip"
        case .br: return "br"
        case .zstd: return "zstd"
        }
    }
}

/// What one encoder call did.
struct EncodeStep {
    var consumed = 0
    var produced = 0
    /// The stream is complete (only after `finish`).
    var finished = false
    var failed = false
}

/// One reusable encoder: a slot holds the library contexts it has needed so
/// far and keeps them across responses (deflateReset, ZSTD_CCtx_reset). A
/// brotli encoder cannot be reset: it is destroyed at release and created
/// again at the next acquire, from the worker's block cache (CompressionMemory).
struct EncoderSlot {
    var gzip: UnsafeMutablePointer<z_stream>? = nil
    var gzipLevel: Int32 = -1
    var zstd: OpaquePointer? = nil
    var brotli: OpaquePointer? = nil
    var algorithm: CompressionAlgorithm = .none
}

/// The per-worker encoder pool. Every zlib, brotli and zstd call of Edge
/// lives in this file; all their memory comes from `memory`. `capacity`
/// bounds the encoders (and so the memory) of one worker: past it, responses
/// go out uncompressed.
struct CompressionWorker: ~Copyable {
    static let capacity = 64
    let memory: UnsafeMutablePointer<CompressionMemory>
    private let slots: UnsafeMutablePointer<EncoderSlot>
    private let freeIds: UnsafeMutablePointer<Int32>
    private var freeCount = 0
    private var fresh = 0
    /// Encoders in use now, and acquisitions refused because all were in use.
    private(set) var inUse = 0
    private(set) var exhausted = 0

    init() {
        memory = .allocate(capacity: 1)
        memory.initialize(to: CompressionMemory())
        slots = .allocate(capacity: Self.capacity)
        slots.initialize(repeating: EncoderSlot(), count: Self.capacity)
        freeIds = .allocate(capacity: Self.capacity)
    }

    deinit {
        for i in 0..<fresh {
            if let z = slots[i].gzip { deflateEnd(z); z.deallocate() }
            if let c = slots[i].zstd { ZSTD_freeCCtx(c) }
            if let b = slots[i].brotli { BrotliEncoderDestroyInstance(b) }
        }
        slots.deallocate()
        freeIds.deallocate()
        memory.pointee.trim()
        memory.deallocate()
    }

    /// An encoder ready for a new stream at `level`, or -1 (pool exhausted,
    /// or the library could not set up: the response goes out uncompressed).
    mutating func acquire(_ algorithm: CompressionAlgorithm, level: Int32) -> Int32 {
        let id: Int32
        if freeCount > 0 { freeCount -= 1; id = freeIds[freeCount] }
        else if fresh < Self.capacity { id = Int32(fresh); fresh += 1 }
        else { exhausted &+= 1; return -1 }
        guard prepare(Int(id), algorithm, level) else {
            freeIds[freeCount] = id; freeCount += 1
            return -1
        }
        slots[Int(id)].algorithm = algorithm
        inUse += 1
        return id
    }

    mutating func release(_ id: Int32) {
        guard id >= 0 && Int(id) < fresh, slots[Int(id)].algorithm != .none else { return }
        if let b = slots[Int(id)].brotli { BrotliEncoderDestroyInstance(b); slots[Int(id)].brotli = nil }
        slots[Int(id)].algorithm = .none
        freeIds[freeCount] = id; freeCount += 1
        inUse -= 1
    }

    private func prepare(_ i: Int, _ algorithm: CompressionAlgorithm, _ level: Int32) -> Bool {
        let opaque = UnsafeMutableRawPointer(memory)
        switch algorithm {
        case .none:
            return false
        case .gzip:
            if let z = slots[i].gzip {
                guard deflateReset(z) == Z_OK else { return false }
                if slots[i].gzipLevel != level {
                    guard deflateParams(z, level, Z_DEFAULT_STRATEGY) == Z_OK else { return false }
                    slots[i].gzipLevel = level
                }
                return true
            }
            let z = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            z.initialize(to: z_stream())
            z.pointee.opaque = opaque
            z.pointee.zalloc = { ud, items, size in
                ud?.assumingMemoryBound(to: CompressionMemory.self).pointee.allocate(Int(items) &* Int(size))
            }
            z.pointee.zfree = { ud, p in ud?.assumingMemoryBound(to: CompressionMemory.self).pointee.free(p) }
            guard edge_deflate_init_gzip(z, level) == Z_OK else { z.deallocate(); return false }
            slots[i].gzip = z
            slots[i].gzipLevel = level
            return true
        case .zstd:
            if slots[i].zstd == nil {
                let mem = ZSTD_customMem(
                    customAlloc: { ud, size in ud?.assumingMemoryBound(to: CompressionMemory.self).pointee.allocate(size) },
                    customFree: { ud, p in ud?.assumingMemoryBound(to: CompressionMemory.self).pointee.free(p) },
                    opaque: opaque)
                guard let c = ZSTD_createCCtx_advanced(mem) else { return false }
                slots[i].zstd = c
            }
            guard let c = slots[i].zstd else { return false }
            if ZSTD_isError(ZSTD_CCtx_reset(c, ZSTD_reset_session_only)) != 0 { return false }
            return ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level)) == 0
        case .br:
            guard let b = BrotliEncoderCreateInstance(
                { ud, size in ud?.assumingMemoryBound(to: CompressionMemory.self).pointee.allocate(size) },
                { ud, p in ud?.assumingMemoryBound(to: CompressionMemory.self).pointee.free(p) },
                opaque) else { return false }
            guard BrotliEncoderSetParameter(b, BROTLI_PARAM_QUALITY, UInt32(level)) != 0 else {
                BrotliEncoderDestroyInstance(b); return false
            }
            slots[i].brotli = b
            return true
        }
    }

    /// Compresses from `input` into `output`; with `finish`, also ends the
    /// stream once all input is taken (call again while `finished` is false).
    func encode(_ id: Int32, _ input: UnsafeRawPointer?, _ inCount: Int,
                _ output: UnsafeMutableRawPointer, _ outCount: Int, finish: Bool) -> EncodeStep {
        var step = EncodeStep()
        guard id >= 0 && Int(id) < fresh else { step.failed = true; return step }
        let i = Int(id)
        switch slots[i].algorithm {
        case .none:
            step.failed = true
        case .gzip:
            guard let z = slots[i].gzip else { step.failed = true; return step }
            z.pointee.next_in = UnsafeMutablePointer(mutating: input?.assumingMemoryBound(to: UInt8.self))
            z.pointee.avail_in = UInt32(truncatingIfNeeded: inCount)
            z.pointee.next_out = output.assumingMemoryBound(to: UInt8.self)
            z.pointee.avail_out = UInt32(truncatingIfNeeded: outCount)
            let rc = deflate(z, finish ? Z_FINISH : Z_NO_FLUSH)
            step.consumed = inCount - Int(z.pointee.avail_in)
            step.produced = outCount - Int(z.pointee.avail_out)
            if rc == Z_STREAM_END { step.finished = true }
            else if rc != Z_OK && rc != Z_BUF_ERROR { step.failed = true }
        case .zstd:
            guard let c = slots[i].zstd else { step.failed = true; return step }
            var inb = ZSTD_inBuffer(src: input, size: inCount, pos: 0)
            var outb = ZSTD_outBuffer(dst: output, size: outCount, pos: 0)
            let rc = ZSTD_compressStream2(c, &outb, &inb, finish ? ZSTD_e_end : ZSTD_e_continue)
            if ZSTD_isError(rc) != 0 { step.failed = true; return step }
            step.consumed = inb.pos
            step.produced = outb.pos
            if finish && rc == 0 && inb.pos == inCount { step.finished = true }
        case .br:
            guard let b = slots[i].brotli else { step.failed = true; return step }
            var availIn = inCount
            var nextIn = input?.assumingMemoryBound(to: UInt8.self)
            var availOut = outCount
            var nextOut: UnsafeMutablePointer<UInt8>? = output.assumingMemoryBound(to: UInt8.self)
            let ok = withUnsafeMutablePointer(to: &nextIn) { pin in
                BrotliEncoderCompressStream(b, finish ? BROTLI_OPERATION_FINISH : BROTLI_OPERATION_PROCESS,
                                            &availIn, pin, &availOut, &nextOut, nil)
            }
            if ok == 0 { step.failed = true; return step }
            step.consumed = inCount - availIn
            step.produced = outCount - availOut
            if finish && BrotliEncoderIsFinished(b) != 0 { step.finished = true }
        }
        return step
    }
}
