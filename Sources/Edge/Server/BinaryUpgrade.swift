import Atomics
import Glibc
import Logging

/// The old process's side of a binary upgrade (SIGUSR2): which binary to
/// start, which sockets to hand over, and what to tell `edge upgrade`.
/// The mechanics are in UpgradeHandoff.swift.
enum BinaryUpgrade {
    /// How long the new process has to start its workers and say READY.
    static let readyTimeoutMs = 20_000
    private static let upgrading = ManagedAtomic<Bool>(false)
    /// Set before the post-upgrade drain: idle keep-alive connections get
    /// `idleGraceMs` to send one more request instead of closing at once (a
    /// request racing the close would fail on the client).
    static let gentleDrain = ManagedAtomic<Bool>(false)
    static let idleGraceMs: Int64 = 1_000

    /// This binary's path, read at startup (after the file is replaced,
    /// /proc/self/exe names the deleted inode; the path names the new file).
    static let ownBinary: String = {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return CommandLine.arguments.first ?? "edge" }
        var path = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if path.hasSuffix(" (deleted)") { path.removeLast(10) }
        return path
    }()

    /// `<pid_file>.upgrade`: a binary path written by `edge upgrade --binary`.
    static func requestPath(_ pidFile: String) -> String { pidFile + ".upgrade" }
    /// `<pid_file>.upgrade-result`: `ok <new pid>` or `failed: <why>`, for `edge upgrade`.
    static func resultPath(_ pidFile: String) -> String { pidFile + ".upgrade-result" }

    /// Starts the new binary and hands it the sockets; nil on success (the caller drains).
    static func run(reloader: Reloader, adminSocket: Int32?, adminAddress: String?, pidFile: String?, logger: Logger) -> Bool {
        guard upgrading.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return false }
        defer { upgrading.store(false, ordering: .releasing) }
        var binary = ownBinary
        if let pidFile, let text = try? ConfigLoader.readFile(requestPath(pidFile)) {
            unlink(requestPath(pidFile))
            let path = text.split(separator: "\n").first.map(String.init) ?? ""
            if !path.isEmpty { binary = path }
        }
        logger.info("binary upgrade: starting the new process", metadata: ["binary": "\(binary)"])
        let result = reloader.withListenerSockets { listeners -> Result<Int32, UpgradeError> in
            var sockets = listeners.map { (key: $0.key, fds: $0.fds) }
            if let adminSocket, let adminAddress { sockets.append((key: "admin " + adminAddress, fds: [adminSocket])) }
            return UpgradeHandoff.start(binary: binary, arguments: Array(CommandLine.arguments.dropFirst()),
                                        sockets: sockets, timeoutMs: readyTimeoutMs)
        }
        let line: String
        let ok: Bool
        switch result {
        case .success(let pid):
            logger.info("binary upgrade: the new process serves; draining this one", metadata: ["new_pid": "\(pid)"])
            line = "ok \(pid)\n"
            ok = true
        case .failure(let e):
            logger.error("binary upgrade failed; this process keeps serving", metadata: ["error": "\(e)"])
            line = "failed: \(e)\n"
            ok = false
        }
        if let pidFile {
            let path = resultPath(pidFile)
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if fd >= 0 { _ = line.withCString { write(fd, $0, strlen($0)) }; close(fd) }
        }
        return ok
    }
}
