import ArgumentParser
import CIOUring
import Glibc

/// `edge reload`: asks a running edge to reload its config. Through the admin
/// API when one is configured (prints the result, exits 1 if the new config was
/// rejected), else by sending SIGHUP to the pid in the pid file.
struct ReloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Reload a running edge (admin POST /reload, or SIGHUP via the pid file)."
    )

    @Option(name: [.short, .long], help: "Config file of the running edge (finds its admin address and pid file).")
    var config: String?

    @Option(name: .long, help: "Admin address, e.g. 127.0.0.1:9901 (overrides the config).")
    var admin: String?

    @Option(name: .long, help: "Pid file (overrides runtime.pid_file).")
    var pidFile: String?

    func run() throws {
        var adminAddress: SocketAddress? = nil
        var pidPath = pidFile
        if let config {
            do {
                let cfg = try ConfigLoader.load(path: config)
                adminAddress = cfg.admin.address
                if pidPath == nil { pidPath = cfg.runtime.pidFile }
            } catch {
                Console.error("\(error.description)\nnot reloading: fix the config first (edge validate --config \(config))")
                throw ExitCode(1)
            }
        }
        if let admin {
            do { adminAddress = try ConfigValues.socketAddress(admin) } catch {
                Console.error("--admin \(admin): \(error)")
                throw ExitCode(1)
            }
        }
        if pidFile != nil { adminAddress = nil }
        if let adminAddress {
            guard let (status, body) = ReloadCommand.post(adminAddress, path: "/reload") else {
                Console.error("cannot reach the admin API at \(adminAddress.text); is edge running?")
                throw ExitCode(1)
            }
            print(body, terminator: body.hasSuffix("\n") ? "" : "\n")
            if status != 200 { throw ExitCode(1) }
            return
        }
        guard let pidPath else {
            Console.error("nothing to signal: give --config (with admin.address or runtime.pid_file), --admin or --pid-file")
            throw ExitCode(1)
        }
        guard let text = try? ConfigLoader.readFile(pidPath),
              let pid = Int32(text.trimmingCharacters(in: " \n\t")), pid > 0 else {
            Console.error("\(pidPath): cannot read a pid")
            throw ExitCode(1)
        }
        if kill(pid, SIGHUP) != 0 {
            Console.error("cannot signal pid \(pid): \(String(cString: strerror(errno)))")
            throw ExitCode(1)
        }
        print("sent SIGHUP to \(pid); see its log for the result")
    }

    /// Minimal HTTP/1.1 POST over a blocking socket (control plane only).
    static func post(_ address: SocketAddress, path: String) -> (Int, String)? {
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var storage = address.storage
        let ok = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, address.length) } }
        guard ok == 0 else { return nil }
        let request = "POST \(path) HTTP/1.1\r\nHost: \(address.text)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        _ = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            data += chunk[0..<n]
        }
        let text = String(decoding: data, as: UTF8.self)
        guard text.hasPrefix("HTTP/1."), text.count > 12, let status = Int(text.dropFirst(9).prefix(3)) else { return nil }
        var body = ""
        for i in 0..<max(0, data.count - 3) where data[i] == 13 && data[i + 1] == 10 && data[i + 2] == 13 && data[i + 3] == 10 {
            body = String(decoding: data[(i + 4)...], as: UTF8.self)
            break
        }
        return (status, body)
    }
}

private extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
