import ArgumentParser
import Glibc

/// `edge upgrade`: zero-downtime binary upgrade of a running edge. Writes the
/// new binary's path next to the pid file (`--binary`; default: the running
/// binary's own path), sends SIGUSR2, then waits for the running process's
/// verdict in `<pid_file>.upgrade-result` and, on success, for the old process
/// to drain and exit. Exit 1 when the new binary failed (the old keeps serving).
struct UpgradeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upgrade",
        abstract: "Replace a running edge with a new binary without dropping connections (SIGUSR2 + socket hand-over)."
    )

    @Option(name: [.short, .long], help: "Config file of the running edge (finds runtime.pid_file).")
    var config: String?

    @Option(name: .long, help: "Pid file (overrides runtime.pid_file).")
    var pidFile: String?

    @Option(name: .long, help: "New binary to start (default: the path the running edge was started from).")
    var binary: String?

    @Option(name: .long, help: "Seconds to wait for the verdict and the old process's exit.")
    var timeout: Int = 60

    func run() throws {
        var pidPath = pidFile
        if pidPath == nil, let config {
            do { pidPath = try ConfigLoader.load(path: config).runtime.pidFile } catch {
                Console.error("\(error.description)\nnot upgrading: fix the config first (edge validate --config \(config))")
                throw ExitCode(1)
            }
        }
        guard let pidPath else {
            Console.error("edge upgrade needs the running edge's pid file: set runtime.pid_file and give --config, or --pid-file")
            throw ExitCode(1)
        }
        guard let text = try? ConfigLoader.readFile(pidPath), let pid = Int32(text.split(separator: "\n").first ?? ""), pid > 0 else {
            Console.error("\(pidPath): cannot read a pid")
            throw ExitCode(1)
        }
        let resultPath = BinaryUpgrade.resultPath(pidPath)
        unlink(resultPath)
        if let binary {
            let absolute = binary.hasPrefix("/") ? binary : (FileSystem.cwd() + "/" + binary)
            guard access(absolute, X_OK) == 0 else {
                Console.error("--binary \(binary): not an executable file")
                throw ExitCode(1)
            }
            let fd = open(BinaryUpgrade.requestPath(pidPath), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                Console.error("cannot write \(BinaryUpgrade.requestPath(pidPath)): \(String(cString: strerror(errno)))")
                throw ExitCode(1)
            }
            _ = (absolute + "\n").withCString { write(fd, $0, strlen($0)) }
            close(fd)
        }
        guard kill(pid, SIGUSR2) == 0 else {
            Console.error("cannot signal pid \(pid): \(String(cString: strerror(errno)))")
            throw ExitCode(1)
        }
        let deadline = Reactor.monotonicMs() + Int64(timeout) * 1000
        var verdict: String? = nil
        while Reactor.monotonicMs() < deadline {
            if let v = try? ConfigLoader.readFile(resultPath), v.hasSuffix("\n") { verdict = v; break }
            if !alive(pid) { Console.error("pid \(pid) exited before giving a verdict"); throw ExitCode(1) }
            usleep(50_000)
        }
        guard let verdict else {
            Console.error("no verdict from pid \(pid) within \(timeout)s")
            throw ExitCode(1)
        }
        unlink(resultPath)
        guard verdict.hasPrefix("ok ") else {
            Console.error("upgrade \(chomp(verdict)); pid \(pid) keeps serving")
            throw ExitCode(1)
        }
        let newPid = chomp(verdict.dropFirst(3))
        while Reactor.monotonicMs() < deadline && alive(pid) { usleep(50_000) }
        if alive(pid) {
            print("upgraded: new pid \(newPid) serves; old pid \(pid) is still draining")
        } else {
            print("upgraded: new pid \(newPid) serves; old pid \(pid) drained and exited")
        }
    }
}

private enum FileSystem {
    static func cwd() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buf, buf.count) != nil else { return "." }
        return String(cString: buf)
    }
}

/// Running (a zombie waiting for its parent to reap it counts as exited).
private func alive(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    guard let stat = try? ConfigLoader.readFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return true }
    return !stat[stat.index(after: close)...].hasPrefix(" Z")
}

private func chomp<S: StringProtocol>(_ text: S) -> String {
    var s = Substring(text)
    while let l = s.last, l == "\n" || l == "\r" || l == " " { s = s.dropLast() }
    return String(s)
}
