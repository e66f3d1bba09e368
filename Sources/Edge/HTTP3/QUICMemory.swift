import CNGHTTP3
import CNGTCP2
import Glibc

/// ngtcp2's and nghttp3's allocations, accounted per worker: their
/// connections live on one reactor thread, so a plain counter is enough. Over
/// `limit` an allocation fails, the library reports NOMEM and that connection
/// ends (memory stays bounded). Both libraries keep the `mem` pointer, so the
/// tables live as long as the worker.
struct QUICMemAccount {
    var live: Int = 0
    var limit: Int = 512 << 20
}

enum QUICMemory {
    static func ngtcp2(_ account: UnsafeMutablePointer<QUICMemAccount>) -> ngtcp2_mem {
        ngtcp2_mem(user_data: UnsafeMutableRawPointer(account),
                   malloc: { size, ud in QUICMemory.allocate(size, ud) },
                   free: { p, ud in QUICMemory.release(p, ud) },
                   calloc: { n, size, ud in QUICMemory.allocateZeroed(n, size, ud) },
                   realloc: { p, size, ud in QUICMemory.reallocate(p, size, ud) })
    }

    static func nghttp3(_ account: UnsafeMutablePointer<QUICMemAccount>) -> nghttp3_mem {
        nghttp3_mem(user_data: UnsafeMutableRawPointer(account),
                    malloc: { size, ud in QUICMemory.allocate(size, ud) },
                    free: { p, ud in QUICMemory.release(p, ud) },
                    calloc: { n, size, ud in QUICMemory.allocateZeroed(n, size, ud) },
                    realloc: { p, size, ud in QUICMemory.reallocate(p, size, ud) })
    }

    @inline(__always) static func allocate(_ size: Int, _ ud: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
        guard let a = ud?.assumingMemoryBound(to: QUICMemAccount.self), a.pointee.live + size <= a.pointee.limit else { return nil }
        let p = malloc(size)
        a.pointee.live += edge_quic_usable_size(p)
        return p
    }

    @inline(__always) static func allocateZeroed(_ n: Int, _ size: Int, _ ud: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
        let (total, overflow) = n.multipliedReportingOverflow(by: size)
        guard !overflow, let a = ud?.assumingMemoryBound(to: QUICMemAccount.self), a.pointee.live + total <= a.pointee.limit else { return nil }
        let p = calloc(n, size)
        a.pointee.live += edge_quic_usable_size(p)
        return p
    }

    @inline(__always) static func release(_ p: UnsafeMutableRawPointer?, _ ud: UnsafeMutableRawPointer?) {
        if let a = ud?.assumingMemoryBound(to: QUICMemAccount.self) { a.pointee.live -= edge_quic_usable_size(p) }
        free(p)
    }

    @inline(__always) static func reallocate(_ p: UnsafeMutableRawPointer?, _ size: Int, _ ud: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
        guard let a = ud?.assumingMemoryBound(to: QUICMemAccount.self), a.pointee.live + size <= a.pointee.limit else { return nil }
        let old = edge_quic_usable_size(p)
        guard let q = realloc(p, size) else { return nil }
        a.pointee.live += edge_quic_usable_size(q) - old
        return q
    }
}
