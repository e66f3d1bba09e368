import CIOUring
import Glibc

/// A snapshot as one reactor holds it: flat pointers into the RouteTable (read
/// per request without ARC) plus this reactor's own per-snapshot state: upstream
/// keep-alive pools, balancer state and in-flight counts per endpoint. Requests
/// and upstream connections record the view they started on, so a reload never
/// changes the route, cluster or endpoint under a running request.
struct SnapshotView {
    var generation = 0
    var table: Unmanaged<RouteTable>? = nil
    /// Exchanges and upstream sockets still using this view.
    var users: Int32 = 0
    var listeners = UnsafeMutableBufferPointer<CompiledListener>(start: nil, count: 0)
    var routes = UnsafeMutableBufferPointer<CompiledRoute>(start: nil, count: 0)
    var clusters = UnsafeMutableBufferPointer<CompiledCluster>(start: nil, count: 0)
    var endpoints = UnsafeMutableBufferPointer<CompiledEndpoint>(start: nil, count: 0)
    var headerEdits = UnsafeMutableBufferPointer<CompiledHeaderEdit>(start: nil, count: 0)
    var splits = UnsafeMutableBufferPointer<CompiledSplit>(start: nil, count: 0)
    var poolSlots: UnsafeMutablePointer<Int32>? = nil
    var poolCounts: UnsafeMutablePointer<Int32>? = nil
    var poolCapacity: Int32 = 0
    /// In-flight requests per endpoint (least_connections, random_two).
    var active: UnsafeMutablePointer<Int32>? = nil
    var balancer: ReactorBalancer? = nil
    /// Circuit-breaker numbers per cluster, and the table's endpoint health cells.
    var clusterCounters: UnsafeMutablePointer<ClusterCounters>? = nil
    var endpointHealth = UnsafeMutableBufferPointer<HealthCell>(start: nil, count: 0)
    /// Response-cache zones of this worker, one per route (Cache/), nil when no route caches.
    var caches: UnsafeMutablePointer<CacheZone>? = nil
}

extension Reactor {
    /// Initial number of view slots; the table doubles when every slot holds a
    /// live snapshot, so adoption never waits for old requests to finish.
    static let initialViews = 8
    static let maxAcceptSlots = 64

    /// Adopts the latest publication if it changed. Called once per loop turn;
    /// the common case is one atomic load and a compare.
    @inline(__always) func pollSnapshot() {
        let p = publisher.load()
        if p == lastPublication || p == nil { return }
        guard let p else { return }
        adopt(Unmanaged<Publication>.fromOpaque(p).takeUnretainedValue(), pointer: p)
    }

    private func adopt(_ pub: Publication, pointer: UnsafeMutableRawPointer) {
        var k = -1
        for v in 0..<viewCapacity where views[v].table == nil { k = v; break }
        if k < 0 { k = growViews() }
        let t = pub.table
        owned[k] = t
        var v = SnapshotView()
        v.generation = pub.generation
        v.table = Unmanaged.passUnretained(t)
        v.listeners = t.listeners
        v.routes = t.routes
        v.clusters = t.clusters
        v.endpoints = t.endpoints
        v.headerEdits = t.headerEdits
        v.splits = t.splits
        var maxIdle: Int32 = 1
        for c in t.clusters { maxIdle = max(maxIdle, min(c.maxIdlePerEndpoint, 1024)) }
        let endpointCount = max(t.endpoints.count, 1)
        v.poolCapacity = maxIdle
        v.poolSlots = .allocate(capacity: endpointCount * Int(maxIdle))
        v.poolCounts = .allocate(capacity: endpointCount)
        v.poolCounts?.initialize(repeating: 0, count: endpointCount)
        v.active = .allocate(capacity: endpointCount)
        v.active?.initialize(repeating: 0, count: endpointCount)
        v.balancer = ReactorBalancer(table: t, seed: requestIdSeed &+ UInt64(pub.generation))
        v.clusterCounters = .allocate(capacity: max(t.clusters.count, 1))
        v.clusterCounters?.initialize(repeating: ClusterCounters(), count: max(t.clusters.count, 1))
        v.endpointHealth = t.endpointHealth
        v.caches = Reactor.makeCacheZones(t.routes)
        views[k] = v
        if t.maxHeaderCount + 1 > headerTable.count {
            headerTable.deallocate()
            headerTable = .allocate(capacity: t.maxHeaderCount + 1)
        }
        let old = current
        current = Int32(k)
        lastPublication = pointer
        applyListeners(pub.listenerFds.indices.contains(index) ? pub.listenerFds[index] : [])
        applyQUICSockets(pub.quicFds.indices.contains(index) ? pub.quicFds[index] : [], workers: pub.quicFds.count)
        stats.adoptedGeneration.store(pub.generation, ordering: .releasing)
        if old >= 0 {
            closePooled(old)
            retireIfUnused(old)
        }
        stats.liveSnapshots.store(liveViewCount(), ordering: .relaxed)
    }

    /// Starts accepting on new listener sockets, re-maps kept ones to the new
    /// listener indices, and stops (closes) the ones no longer published.
    private func applyListeners(_ fds: [Int32]) {
        for a in 0..<acceptCount where acceptFd[a] >= 0 && !fds.contains(acceptFd[a]) {
            stopAccept(a)
        }
        for (li, fd) in fds.enumerated() where fd >= 0 {
            if let a = (0..<acceptCount).first(where: { acceptFd[$0] == fd }) {
                acceptListener[a] = Int32(li)
                continue
            }
            var a = (0..<acceptCount).first(where: { acceptFd[$0] < 0 }) ?? -1
            if a < 0 {
                guard acceptCount < Reactor.maxAcceptSlots else { continue }
                a = acceptCount
                acceptCount += 1
            }
            acceptFd[a] = fd
            acceptListener[a] = Int32(li)
            acceptDatagram[a] = li < views[Int(current)].listeners.count && views[Int(current)].listeners[li].isDatagram
            if !draining { if acceptDatagram[a] { armUDPListener(a) } else { armAccept(a) } }
        }
    }

    /// Stops accepting on slot `a` and closes its socket; connections accepted
    /// there finish their current request and then close.
    func stopAccept(_ a: Int) {
        if acceptArmed[a] {
            ring.cancel(Tag(acceptDatagram[a] ? .udpRead : .accept, acceptSlot: a), .untracked)
        }
        acceptArmed[a] = false
        if acceptFd[a] >= 0 { close(acceptFd[a]) }
        acceptFd[a] = -1
        var slot: Int32 = 0
        while slot < freshSlot {
            if socks[Int(slot)].kind == .client && Int(socks[Int(slot)].acceptSlot) == a { socks[Int(slot)].listenerGone = true }
            if socks[Int(slot)].kind == .udpSession && Int(socks[Int(slot)].acceptSlot) == a { closeSock(slot) }
            slot += 1
        }
    }

    @inline(__always) func retainView(_ v: ViewID) { views[Int(v.raw)].users += 1 }

    @inline(__always) func releaseView(_ v: ViewID) {
        if v.raw < 0 { return }
        views[Int(v.raw)].users -= 1
        if views[Int(v.raw)].users <= 0 && v.raw != current { retireIfUnused(v.raw) }
    }

    /// Idle pooled upstream connections of an old snapshot are not reused.
    private func closePooled(_ v: Int32) {
        var slot: Int32 = 0
        while slot < freshSlot {
            let s = socks[Int(slot)]
            if s.kind == .upstream && s.pooled && s.view == v && !s.closing { closeSock(slot) }
            slot += 1
        }
    }

    private func retireIfUnused(_ v: Int32) {
        let i = Int(v)
        guard v != current, views[i].table != nil, views[i].users <= 0 else { return }
        views[i].poolSlots?.deallocate()
        views[i].poolCounts?.deallocate()
        views[i].active?.deallocate()
        views[i].balancer?.deallocate()
        views[i].clusterCounters?.deallocate()
        freeCacheZones(views[i].caches, count: views[i].routes.count)
        views[i] = SnapshotView()
        owned[i] = nil  // last reference on this thread; the table frees itself when no one else holds it
        stats.liveSnapshots.store(liveViewCount(), ordering: .relaxed)
    }

    private func liveViewCount() -> Int {
        (0..<viewCapacity).filter { views[$0].table != nil }.count
    }

    /// Doubles the view table (control-plane work, once per reload at most);
    /// returns the first new free slot. Views are addressed by index, so moving
    /// them invalidates nothing.
    private func growViews() -> Int {
        let old = viewCapacity
        let bigger = UnsafeMutablePointer<SnapshotView>.allocate(capacity: old * 2)
        bigger.moveInitialize(from: views, count: old)
        (bigger + old).initialize(repeating: SnapshotView(), count: old)
        views.deallocate()
        views = bigger
        owned.append(contentsOf: Array(repeating: nil, count: old))
        viewCapacity = old * 2
        return old
    }

    /// Listener settings for a client connection: its request's snapshot while
    /// an exchange runs, the current snapshot between requests.
    @inline(__always) func listenerSettings(_ c: Int32) -> CompiledListener {
        let xi = Int(socks[Int(c)].exchange)
        if xi >= 0, exchanges[xi].view >= 0 {
            let ex = exchanges[xi]
            return views[Int(ex.view)].listeners[Int(ex.listener)]
        }
        let a = Int(socks[Int(c)].acceptSlot)
        let li = Int(acceptListener[a])
        let v = views[Int(current)]
        return li < v.listeners.count ? v.listeners[li] : v.listeners[0]
    }
}
