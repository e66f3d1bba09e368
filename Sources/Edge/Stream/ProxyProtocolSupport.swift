import CIOUring
import Glibc
import Protocols

/// Outcome of reading a PROXY protocol header from a client.
/// `overClientLimit`: a valid header whose client address is at its
/// max_connections_per_ip cap (HTTP answers 429, TCP closes).
enum ProxyHeaderStatus { case incomplete, invalid, complete, overClientLimit }

/// PROXY protocol on both sides: listeners with `proxy_protocol: accept` take
/// the client address from the header (routing, X-Forwarded-For, logs and any
/// header Edge sends on); clusters with `proxy_protocol: v1|v2` get one on each
/// new upstream connection.
extension Reactor {
    /// Parses the header at the front of the client's input; on success consumes
    /// it and records the address it carries.
    func readProxyHeader(_ c: Int32) -> ProxyHeaderStatus {
        let i = Int(c)
        guard socks[i].inHead >= 0 else { return .incomplete }
        guard linearizeInput(c) else { return .invalid }
        switch ProxyProtocolParser.parse(buffers.bytes(socks[i].inHead)) {
        case .incomplete:
            return .incomplete
        case .invalid:
            stats.bump(stats.clientErrors)
            return .invalid
        case .complete(let length, _, let address):
            recordProxyAddress(c, address)
            consumeInput(c, length)
            socks[i].proxyHeaderPending = false
            cancelTimer(c)
            return admitProxiedClient(c, address) ? .complete : .overClientLimit
        }
    }

    /// TCP listeners: peeks at the socket (nothing is read through the buffer
    /// ring), and consumes exactly the header once it is complete.
    func peekProxyHeader(_ c: Int32) -> ProxyHeaderStatus {
        let i = Int(c)
        let fd = socks[i].fd
        let n = recv(fd, proxyScratch, 2048, Int32(MSG_PEEK | MSG_DONTWAIT))
        if n == 0 { return .invalid }
        if n < 0 { return errno == EAGAIN ? .incomplete : .invalid }
        switch ProxyProtocolParser.parse(UnsafeRawBufferPointer(start: proxyScratch, count: n)) {
        case .incomplete:
            // A v2 header longer than the peek window (large TLVs) is refused.
            return n >= 2048 ? .invalid : .incomplete
        case .invalid:
            stats.bump(stats.clientErrors)
            return .invalid
        case .complete(let length, _, let address):
            guard recv(fd, proxyScratch, length, Int32(MSG_DONTWAIT)) == length else { return .invalid }
            recordProxyAddress(c, address)
            socks[i].proxyHeaderPending = false
            cancelTimer(c)
            return admitProxiedClient(c, address) ? .complete : .overClientLimit
        }
    }

    /// max_connections_per_ip on a PROXY listener applies to the conveyed client
    /// address (a LOCAL/UNKNOWN header conveys none: not counted).
    private func admitProxiedClient(_ c: Int32, _ address: ProxyAddress) -> Bool {
        let l = listenerSettings(c)
        guard l.maxConnectionsPerIP > 0, address.family == 4 || address.family == 6 else { return true }
        if admitClientAddress(address.source, l, &socks[Int(c)].admission) { return true }
        stats.bump(stats.refused[Refusal.clientLimit.rawValue])
        return false
    }

    private func recordProxyAddress(_ c: Int32, _ address: ProxyAddress) {
        let i = Int(c)
        guard address.family == 4 || address.family == 6 else { return }
        proxyAddresses[i] = address
        socks[i].hasProxyAddress = true
        let n = ProxyProtocolWriter.sourceText(address, into: UnsafeMutableRawBufferPointer(start: peerText + i * 48, count: 47))
        if n > 0 { socks[i].peerAddrLength = UInt8(n) }
    }

    /// Sends the cluster's PROXY header on a just-connected upstream. True if
    /// none is configured or it was written in full.
    func sendProxyHeader(client c: Int32, upstream u: Int32) -> Bool {
        let ui = Int(u)
        let v = socks[ui].view
        guard v >= 0, socks[ui].endpoint >= 0 else { return true }
        let view = views[Int(v)]
        let cluster = view.clusters[Int(view.endpoints[Int(socks[ui].endpoint)].cluster)]
        guard cluster.sendProxyProtocol != 0 else { return true }
        let version: ProxyProtocolVersion = cluster.sendProxyProtocol == 2 ? .v2 : .v1
        let address = socks[Int(c)].hasProxyAddress ? proxyAddresses[Int(c)] : socketAddresses(socks[Int(c)].fd)
        let out = UnsafeMutableRawBufferPointer(start: proxyScratch, count: 256)
        let n = ProxyProtocolWriter.write(version, address, into: out)
        guard n > 0 else { return false }
        return transportWriteNow(u, proxyScratch, n)
    }

    /// Client and local address of an accepted socket as a PROXY address.
    private func socketAddresses(_ fd: Int32) -> ProxyAddress {
        var peer = sockaddr_storage(), local = sockaddr_storage()
        var pl = socklen_t(MemoryLayout<sockaddr_storage>.size), ll = pl
        let ok1 = withUnsafeMutablePointer(to: &peer) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &pl) } }
        let ok2 = withUnsafeMutablePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &ll) } }
        guard ok1 == 0, ok2 == 0 else { return .unspecified }
        return withUnsafeBytes(of: &peer) { src in
            withUnsafeBytes(of: &local) { dst in
                guard let (sa, sp) = sockaddr_storage.ipAddress(in: src), let (da, dp) = sockaddr_storage.ipAddress(in: dst),
                      let a = ProxyProtocolWriter.address(source: sa, sourcePort: sp, destination: da, destinationPort: dp)
                else { return ProxyAddress.unspecified }
                return a
            }
        }
    }
}