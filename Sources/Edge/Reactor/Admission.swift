import CIOUring
import Glibc
import Synchronization

/// Connection counters shared by every reactor, checked once per accepted
/// connection (never per request): the global limit, one counter per listener
/// name, and a per-client-IP count kept as a two-row count-min sketch. All are
/// plain int32 cells updated with relaxed atomics; nothing is allocated or locked
/// on accept. A sketch row cell may be shared by colliding addresses, so the
/// smaller of the two cells is an upper bound of the true count: a client is
/// refused only when both cells say it is at its cap.
struct Admission: @unchecked Sendable {
    static let maxListenerSlots = 256
    static let ipBucketBits = 16
    static let ipBuckets = 1 << ipBucketBits

    let global: UnsafeMutablePointer<Int32>
    let listeners: UnsafeMutablePointer<Int32>
    /// Two rows of `ipBuckets` cells.
    let ipCells: UnsafeMutablePointer<Int32>
    /// `runtime.max_connections` (0 = none): fixed at start.
    let maxConnections: Int32
    /// Hash key, so bucket choice cannot be precomputed by a client.
    let seed: UInt64

    init(maxConnections: Int) {
        global = .allocate(capacity: 1)
        global.initialize(to: 0)
        listeners = Admission.listenerCells
        ipCells = lazyArray(2 * Admission.ipBuckets)
        self.maxConnections = Int32(clamping: maxConnections)
        seed = UInt64.random(in: 0...UInt64.max)
    }

    /// Per-listener connection counters, one cell per slot. Process-wide like
    /// the slot registry that hands the slots out (slots and cells must agree),
    /// so the registry can see whether a slot still counts connections.
    nonisolated(unsafe) static let listenerCells: UnsafeMutablePointer<Int32> = {
        let p = UnsafeMutablePointer<Int32>.allocate(capacity: maxListenerSlots)
        p.initialize(repeating: 0, count: maxListenerSlots)
        return p
    }()

    /// Gives every listener of a freshly compiled `table` its counter slot
    /// (writes `table.listeners[i].counterSlot`; `names[i]` is listener i's name).
    ///
    /// A name keeps its slot across reloads (names, not indices, identify a
    /// listener), so a connection counted before a reload still counts after it.
    /// A slot is pinned while any table that gave it out is alive (a worker may
    /// still accept on that listener: its table is current there or held for the
    /// publication) and while its cell is not 0 (a connection still counts in
    /// it). A new name takes a never-used slot, else a slot that is neither
    /// pinned nor counting (its old name is forgotten). The loader caps a config
    /// at `ConfigLoader.maxListeners` (< `maxListenerSlots`) listeners, so every
    /// listener of one config always gets its own slot; only if more than
    /// `maxListenerSlots` names are pinned at once (many stale snapshots kept
    /// alive) does a new name share the least-loaded slot of a listener that is
    /// not in this config: its limit then also counts those connections
    /// (stricter, never unlimited). Never -1: no listener loses its accounting.
    static func assignCounterSlots(_ table: RouteTable, names: [String]) {
        // One name per listener, and the loader caps listeners below the slot
        // count; both hold by construction, checked without trapping anyway.
        let n = min(names.count, table.listeners.count, maxListenerSlots)
        slotRegistry.withLock { r in
            let slots = r.assign(Array(names.prefix(n)), cells: listenerCells)
            for (i, s) in slots.enumerated() {
                table.listeners[i].counterSlot = s
                r.pins[Int(s)].append(WeakTable(table))
            }
        }
    }

    /// Slot currently assigned to `name` (-1 if none); for tests and diagnostics.
    static func counterSlot(forListener name: String) -> Int32 {
        slotRegistry.withLock { $0.slotOf[name] ?? -1 }
    }

    private struct WeakTable {
        weak var table: RouteTable?
        init(_ t: RouteTable) { table = t }
    }

    private struct SlotRegistry {
        var slotOf: [String: Int32] = [:]
        /// Name each slot was last given to (nil: never used).
        var owner = [String?](repeating: nil, count: Admission.maxListenerSlots)
        /// Tables that gave the slot out; dead entries are dropped on each assign.
        var pins = [[WeakTable]](repeating: [], count: Admission.maxListenerSlots)

        mutating func assign(_ names: [String], cells: UnsafeMutablePointer<Int32>) -> [Int32] {
            for s in 0..<pins.count where !pins[s].isEmpty { pins[s].removeAll { $0.table == nil } }
            var out = [Int32](repeating: -1, count: names.count)
            var taken = [Bool](repeating: false, count: Admission.maxListenerSlots)
            // Known names keep their slot (one listener per slot within a config).
            for (i, n) in names.enumerated() {
                if let s = slotOf[n], !taken[Int(s)] { out[i] = s; taken[Int(s)] = true }
            }
            for (i, n) in names.enumerated() where out[i] < 0 {
                let s = pick(taken, cells)
                if let old = owner[s], slotOf[old] == Int32(s) { slotOf[old] = nil }
                owner[s] = n
                slotOf[n] = Int32(s)
                taken[s] = true
                out[i] = Int32(s)
            }
            return out
        }

        private func pick(_ taken: [Bool], _ cells: UnsafeMutablePointer<Int32>) -> Int {
            let count = Admission.maxListenerSlots
            if let s = (0..<count).first(where: { !taken[$0] && owner[$0] == nil }) { return s }
            // Reclaim: no live table gives it out and no connection counts in it.
            // Checked in this order, a connection can no longer be counted in the
            // slot once both hold (only live tables' listeners admit connections).
            let load = { (s: Int) in edge_atomic_load_i32(cells + s) }
            if let s = (0..<count).first(where: { !taken[$0] && pins[$0].isEmpty && load($0) == 0 }) { return s }
            // Every slot is pinned: share the least-loaded one, unpinned first.
            let free = (0..<count).filter { !taken[$0] }
            let unpinned = free.filter { pins[$0].isEmpty }
            // `free` is never empty: a config has fewer listeners than there are slots.
            return (unpinned.isEmpty ? free : unpinned).min { load($0) < load($1) } ?? 0
        }
    }

    private static let slotRegistry = Mutex(SlotRegistry())
}

/// What one accepted connection counted, so closing it uncounts exactly that.
struct AdmissionTicket {
    var global = false
    var listenerSlot: Int16 = -1
    var perIP = false
    var bucketA: UInt16 = 0
    var bucketB: UInt16 = 0
}

/// Why a new connection was turned away (metrics label and response).
enum Refusal: Int {
    case connectionLimit = 0, clientLimit, overloaded, tableFull
    static let count = 4
    var label: String {
        switch self {
        case .connectionLimit: return "connection_limit"
        case .clientLimit: return "client_connection_limit"
        case .overloaded: return "overloaded"
        case .tableFull: return "connection_table_full"
        }
    }
}

extension Reactor {
    /// Counts a new connection against every limit that applies, or says why not.
    /// On refusal nothing stays counted.
    func admit(_ l: CompiledListener, peer: UnsafePointer<sockaddr_storage>, peerLength: socklen_t,
               ticket: inout AdmissionTicket) -> Refusal? {
        if loopLagLimitUs > 0 && loopLagUs > loopLagLimitUs { return .overloaded }
        let a = admission
        if a.maxConnections > 0 {
            if edge_atomic_add_i32(a.global, 1) >= a.maxConnections { _ = edge_atomic_add_i32(a.global, -1); return .connectionLimit }
            ticket.global = true
        }
        if l.maxConnections > 0 && l.counterSlot >= 0 {
            let cell = a.listeners + Int(l.counterSlot)
            if edge_atomic_add_i32(cell, 1) >= l.maxConnections {
                _ = edge_atomic_add_i32(cell, -1)
                releaseAdmission(&ticket)
                return .connectionLimit
            }
            ticket.listenerSlot = Int16(l.counterSlot)
        }
        // PROXY-protocol listeners count the address the header conveys, not the balancer's.
        if l.maxConnectionsPerIP > 0 && peerLength > 0 && !l.acceptsProxyProtocol {
            if !admitClientAddress(peer.pointee.addressKey, l, &ticket) {
                releaseAdmission(&ticket)
                return .clientLimit
            }
        }
        return nil
    }

    /// Counts one connection from client address `key` against the listener's
    /// per-IP cap; false (nothing counted) when the client is at its cap.
    func admitClientAddress(_ key: (UInt64, UInt64), _ l: CompiledListener, _ ticket: inout AdmissionTicket) -> Bool {
        let a = admission
        let h = hashClient(key, listener: l.counterSlot)
        let ca = a.ipCells + Int(h & UInt64(Admission.ipBuckets - 1))
        let cb = a.ipCells + Admission.ipBuckets + Int((h >> 32) & UInt64(Admission.ipBuckets - 1))
        let oldA = edge_atomic_add_i32(ca, 1)
        let oldB = edge_atomic_add_i32(cb, 1)
        if min(oldA, oldB) >= l.maxConnectionsPerIP {
            _ = edge_atomic_add_i32(ca, -1)
            _ = edge_atomic_add_i32(cb, -1)
            return false
        }
        ticket.perIP = true
        ticket.bucketA = UInt16(truncatingIfNeeded: h)
        ticket.bucketB = UInt16(truncatingIfNeeded: h >> 32)
        return true
    }

    func releaseAdmission(_ t: inout AdmissionTicket) {
        let a = admission
        if t.global { _ = edge_atomic_add_i32(a.global, -1) }
        if t.listenerSlot >= 0 { _ = edge_atomic_add_i32(a.listeners + Int(t.listenerSlot), -1) }
        if t.perIP {
            _ = edge_atomic_add_i32(a.ipCells + Int(t.bucketA), -1)
            _ = edge_atomic_add_i32(a.ipCells + Admission.ipBuckets + Int(t.bucketB), -1)
        }
        t = AdmissionTicket()
    }

    /// Keyed hash of a client address (two 64-bit words) and the listener.
    private func hashClient(_ key: (UInt64, UInt64), listener: Int32) -> UInt64 {
        var h = admission.seed ^ (UInt64(UInt32(bitPattern: listener)) &* 0x9E37_79B9_7F4A_7C15)
        h = (h ^ key.0) &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 31
        h = (h ^ key.1) &* 0xBF58_476D_1CE4_E5B9
        h = (h ^ (h >> 27)) &* 0x94D0_49BB_1331_11EB
        return h ^ (h >> 31)
    }

    /// Turns a connection away at accept: HTTP listeners get a one-shot 503 (429
    /// for the per-client cap) written without waiting, TCP listeners a close.
    func refuse(_ fd: Int32, _ why: Refusal, http: Bool) {
        stats.bump(stats.refused[why.rawValue])
        if http {
            let text: StaticString
            switch why {
            case .clientLimit:
                text = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\nContent-Length: 58\r\nx-edge-error: client_connection_limit\r\nConnection: close\r\n\r\nToo Many Requests: too many connections from this address\n"
            case .overloaded:
                text = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 32\r\nx-edge-error: overloaded\r\nConnection: close\r\n\r\nService Unavailable: overloaded\n"
            case .connectionLimit, .tableFull:
                text = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 42\r\nx-edge-error: connection_limit\r\nConnection: close\r\n\r\nService Unavailable: too many connections\n"
            }
            Transport.writeRefusal(fd, .plain, text)
        }
        close(fd)
    }
}
