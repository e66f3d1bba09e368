import CIOUring
import Glibc

/// The listening sockets the control thread owns: for each listener address,
/// one SO_REUSEPORT socket per worker. A reload keeps the sockets of addresses
/// that stay (no dropped connections), opens new ones, and lets reactors close
/// the ones no longer published.
extension ListenerConfig {
    /// UDP sockets: `protocol: udp` and `protocol: dtls`.
    var isDatagramProtocol: Bool { proto == .udp || proto == .dtls }
}

final class ListenerSet {
    private var byAddress: [String: [Int32]] = [:]
    /// QUIC sockets of http3 listeners, kept across reloads like the others (HTTP3/QUICSockets.swift).
    var quicByAddress: [String: [Int32]] = [:]
    let workers: Int

    init(workers: Int) { self.workers = workers }

    /// Every open listening socket by key, for a binary upgrade hand-over.
    var all: [(key: String, fds: [Int32])] { byAddress.map { ($0.key, $0.value) } }

    /// Sockets for `listeners` (per worker, in listener order). New addresses are
    /// bound now; a bind failure closes what this call opened and throws.
    func sockets(for listeners: [ListenerConfig]) throws -> [[Int32]] {
        var opened: [String: [Int32]] = [:]
        var next: [String: [Int32]] = [:]
        do {
            for l in listeners {
                // TCP and UDP may share a port number; keep their sockets apart.
                let key = (l.isDatagramProtocol ? "udp " : "") + l.address.text
                if let fds = byAddress[key] ?? opened[key] { next[key] = fds; continue }
                // Sockets handed over by an upgrading edge keep their accept queues; extra workers bind more into the same SO_REUSEPORT group.
                var fds = UpgradeHandoff.take(key) ?? []
                while fds.count > workers { close(fds.removeLast()) }
                do {
                    while fds.count < workers { fds.append(try ListenSocket.open(l.address, listener: l.name, datagram: l.isDatagramProtocol)) }
                } catch {
                    for fd in fds { close(fd) }
                    throw error
                }
                opened[key] = fds
                next[key] = fds
            }
        } catch {
            for fds in opened.values { for fd in fds { close(fd) } }
            throw error
        }
        byAddress = next  // dropped addresses: their reactors close them on adopting
        return (0..<workers).map { w in listeners.map { next[($0.isDatagramProtocol ? "udp " : "") + $0.address.text]?[w] ?? -1 } }
    }
}
