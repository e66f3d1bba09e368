import CIOUring
import Glibc
import Synchronization

/// Zero-downtime binary upgrade (SIGUSR2 / `edge upgrade`): the running
/// process starts the new binary with one end of a SOCK_SEQPACKET socketpair
/// (fd number in `EDGE_UPGRADE_FD`) and sends it every listening socket over
/// it with SCM_RIGHTS, one message per listener key (`"tcp 127.0.0.1:8080"`,
/// `"udp ..."`, `"admin ..."`) carrying that key's per-worker sockets, then
/// `END`. The new process takes those sockets instead of binding (same accept
/// queues, so no connection is refused or reset), starts its workers and
/// answers `READY <pid>`; only then does the old process drain and exit. No
/// READY within the timeout, or the child exits first: the child is killed
/// and the old process keeps serving.
enum UpgradeHandoff {
    static let envName = "EDGE_UPGRADE_FD"
    /// File descriptors per SCM_RIGHTS message (the kernel allows 253).
    static let fdsPerMessage = 200

    // MARK: new process

    private struct Inherited {
        var sockets: [String: [Int32]] = [:]
        var channel: Int32 = -1
    }
    private static let inherited = Mutex(Inherited())

    /// Reads the handed-over sockets when started by an upgrading edge. Returns
    /// how many it got, or an error text (then the caller must exit non-zero).
    static func receiveIfInherited() -> Result<Int, UpgradeError> {
        guard let v = getenv(envName), let fd = Int32(String(cString: v)), fd >= 0 else { return .success(0) }
        unsetenv(envName)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var got: [String: [Int32]] = [:]
        var total = 0
        while true {
            guard let (text, fds) = receive(fd) else {
                for list in got.values { for s in list { close(s) } }
                close(fd)
                return .failure(UpgradeError("the upgrading edge closed the hand-over channel early"))
            }
            if text == "END" { break }
            for s in fds { _ = fcntl(s, F_SETFD, FD_CLOEXEC) }
            got[text, default: []] += fds
            total += fds.count
        }
        inherited.withLock { $0 = Inherited(sockets: got, channel: fd) }
        return .success(total)
    }

    /// Takes the inherited sockets of `key` (nil: none, bind as usual).
    static func take(_ key: String) -> [Int32]? {
        inherited.withLock { s in
            guard let fds = s.sockets[key] else { return nil }
            s.sockets[key] = nil
            return fds
        }
    }

    /// Tells the old process this one serves; closes inherited sockets the new config did not use.
    static func signalReady() {
        let (channel, leftovers) = inherited.withLock { s -> (Int32, [Int32]) in
            let out = (s.channel, s.sockets.values.flatMap { $0 })
            s = Inherited()
            return out
        }
        guard channel >= 0 else { return }
        let text = "READY \(getpid())"
        _ = text.withCString { send(channel, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        close(channel)
        for fd in leftovers { close(fd) }
    }

    // MARK: old process

    /// Starts `binary` with `arguments` (argv[1...]), hands it `sockets` and
    /// waits up to `timeoutMs` for READY. Returns the new pid.
    static func start(binary: String, arguments: [String], sockets: [(key: String, fds: [Int32])], timeoutMs: Int) -> Result<Int32, UpgradeError> {
        guard access(binary, X_OK) == 0 else { return .failure(UpgradeError("\(binary) is not an executable file")) }
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            return .failure(UpgradeError("socketpair: \(String(cString: strerror(errno)))"))
        }
        let mine = pair[0], theirs = pair[1]
        defer { close(mine) }
        // The child's end survives exec; every other fd of ours is CLOEXEC.
        _ = fcntl(theirs, F_SETFD, 0)
        var env = environmentList().filter { !$0.hasPrefix(envName + "=") }
        env.append("\(envName)=\(theirs)")
        let argv = [binary] + arguments
        var pid: pid_t = 0
        // The control thread blocks the signals it waits for; the child starts with none blocked.
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK))
        let rc = withCStrings(argv) { a in withCStrings(env) { e in posix_spawn(&pid, binary, nil, &attr, a, e) } }
        close(theirs)
        guard rc == 0 else { return .failure(UpgradeError("cannot start \(binary): \(String(cString: strerror(rc)))")) }
        func fail(_ why: String) -> Result<Int32, UpgradeError> {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            return .failure(UpgradeError(why))
        }
        for (key, fds) in sockets {
            var i = 0
            repeat {
                let chunk = Array(fds[i..<min(fds.count, i + fdsPerMessage)])
                guard sendMessage(mine, key, chunk) else { return fail("the new process did not take the sockets (\(String(cString: strerror(errno))))") }
                i += fdsPerMessage
            } while i < fds.count
        }
        guard sendMessage(mine, "END", []) else { return fail("the new process did not take the sockets") }
        let deadline = Reactor.monotonicMs() + Int64(timeoutMs)
        while Reactor.monotonicMs() < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                return .failure(UpgradeError("the new process exited (status \(status >> 8 & 0xFF), signal \(status & 0x7F)) before it was ready"))
            }
            var p = pollfd(fd: mine, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 100) > 0 {
                if let (text, _) = receive(mine), text.hasPrefix("READY") { return .success(pid) }
                // EOF without READY: it is exiting (or failed); give waitpid a moment to say why.
                usleep(200_000)
                if waitpid(pid, &status, WNOHANG) == pid {
                    return .failure(UpgradeError("the new process exited (status \(status >> 8 & 0xFF), signal \(status & 0x7F)) before it was ready"))
                }
                return fail("the new process closed the hand-over channel without becoming ready")
            }
        }
        return fail("the new process was not ready within \(timeoutMs)ms")
    }

    // MARK: SCM_RIGHTS

    private static func sendMessage(_ fd: Int32, _ text: String, _ fds: [Int32]) -> Bool {
        var payload = Array(text.utf8)
        let header = MemoryLayout<cmsghdr>.size
        let dataLen = fds.count * MemoryLayout<Int32>.size
        let space = header + (dataLen + 7) & ~7
        var control = [UInt8](repeating: 0, count: max(space, header))
        return payload.withUnsafeMutableBytes { pb in
            control.withUnsafeMutableBytes { cb in
                var iov = iovec(iov_base: pb.baseAddress, iov_len: pb.count)
                return withUnsafeMutablePointer(to: &iov) { iovp in
                    var msg = msghdr()
                    msg.msg_iov = iovp
                    msg.msg_iovlen = 1
                    if !fds.isEmpty, let base = cb.baseAddress {
                        let h = base.assumingMemoryBound(to: cmsghdr.self)
                        h.pointee.cmsg_len = header + dataLen
                        h.pointee.cmsg_level = SOL_SOCKET
                        h.pointee.cmsg_type = Int32(SCM_RIGHTS)
                        for (i, f) in fds.enumerated() { base.storeBytes(of: f, toByteOffset: header + i * 4, as: Int32.self) }
                        msg.msg_control = base
                        msg.msg_controllen = space
                    }
                    return sendmsg(fd, &msg, Int32(MSG_NOSIGNAL)) == pb.count
                }
            }
        }
    }

    /// One message: its text and any fds it carried; nil on EOF or error.
    private static func receive(_ fd: Int32) -> (String, [Int32])? {
        var payload = [UInt8](repeating: 0, count: 512)
        let header = MemoryLayout<cmsghdr>.size
        var control = [UInt8](repeating: 0, count: header + 256 * 4)
        return payload.withUnsafeMutableBytes { pb in
            control.withUnsafeMutableBytes { cb -> (String, [Int32])? in
                var iov = iovec(iov_base: pb.baseAddress, iov_len: pb.count)
                return withUnsafeMutablePointer(to: &iov) { iovp -> (String, [Int32])? in
                    var msg = msghdr()
                    msg.msg_iov = iovp
                    msg.msg_iovlen = 1
                    msg.msg_control = cb.baseAddress
                    msg.msg_controllen = cb.count
                    var n: Int
                    repeat { n = recvmsg(fd, &msg, Int32(MSG_CMSG_CLOEXEC)) } while n < 0 && errno == EINTR
                    guard n > 0 else { return nil }
                    var fds: [Int32] = []
                    if msg.msg_controllen >= header, let base = cb.baseAddress {
                        let h = base.assumingMemoryBound(to: cmsghdr.self).pointee
                        if h.cmsg_level == SOL_SOCKET && h.cmsg_type == Int32(SCM_RIGHTS) && h.cmsg_len >= header {
                            let count = min((Int(h.cmsg_len) - header) / 4, 256)
                            for i in 0..<count { fds.append(base.load(fromByteOffset: header + i * 4, as: Int32.self)) }
                        }
                    }
                    return (String(decoding: pb[0..<n], as: UTF8.self), fds)
                }
            }
        }
    }

    private static func environmentList() -> [String] {
        var out: [String] = []
        var p = environ
        while let s = p.pointee { out.append(String(cString: s)); p += 1 }
        return out
    }

    private static func withCStrings<T>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> T) -> T {
        var ptrs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        ptrs.append(nil)
        defer { for p in ptrs { free(p) } }
        return body(ptrs)
    }
}

struct UpgradeError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
