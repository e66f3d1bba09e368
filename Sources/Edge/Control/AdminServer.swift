import CIOUring
import Glibc
import Logging
import Synchronization

/// Why the admin listener could not start, e.g.
/// `admin: cannot bind 127.0.0.1:9901: Address already in use`.
struct AdminServerError: Error, CustomStringConvertible {
    var description: String
}

/// The admin HTTP endpoint (`/health`, `/health/live`, `/health/ready`,
/// `/metrics`). It lives on its own control thread with blocking-style POSIX
/// sockets and poll(): deliberately not io_uring and never on the data path,
/// so a stuck reactor cannot hide its own health. One request per connection.
final class AdminServer: @unchecked Sendable {
    /// Longest request head accepted; bigger → 431.
    static let maxRequestBytes = 8192
    /// Time a client gets to send its request head (and to read the reply).
    static let requestTimeoutMs = 2000
    /// Connections served at once; more wait in the kernel's backlog.
    static let maxClients = 64

    /// The bound address (with the real port when 0 was asked for).
    let boundAddress: SocketAddress
    private let listenFD: Int32
    /// Read end of the pipe `stop()` writes to, to wake the poll loop.
    private let wakeFD: Int32
    private let wakeWriteFD: Int32
    private let provider: AdminStatusProvider
    private let logger: Logger
    /// Token gate and the observability endpoints (AdminExtras.swift); set before `start()`.
    var extras: AdminExtras? = nil

    private struct State {
        var thread: pthread_t?
        var stopped = false
        /// A binary upgrade gave the socket to the new process: stop must not shut it down.
        var handedOver = false
    }
    // @unchecked Sendable: the fds and lets are immutable after init; the only
    // mutable state is `state`, guarded by this mutex.
    private let state = Mutex(State())

    /// The listening socket (handed to the new process by a binary upgrade).
    var listeningSocket: Int32 { listenFD }

    /// Binds and listens right away so a bad address fails at startup.
    init(address: SocketAddress, provider: AdminStatusProvider, logger: Logger) throws {
        self.provider = provider
        self.logger = logger
        // A binary upgrade hands the listening socket over (UpgradeHandoff.swift).
        let inherited = UpgradeHandoff.take("admin " + address.text)?.first
        let fd = inherited ?? socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw AdminServerError(description: "admin: cannot create socket: \(Self.lastError())") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var storage = address.storage
        let bound = inherited != nil ? 0 : withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, address.length) }
        }
        guard bound == 0 else {
            let msg = Self.lastError()
            close(fd)
            throw AdminServerError(description: "admin: cannot bind \(address.text): \(msg)")
        }
        guard listen(fd, 128) == 0 else {
            let msg = Self.lastError()
            close(fd)
            throw AdminServerError(description: "admin: cannot listen on \(address.text): \(msg)")
        }
        var actual = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        boundAddress = named == 0 ? SocketAddress(storage: actual, length: len) : address
        // A self-pipe wakes the poll loop on stop() (eventfd is not in Glibc's Swift overlay).
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else {
            let msg = Self.lastError()
            close(fd)
            throw AdminServerError(description: "admin: cannot create pipe: \(msg)")
        }
        for p in pipeFDs { Self.setNonBlockingCloexec(p) }
        listenFD = fd
        if inherited != nil { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        wakeFD = pipeFDs[0]
        wakeWriteFD = pipeFDs[1]
    }

    deinit {
        close(listenFD)
        close(wakeFD)
        close(wakeWriteFD)
    }

    static func setNonBlockingCloexec(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }

    /// Port actually bound (host byte order).
    var port: UInt16 { boundAddress.port }

    /// Spawns the admin thread. Calling it twice, or after `stop()`, does nothing.
    func start() {
        state.withLock { st in
            guard st.thread == nil, !st.stopped else { return }
            var tid = pthread_t()
            let me = Unmanaged.passRetained(self).toOpaque()
            let rc = pthread_create(&tid, nil, { arg in
                guard let arg else { return nil }
                let server = Unmanaged<AdminServer>.fromOpaque(arg).takeRetainedValue()
                server.serveLoop()
                return nil
            }, me)
            if rc != 0 {
                Unmanaged<AdminServer>.fromOpaque(me).release()
                logger.error("admin: cannot start thread: \(String(cString: strerror(rc)))")
                return
            }
            st.thread = tid
        }
        logger.info("admin listening", metadata: ["address": "\(boundAddress)"])
    }

    /// Wakes the admin thread, waits for it to finish and stops listening.
    func stop() {
        let thread: pthread_t? = state.withLock { st in
            guard !st.stopped else { return nil }
            st.stopped = true
            return st.thread
        }
        var one: UInt8 = 1
        _ = write(wakeWriteFD, &one, 1)
        if let thread { _ = pthread_join(thread, nil) }
        // shutdown() would stop the socket for every process holding it.
        if !state.withLock({ $0.handedOver }) { _ = shutdown(listenFD, Int32(SHUT_RDWR)) }
    }

    /// The listening socket now also belongs to an upgraded process (UpgradeHandoff.swift).
    func markHandedOver() { state.withLock { $0.handedOver = true } }

    // MARK: - The loop (admin thread)

    private struct Client {
        var fd: Int32
        var buffer: [UInt8] = []
        var deadline: Int64
    }

    private func serveLoop() {
        var clients: [Client] = []
        defer { for c in clients { close(c.fd) } }
        while true {
            var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
            let accepting = clients.count < Self.maxClients
            fds.append(pollfd(fd: accepting ? listenFD : -1, events: Int16(POLLIN), revents: 0))
            for c in clients { fds.append(pollfd(fd: c.fd, events: Int16(POLLIN), revents: 0)) }
            let now = Self.nowMs()
            let timeout = clients.map { max(0, $0.deadline - now) }.min().map { Int32(min($0, 60_000)) } ?? -1
            let n = poll(&fds, nfds_t(fds.count), timeout)
            if n < 0 {
                if errno == EINTR { continue }
                logger.error("admin: poll failed: \(Self.lastError())")
                return
            }
            if fds[0].revents != 0 { return }

            // Serve readable clients (indices shifted by 2 in `fds`).
            var keep: [Client] = []
            let after = Self.nowMs()
            for (i, var c) in clients.enumerated() {
                if fds[i + 2].revents != 0, !readAndMaybeRespond(&c) {
                    Self.closeDraining(c.fd)
                } else if after >= c.deadline {
                    send(c.fd, Self.render(.init(status: 408, body: "request timeout\n")))
                    Self.closeDraining(c.fd)
                } else {
                    keep.append(c)
                }
            }
            clients = keep

            if accepting && fds[1].revents != 0 {
                while clients.count < Self.maxClients {
                    let cfd = accept(listenFD, nil, nil)
                    if cfd < 0 { break }
                    Self.setNonBlockingCloexec(cfd)
                    clients.append(Client(fd: cfd, deadline: Self.nowMs() + Int64(Self.requestTimeoutMs)))
                }
            }
        }
    }

    /// Reads what is there; returns false once the connection is done (answered or closed).
    private func readAndMaybeRespond(_ c: inout Client) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 4096)
        let n = chunk.withUnsafeMutableBytes { recv(c.fd, $0.baseAddress, $0.count, 0) }
        if n < 0 { return errno == EAGAIN || errno == EINTR }
        if n == 0 { return false }
        c.buffer.append(contentsOf: chunk[0..<n])
        let response: AdminResponse
        if let head = AdminRequest.headEnd(c.buffer) {
            response = respond(toHead: Array(c.buffer[0..<head]))
        } else if c.buffer.count >= Self.maxRequestBytes {
            response = AdminResponse(status: 431, body: "request header too large\n")
        } else {
            return true
        }
        send(c.fd, Self.render(response))
        return false
    }

    private func respond(toHead head: [UInt8]) -> AdminResponse {
        guard let req = AdminRequest(head: head) else {
            return AdminResponse(status: 400, body: "bad request\n")
        }
        let r = extras?.respond(method: req.method, path: req.path, head: head)
            ?? AdminRoutes.respond(method: req.method, path: req.path, provider: provider)
        logger.trace("admin request", metadata: ["method": "\(req.method)", "path": "\(req.path)", "status": "\(r.status)"])
        return req.method == "HEAD" ? AdminResponse(status: r.status, contentType: r.contentType, body: r.body, extraHeaders: r.extraHeaders, omitBody: true) : r
    }

    /// Writes all of `bytes`, waiting for POLLOUT at most `requestTimeoutMs`.
    /// A slow reader can hold the admin thread that long, never longer.
    private func send(_ fd: Int32, _ bytes: [UInt8]) {
        let deadline = Self.nowMs() + Int64(Self.requestTimeoutMs)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { buf -> Int in
                guard let base = buf.baseAddress else { return 0 }
                return Glibc.send(fd, base + off, buf.count - off, Int32(MSG_NOSIGNAL))
            }
            if n > 0 { off += n; continue }
            if n < 0 && (errno == EAGAIN || errno == EINTR) {
                let left = deadline - Self.nowMs()
                if left <= 0 { return }
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&p, 1, Int32(left))
                continue
            }
            return
        }
    }

    /// Closes after discarding unread input, so the kernel sends FIN rather
    /// than RST and the client still reads the reply (e.g. a 431).
    static func closeDraining(_ fd: Int32) {
        _ = shutdown(fd, Int32(SHUT_WR))
        var scratch = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<16 {
            let n = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
        }
        close(fd)
    }

    static func render(_ r: AdminResponse) -> [UInt8] {
        var head = "HTTP/1.1 \(r.status) \(AdminResponse.reason(r.status))\r\n"
        head += "Content-Type: \(r.contentType)\r\n"
        head += "Content-Length: \(r.body.utf8.count)\r\n"
        for (k, v) in r.extraHeaders { head += "\(k): \(v)\r\n" }
        head += "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
        var out = Array(head.utf8)
        if !r.omitBody { out.append(contentsOf: r.body.utf8) }
        return out
    }

    static func nowMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    static func lastError() -> String { String(cString: strerror(errno)) }
}
