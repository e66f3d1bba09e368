import Atomics
import Glibc

/// The one thread that writes access-log lines: it drains every worker's
/// ring to the log file (or stderr) every few milliseconds, and reopens the
/// file when asked (SIGUSR1 after logrotate renamed it). Workers never wait
/// for it: when it falls behind, their rings fill and lines are dropped.
final class AccessLogWriter: @unchecked Sendable {
    let path: String
    let rings: [ByteRing]
    private var fd: Int32
    private let reopenFlag = ManagedAtomic<Bool>(false)
    private let stopFlag = ManagedAtomic<Bool>(false)
    private var thread: pthread_t?
    let reopens = ManagedAtomic<Int>(0)

    struct OpenError: Error, CustomStringConvertible { var description: String }

    init(path: String, rings: [ByteRing]) throws {
        self.path = path
        self.rings = rings
        fd = 2
        if path != "stderr" {
            fd = Self.open(path)
            guard fd >= 0 else {
                throw OpenError(description: "access_log.path: cannot open \(path): \(String(cString: strerror(errno)))")
            }
        }
    }

    static func open(_ path: String) -> Int32 {
        Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
    }

    func start() {
        thread = WorkerThread.spawn(name: "edge-accesslog") { [self] in run() }
    }

    /// Asks for the file to be reopened (logrotate's postrotate sends SIGUSR1).
    func reopen() { reopenFlag.store(true, ordering: .releasing) }

    /// Writes what is queued and stops the thread.
    func stop() {
        stopFlag.store(true, ordering: .releasing)
        if let t = thread { pthread_join(t, nil) }
        thread = nil
    }

    private func run() {
        var pause = timespec(tv_sec: 0, tv_nsec: 5_000_000)
        while true {
            let stopping = stopFlag.load(ordering: .acquiring)
            if reopenFlag.exchange(false, ordering: .acquiring) && path != "stderr" {
                let n = Self.open(path)
                if n >= 0 {
                    if fd > 2 { close(fd) }
                    fd = n
                    reopens.wrappingIncrement(ordering: .relaxed)
                }
            }
            for ring in rings { ring.drain { p, n in write(p, n) } }
            if stopping { break }
            nanosleep(&pause, nil)
        }
        if fd > 2 { close(fd) }
    }

    private func write(_ p: UnsafePointer<UInt8>, _ n: Int) {
        var off = 0
        while off < n {
            let w = Glibc.write(fd, p + off, n - off)
            if w > 0 { off += w; continue }
            if w < 0 && errno == EINTR { continue }
            return  // disk full or closed: the lines are lost, the workers go on
        }
    }
}
