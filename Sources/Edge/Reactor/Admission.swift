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
        listeners = .allocate(capacity: Admission.maxListenerSlots)
        listeners.initialize(repeating: 0, count: Admission.maxListenerSlots)
        ipCells = lazyArray(2 * Admission.ipBuckets)
        self.maxConnections = Int32(clamping: maxConnections)
        seed = UInt64.random(in: 0...UInt64.max)
    }

    /// Counter slot of a listener name, stable across reloads (names, not
    /// indices, identify a listener). -1 once every slot is taken: that
    /// listener then has no max_connections accounting.
    static func counterSlot(forListener name: String) -> Int32 {
        slotRegistry.withLock { names in
            if let s = names[name] { return s }
            guard names.count < maxListenerSlots else { return -1 }
            let s = Int32(names.count)
            names[name] = s
            return s
        }
    }

    private static let slotRegistry = Mutex<[String: Int32]>([:])
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
