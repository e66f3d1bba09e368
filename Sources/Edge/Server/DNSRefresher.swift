import CIOUring
import Glibc
import Logging

/// Re-resolves host-name endpoints on the control thread (getaddrinfo blocks,
/// so never on a reactor) and republishes the snapshot when an address changed.
final class DNSRefresher {
    private var due: [String: Int64] = [:]

    func refreshIfDue(reloader: Reloader, logger: Logger) {
        let now = Reactor.monotonicMs()
        let config = reloader.config
        var changed = false
        var next = config
        for (ci, cluster) in config.clusters.enumerated() where cluster.endpoints.contains(where: { $0.hostName != nil }) {
            if let t = due[cluster.name], t > now { continue }
            // Names that do not resolve yet are retried sooner.
            let unresolved = cluster.endpoints.contains { $0.resolveFailure != nil }
            due[cluster.name] = now + Int64(unresolved ? min(max(cluster.dnsRefreshMs, 1_000), 5_000) : max(cluster.dnsRefreshMs, 1_000))
            for (ei, endpoint) in cluster.endpoints.enumerated() {
                guard let name = endpoint.hostName else { continue }
                guard let address = DNSRefresher.resolve(name, port: endpoint.address.port) else {
                    if endpoint.resolveFailure == nil {
                        logger.warning("DNS refresh failed; keeping the last address", metadata: ["cluster": "\(cluster.name)", "host": "\(name)"])
                    }
                    continue
                }
                if endpoint.resolveFailure == nil && DNSRefresher.sameAddress(address, endpoint.address) { continue }
                logger.info(endpoint.resolveFailure == nil ? "endpoint address changed" : "endpoint host name resolves now",
                            metadata: ["cluster": "\(cluster.name)", "host": "\(name)"])
                next.clusters[ci].endpoints[ei].address = SocketAddress(storage: address.storage, length: address.length, text: endpoint.address.text)
                next.clusters[ci].endpoints[ei].resolveFailure = nil
                changed = true
            }
        }
        if changed { reloader.republish(next, trigger: "dns") }
    }

    static func sameAddress(_ a: (storage: sockaddr_storage, length: socklen_t), _ b: SocketAddress) -> Bool {
        guard a.length == b.length else { return false }
        var x = a.storage, y = b.storage
        return memcmp(&x, &y, Int(a.length)) == 0
    }

    static func resolve(_ host: String, port: UInt16) -> (storage: sockaddr_storage, length: socklen_t)? {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>? = nil
        guard getaddrinfo(host, String(port), &hints, &res) == 0, let first = res, let addr = first.pointee.ai_addr else { return nil }
        defer { freeaddrinfo(res) }
        var storage = sockaddr_storage()
        let length = first.pointee.ai_addrlen
        withUnsafeMutableBytes(of: &storage) { dst in
            dst.copyMemory(from: UnsafeRawBufferPointer(start: addr, count: min(Int(length), dst.count)))
        }
        return (storage, length)
    }
}
