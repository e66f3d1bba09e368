import CIOUring
import Glibc

/// Opens SO_REUSEPORT listening sockets: one per listener per reactor, so the
/// kernel spreads new connections across cores without a shared accept queue.
enum ListenSocket {
    struct OpenError: Error, CustomStringConvertible {
        var description: String
    }

    static func open(_ address: SocketAddress, listener: String, datagram: Bool = false) throws -> Int32 {
        let type = datagram ? Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) : Int32(SOCK_STREAM.rawValue)
        let fd = socket(address.family, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw OpenError(description: "listener \(listener): socket(): \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        var zero: Int32 = 0
        let size = socklen_t(MemoryLayout<Int32>.size)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, size)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, size)
        if address.family == AF_INET6 {
            // "[::]:port" accepts IPv4 too (dual stack).
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, size)
        }
        if !datagram { setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, size) }
        var storage = address.storage
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, address.length) }
        }
        if rc != 0 {
            let e = errno
            close(fd)
            throw OpenError(description: "listener \(listener): cannot bind \(address.text): \(String(cString: strerror(e)))")
        }
        if datagram { return fd }
        if listen(fd, 4096) != 0 {
            let e = errno
            close(fd)
            throw OpenError(description: "listener \(listener): listen on \(address.text): \(String(cString: strerror(e)))")
        }
        return fd
    }
}
