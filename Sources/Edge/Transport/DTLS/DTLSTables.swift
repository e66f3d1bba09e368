import COpenSSL
import Glibc

/// One worker's DTLS state: per socket slot (a DTLS session is a UDP session
/// slot, see Stream/UDPProxy.swift) its `SSL`, its datagram peer, the
/// certificates it retains and its handshake deadline; per accept slot the
/// listen `SSL` that runs the stateless cookie exchange. Made on the worker's
/// first DTLS datagram; the `SSL`s are freed when their slot closes.
final class DTLSTables {
    let capacity: Int
    let ssl: UnsafeMutablePointer<OpaquePointer?>
    let peers: UnsafeMutablePointer<DatagramPeer>
    /// Retained `TLSServerContext` per session (its callbacks read it during the handshake).
    let servers: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let established: UnsafeMutablePointer<Bool>
    let deadlineMs: UnsafeMutablePointer<Int64>
    /// Listen state per accept slot: the SSL, the context it was made from (retained), its peer.
    let listenSSL: UnsafeMutablePointer<OpaquePointer?>
    let listenServer: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let listenPeers: UnsafeMutablePointer<DatagramPeer>
    /// Out-parameter of DTLSv1_listen.
    let clientAddress: OpaquePointer?
    /// Decrypted datagram scratch.
    let plaintext: UnsafeMutableRawPointer
    static let plaintextSize = 65536
    var handshaking: Int32 = 0

    init(capacity: Int) {
        self.capacity = capacity
        ssl = .allocate(capacity: capacity); ssl.initialize(repeating: nil, count: capacity)
        peers = .allocate(capacity: capacity); peers.initialize(repeating: DatagramPeer(), count: capacity)
        servers = .allocate(capacity: capacity); servers.initialize(repeating: nil, count: capacity)
        established = .allocate(capacity: capacity); established.initialize(repeating: false, count: capacity)
        deadlineMs = .allocate(capacity: capacity); deadlineMs.initialize(repeating: 0, count: capacity)
        let slots = Reactor.maxAcceptSlots
        listenSSL = .allocate(capacity: slots); listenSSL.initialize(repeating: nil, count: slots)
        listenServer = .allocate(capacity: slots); listenServer.initialize(repeating: nil, count: slots)
        listenPeers = .allocate(capacity: slots); listenPeers.initialize(repeating: DatagramPeer(), count: slots)
        clientAddress = BIO_ADDR_new()
        plaintext = .allocate(byteCount: DTLSTables.plaintextSize, alignment: 16)
    }

    /// Only a DTLS handshake record may start a session: content type 22 and a
    /// DTLS version's 0xFE major, checked before OpenSSL sees the datagram.
    @inline(__always) static func mayStartHandshake(_ p: UnsafeRawPointer, _ n: Int) -> Bool {
        n >= 13 && p.load(fromByteOffset: 0, as: UInt8.self) == 22 && p.load(fromByteOffset: 1, as: UInt8.self) == 0xFE
    }

    /// Frees every SSL and the tables (the fuzz target makes one per input; a worker keeps its own for life).
    func free() {
        for a in 0..<Reactor.maxAcceptSlots { dropListener(a) }
        for s in 0..<capacity { release(s, notify: false) }
        ssl.deallocate(); peers.deallocate(); servers.deallocate(); established.deallocate(); deadlineMs.deallocate()
        listenSSL.deallocate(); listenServer.deallocate(); listenPeers.deallocate()
        BIO_ADDR_free(clientAddress)
        plaintext.deallocate()
    }

    /// The listen SSL of accept slot `a` for the listener context `server`
    /// (made, or remade after a reload changed the certificates); nil if OpenSSL cannot.
    func listener(_ a: Int, _ server: UnsafeMutableRawPointer) -> OpaquePointer? {
        guard a >= 0 && a < Reactor.maxAcceptSlots else { return nil }
        if let s = listenSSL[a], listenServer[a] == server { return s }
        dropListener(a)
        let context = Unmanaged<TLSServerContext>.fromOpaque(server).takeUnretainedValue()
        guard let first = context.contexts.first, let s = SSL_new(first) else { return nil }
        guard let bio = DatagramBIO.make(listenPeers + a) else { SSL_free(s); return nil }
        SSL_set_bio(s, bio, bio)
        SSL_set_accept_state(s)
        listenSSL[a] = s
        listenServer[a] = Unmanaged.passRetained(context).toOpaque()
        return s
    }

    func dropListener(_ a: Int) {
        if let s = listenSSL[a] { SSL_free(s) }
        listenSSL[a] = nil
        TLSServerContext.release(listenServer[a])
        listenServer[a] = nil
    }

    /// Moves accept slot `a`'s listen SSL (which just verified a cookie) to session `slot`.
    func promote(_ a: Int, to slot: Int) {
        // The ClientHello stays as input: DTLSv1_listen only peeked at it.
        peers[slot] = listenPeers[a]
        peers[slot].peek = false
        listenPeers[a].input = nil
        ssl[slot] = listenSSL[a]
        servers[slot] = listenServer[a]
        DatagramBIO.attach(SSL_get_rbio(listenSSL[a]), peers + slot)
        listenSSL[a] = nil
        listenServer[a] = nil
        established[slot] = false
    }

    /// Frees session `slot`'s SSL (after close_notify when `notify`).
    func release(_ slot: Int, notify: Bool) {
        guard let s = ssl[slot] else { return }
        if notify && established[slot] { _ = SSL_shutdown(s) }
        ERR_clear_error()
        SSL_free(s)
        ssl[slot] = nil
        TLSServerContext.release(servers[slot])
        servers[slot] = nil
        established[slot] = false
    }
}
