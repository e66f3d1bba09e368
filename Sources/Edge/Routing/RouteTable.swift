import Glibc
import Protocols

/// Bytes owned by a `RouteTable` arena. Plain pointer + count: reading them on
/// the hot path costs no retain/release.
struct StaticBytes: @unchecked Sendable {
    var base: UnsafeRawPointer?
    var count: Int
    static let empty = StaticBytes(base: nil, count: 0)
    @inline(__always) var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}

enum HostMatch: UInt8 { case any, exact }
enum PathMatch: UInt8 { case any, prefix, exact }

/// One route, compiled: lower-cased host, path, method bitmask, action.
struct CompiledRoute {
    var hostMatch: HostMatch
    var host: StaticBytes
    var pathMatch: PathMatch
    var path: StaticBytes
    /// Bit `1 << HTTPMethod.rawValue`; 0 means any method.
    var methodMask: UInt16
    /// Cluster index, or -1 for a direct response.
    var cluster: Int32
    var stripPrefix: Bool
    var timeoutMs: Int32
    /// Direct response: status line + headers (no blank line) and body.
    var directHead: StaticBytes
    var directBody: StaticBytes
}

/// Per-listener HTTP settings, flattened for the reactor.
struct CompiledListener {
    var firstRoute: Int32
    var routeCount: Int32
    var limits: HTTP1Limits
    var maxBodyBytes: UInt64
    var headerTimeoutMs: Int32
    var idleTimeoutMs: Int32
    var bodyTimeoutMs: Int32
}

struct CompiledEndpoint {
    var address: sockaddr_storage
    var length: socklen_t
    var weight: Int32
    var cluster: Int32
}

struct CompiledCluster {
    var firstEndpoint: Int32
    var endpointCount: Int32
    /// Endpoint slots expanded by weight for round-robin picking.
    var firstSlot: Int32
    var slotCount: Int32
    var connectTimeoutMs: Int32
    var maxIdlePerEndpoint: Int32
    var idleTimeoutMs: Int32
}

/// The immutable routing snapshot: listeners, routes, clusters and endpoints as
/// flat arrays of plain structs in memory this object owns. Compiled once on the
/// control thread (`RouteTableCompiler`), then only read by reactors, without locks.
final class RouteTable: @unchecked Sendable {
    let listeners: UnsafeMutableBufferPointer<CompiledListener>
    let routes: UnsafeMutableBufferPointer<CompiledRoute>
    let clusters: UnsafeMutableBufferPointer<CompiledCluster>
    let endpoints: UnsafeMutableBufferPointer<CompiledEndpoint>
    /// Endpoint indices repeated by weight (smooth enough for issue-2 round robin).
    let endpointSlots: UnsafeMutableBufferPointer<Int32>
    private let arena: UnsafeMutableRawPointer
    /// Largest `maxHeaderBytes` of any listener: sizes the reactors' head buffers.
    let maxHeaderBytes: Int
    let maxHeaderCount: Int

    init(listeners: [CompiledListener], routes: [CompiledRoute], clusters: [CompiledCluster],
         endpoints: [CompiledEndpoint], endpointSlots: [Int32], arena: UnsafeMutableRawPointer) {
        func copy<T>(_ a: [T]) -> UnsafeMutableBufferPointer<T> {
            let p = UnsafeMutableBufferPointer<T>.allocate(capacity: max(a.count, 1))
            _ = p.initialize(from: a)
            return UnsafeMutableBufferPointer(rebasing: p[0..<a.count])
        }
        self.listeners = copy(listeners)
        self.routes = copy(routes)
        self.clusters = copy(clusters)
        self.endpoints = copy(endpoints)
        self.endpointSlots = copy(endpointSlots)
        self.arena = arena
        self.maxHeaderBytes = listeners.map { $0.limits.maxHeaderBytes }.max() ?? 32768
        self.maxHeaderCount = listeners.map { $0.limits.maxHeaderCount }.max() ?? 100
    }

    deinit {
        for p in [UnsafeMutableRawPointer(listeners.baseAddress), UnsafeMutableRawPointer(routes.baseAddress),
                  UnsafeMutableRawPointer(clusters.baseAddress), UnsafeMutableRawPointer(endpoints.baseAddress),
                  UnsafeMutableRawPointer(endpointSlots.baseAddress)] {
            p?.deallocate()
        }
        arena.deallocate()
    }

    /// First route of `listener` (file order) matching host, path and method, or -1.
    /// `host` is the request authority without port; compared case-insensitively.
    @inline(__always)
    func match(listener: Int, host: UnsafeRawBufferPointer, path: UnsafeRawBufferPointer, method: HTTPMethod) -> Int {
        let l = listeners[listener]
        var i = Int(l.firstRoute)
        let end = i + Int(l.routeCount)
        let methodBit = UInt16(1) << UInt16(method.rawValue)
        while i < end {
            let r = routes[i]
            if (r.methodMask == 0 || r.methodMask & methodBit != 0)
                && RouteTable.hostMatches(r, host) && RouteTable.pathMatches(r, path) {
                return i
            }
            i += 1
        }
        return -1
    }

    @inline(__always)
    static func hostMatches(_ r: CompiledRoute, _ host: UnsafeRawBufferPointer) -> Bool {
        if r.hostMatch == .any { return true }
        guard host.count == r.host.count, let want = r.host.base else { return false }
        for k in 0..<host.count {
            var c = host[k]
            if c >= 0x41 && c <= 0x5A { c |= 0x20 }
            if c != want.load(fromByteOffset: k, as: UInt8.self) { return false }
        }
        return true
    }

    @inline(__always)
    static func pathMatches(_ r: CompiledRoute, _ path: UnsafeRawBufferPointer) -> Bool {
        switch r.pathMatch {
        case .any: return true
        case .prefix:
            guard path.count >= r.path.count, let want = r.path.base, let have = path.baseAddress else { return false }
            return memcmp(have, want, r.path.count) == 0
        case .exact:
            guard path.count == r.path.count, let want = r.path.base, let have = path.baseAddress else { return r.path.count == 0 && path.count == 0 }
            return memcmp(have, want, r.path.count) == 0
        }
    }
}
