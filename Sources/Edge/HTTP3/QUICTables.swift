import CNGHTTP3
import CNGTCP2
import Glibc
import Protocols

/// What an ngtcp2 or nghttp3 callback needs to find its connection: the
/// reactor (not retained: it outlives every connection it creates) and the
/// connection's slot.
struct QUICContext {
    var reactor: Unmanaged<Reactor>
    var slot: Int32
}

/// One QUIC connection beside its slot (a `.quic` socket slot that holds its
/// timer): the ngtcp2 connection, its GnuTLS session, the nghttp3 connection
/// once 1-RTT keys exist, and the addresses of its path. Plain data in a
/// per-worker slab indexed by slot.
struct QUICConn {
    var conn: OpaquePointer? = nil
    var tls: OpaquePointer? = nil
    var h3: OpaquePointer? = nil
    /// GnuTLS → ngtcp2_conn (ngtcp2_crypto_gnutls reads it through the session pointer).
    var ref = ngtcp2_crypto_conn_ref()
    /// The worker's UDP socket the connection arrived on.
    var fd: Int32 = -1
    var local = sockaddr_storage()
    var localLength: socklen_t = 0
    var remote = sockaddr_storage()
    var remoteLength: socklen_t = 0
    /// Connection ids registered in the CID table (index 0: the client's original DCID).
    var cidCount: Int32 = 0
    var handshaking = true
    var limits = CompiledHTTP3()
    /// Inside a library call: deleting now would free memory in use.
    var busy = false
    var doomed = false
    var ccerr = ngtcp2_connection_close_error()
    var openStreams: Int32 = 0
    /// Open request streams (H3Stream.next links them).
    var firstStream: Int32 = -1
}

/// One HTTP/3 request stream: its header section (copied into a head buffer
/// like an HTTP/2 header block) and its response progress.
struct H3Stream {
    var slot: Int32 = -1
    var id: Int64 = -1
    var view: Int32 = -1
    var next: Int32 = -1
    var buf: Int32 = -1
    var bytes: Int32 = 0
    var fields: Int32 = 0
    var listBytes: Int = 0
    var method = ByteRange.empty, scheme = ByteRange.empty, authority = ByteRange.empty, path = ByteRange.empty
    var host = ByteRange.empty
    var hostSeen = false
    var hasProtocol = false
    var contentLength: Int64 = -1
    var malformed: StaticString? = nil
    var tooLarge = false
    var headersDone = false
    var requestEnded = false
    var responded = false
    var received: UInt64 = 0
    /// Response body by reference (snapshot bytes or `bodyBuf`), kept until the stream closes.
    var body: UnsafeRawPointer? = nil
    var bodyLength = 0
    var bodyOffset = 0
    var bodyBuf: Int32 = -1
    var headMethod = false
}

/// Packets gathered in `QUICTables.tx` for one GSO send: `count` of
/// `segment` bytes each (the last may be shorter), `used` bytes in all.
struct QUICBatch {
    var used = 0
    var segment = 0
    var count = 0
}

/// Per-worker QUIC tables, created when the worker adopts its first http3 socket.
final class QUICTables {
    /// Server-chosen connection ids: byte 0 = worker index, then random bytes.
    static let cidLength = 18
    static let cidsPerConn = 16
    static let maxDatagram = 1452
    static let streamCapacity = 16_384

    let conns: UnsafeMutablePointer<QUICConn>
    let contexts: UnsafeMutablePointer<QUICContext>
    let cidBytes: UnsafeMutablePointer<UInt8>
    let cidLengths: UnsafeMutablePointer<UInt8>
    /// Open addressing over (slot << 4 | k); -1 empty, -2 deleted.
    let cidTable: UnsafeMutablePointer<Int32>
    let cidTableSize: Int
    let streams: UnsafeMutablePointer<H3Stream>
    let freeStreams: UnsafeMutablePointer<Int32>
    var freeStreamCount: Int32 = 0
    var freshStream: Int32 = 0
    let account: UnsafeMutablePointer<QUICMemAccount>
    let ngtcp2Mem: UnsafeMutablePointer<ngtcp2_mem>
    let nghttp3Mem: UnsafeMutablePointer<nghttp3_mem>
    var callbacks = ngtcp2_callbacks()
    var h3Callbacks = nghttp3_callbacks()
    /// Receive and send scratch (one datagram each; GRO batches land in `rx`).
    let rx: UnsafeMutableRawPointer
    static let rxBytes = 65_536
    let tx: UnsafeMutableRawPointer
    static let txBytes = 65_536
    /// A GSO train stays under the 64 KiB UDP datagram limit.
    static let gsoBytes = 60_000
    /// cmsg for UDP_SEGMENT; `gso` turns off when the kernel refuses it.
    let control: UnsafeMutableRawPointer
    var gso = true
    /// Response-head scratch: nghttp3 copies names and values on submit.
    static let maxFields = 128
    let nv: UnsafeMutablePointer<nghttp3_nv>
    let scratch: UnsafeMutablePointer<UInt8>
    static let scratchBytes = 32_768
    /// Sockets by listener index of the current snapshot, their local address and poll state.
    static let maxSockets = 64
    let fds: UnsafeMutablePointer<Int32>
    let armed: UnsafeMutablePointer<Bool>
    let localAddrs: UnsafeMutablePointer<sockaddr_storage>
    let localLengths: UnsafeMutablePointer<socklen_t>
    var connections: Int32 = 0
    var handshakes: Int32 = 0
    var workers: Int = 1

    init(capacity: Int) {
        conns = lazyArray(capacity)
        contexts = lazyArray(capacity)
        cidBytes = lazyArray(capacity * QUICTables.cidsPerConn * 20)
        cidLengths = lazyArray(capacity * QUICTables.cidsPerConn)
        var size = 1024
        while size < capacity * 8 { size <<= 1 }
        cidTableSize = size
        cidTable = .allocate(capacity: size)
        cidTable.initialize(repeating: -1, count: size)
        streams = lazyArray(QUICTables.streamCapacity)
        freeStreams = lazyArray(QUICTables.streamCapacity)
        account = .allocate(capacity: 1)
        account.initialize(to: QUICMemAccount())
        ngtcp2Mem = .allocate(capacity: 1)
        ngtcp2Mem.initialize(to: QUICMemory.ngtcp2(account))
        nghttp3Mem = .allocate(capacity: 1)
        nghttp3Mem.initialize(to: QUICMemory.nghttp3(account))
        rx = .allocate(byteCount: QUICTables.rxBytes, alignment: 16)
        tx = .allocate(byteCount: QUICTables.txBytes, alignment: 16)
        control = .allocate(byteCount: 64, alignment: 8)
        nv = .allocate(capacity: QUICTables.maxFields)
        scratch = .allocate(capacity: QUICTables.scratchBytes)
        fds = .allocate(capacity: QUICTables.maxSockets)
        fds.initialize(repeating: -1, count: QUICTables.maxSockets)
        armed = .allocate(capacity: QUICTables.maxSockets)
        armed.initialize(repeating: false, count: QUICTables.maxSockets)
        localAddrs = .allocate(capacity: QUICTables.maxSockets)
        localAddrs.initialize(repeating: sockaddr_storage(), count: QUICTables.maxSockets)
        localLengths = .allocate(capacity: QUICTables.maxSockets)
        localLengths.initialize(repeating: 0, count: QUICTables.maxSockets)
        callbacks = QUICCallbacks.transport()
        h3Callbacks = QUICCallbacks.http3()
    }

    // MARK: Streams

    func allocStream() -> Int32 {
        if freeStreamCount > 0 { freeStreamCount -= 1; return freeStreams[Int(freeStreamCount)] }
        if freshStream < Int32(QUICTables.streamCapacity) { freshStream += 1; return freshStream - 1 }
        return -1
    }

    func freeStream(_ s: Int32) {
        streams[Int(s)] = H3Stream()
        freeStreams[Int(freeStreamCount)] = s
        freeStreamCount += 1
    }

    // MARK: Connection ids

    @inline(__always) private func hash(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for k in 0..<n { h = (h ^ UInt64(p[k])) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: h ^ (h >> 31)) & (cidTableSize - 1)
    }

    @inline(__always) private func entryMatches(_ e: Int32, _ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        let at = Int(e)
        guard Int(cidLengths[at]) == n else { return false }
        return memcmp(cidBytes + at * 20, p, n) == 0
    }

    /// The slot owning connection id `p[0..<n]`, or -1.
    func lookup(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int32 {
        guard n > 0 && n <= 20 else { return -1 }
        var k = hash(p, n)
        for _ in 0..<cidTableSize {
            let e = cidTable[k]
            if e == -1 { return -1 }
            if e >= 0 && entryMatches(e, p, n) { return e / Int32(QUICTables.cidsPerConn) }
            k = (k + 1) & (cidTableSize - 1)
        }
        return -1
    }

    /// Registers an id for `slot`; false when its list or the table is full.
    func register(_ slot: Int32, _ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        guard n > 0 && n <= 20 else { return false }
        let c = Int(slot)
        var k = -1
        for j in 0..<QUICTables.cidsPerConn where cidLengths[c * QUICTables.cidsPerConn + j] == 0 { k = j; break }
        guard k >= 0, conns[c].cidCount < Int32(cidTableSize / 2) else { return false }
        let e = c * QUICTables.cidsPerConn + k
        (cidBytes + e * 20).update(from: p, count: n)
        cidLengths[e] = UInt8(n)
        var h = hash(p, n)
        while cidTable[h] >= 0 { h = (h + 1) & (cidTableSize - 1) }
        cidTable[h] = Int32(e)
        conns[c].cidCount += 1
        return true
    }

    func unregister(_ slot: Int32, _ p: UnsafePointer<UInt8>, _ n: Int) {
        guard n > 0 && n <= 20 else { return }
        var k = hash(p, n)
        for _ in 0..<cidTableSize {
            let e = cidTable[k]
            if e == -1 { return }
            if e >= 0 && e / Int32(QUICTables.cidsPerConn) == slot && entryMatches(e, p, n) {
                cidTable[k] = -2
                cidLengths[Int(e)] = 0
                conns[Int(slot)].cidCount -= 1
                return
            }
            k = (k + 1) & (cidTableSize - 1)
        }
    }

    func unregisterAll(_ slot: Int32) {
        let base = Int(slot) * QUICTables.cidsPerConn
        for j in 0..<QUICTables.cidsPerConn where cidLengths[base + j] > 0 {
            let n = Int(cidLengths[base + j])
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { tmp in
                guard let t = tmp.baseAddress else { return }
                t.update(from: cidBytes + (base + j) * 20, count: n)
                unregister(slot, t, n)
            }
        }
    }
}
