import CIOUring
import Glibc
import Protocols

/// `protocol: tls` listeners: TLS is terminated here and the plaintext is
/// relayed to the listener's cluster (whose own `tls:` re-encrypts it to the
/// upstream). Bytes cannot be spliced through a record layer, so these relays
/// always run through the copy relay (CopyRelay.swift): the TLS transport
/// decrypts into the ring buffers that the relay queues on the upstream, and
/// encrypts what the upstream sends at flush time.
///
/// Order on a connection: [PROXY header, peeked] → handshake (under
/// `handshake_timeout`) → upstream connect → relay. Plaintext that arrives
/// with the client's last handshake flight waits in the input queue and goes
/// first when the relay starts.
extension Reactor {
    /// A connection accepted on a `protocol: tls` listener.
    func startTLSStream(_ c: Int32, _ l: CompiledListener) {
        beginStreamExchange(c)
        guard startTLS(c, l) else { closeSock(c); return }
        beginTLSHandshake(c, l)
    }

    /// Reads the handshake (https and tls listeners); a PROXY header, when the
    /// listener takes one, is peeked off the socket first so the ClientHello
    /// behind it reaches OpenSSL untouched.
    func beginTLSHandshake(_ c: Int32, _ l: CompiledListener) {
        if l.acceptsProxyProtocol {
            socks[Int(c)].proxyHeaderPending = true
            scheduleTimer(c, .proxyHeader, afterMs: Int64(l.proxyHeaderTimeoutMs))
            armPollIn(c)
            return
        }
        armRecv(c)
        scheduleTimer(c, .tlsHandshake, afterMs: Int64(l.tlsHandshakeTimeoutMs))
    }

    /// The PROXY header in front of a TLS connection is consumed: the
    /// handshake starts through the buffer ring.
    func tlsProxyHeaderDone(_ c: Int32) {
        if socks[Int(c)].pollArmed { cancelOp(.pollIn, c) }
        let l = listenerSettings(c)
        armRecv(c)
        scheduleTimer(c, .tlsHandshake, afterMs: Int64(l.tlsHandshakeTimeoutMs))
    }

    /// Handshake done on a `protocol: tls` client: connect its upstream; the
    /// relay starts in `streamUpstreamConnected` (TCPRelay.swift).
    func tlsStreamReady(_ c: Int32) {
        streamConnect(c, cluster: listenerSettings(c).streamCluster)
    }
}
