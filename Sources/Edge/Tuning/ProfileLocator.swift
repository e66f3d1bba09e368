import CIOUring
import Glibc

/// Finds the files of `tuning/`: `--dir` when given, else next to the binary
/// (`bin/../tuning` in the dist tarball, the repository's `tuning/` for a
/// `.build/.../edge`), `/etc/edge/tuning`, `./tuning`, and finally the copies
/// compiled into the binary.
enum ProfileLocator {
    static let profiles = ["throughput", "latency", "many-connections"]
    static let limitsFile = "limits.d/edge.conf"
    static let unitFile = "edge.service"

    struct Found: Equatable, Sendable {
        var text: String
        /// The path read, or `embedded:<name>`.
        var source: String
    }

    struct NotFound: Error, CustomStringConvertible {
        var description: String
    }

    /// Directories searched, in order, for a binary at `exePath` (absolute,
    /// symlinks resolved) run from `cwd`. Pure.
    static func searchDirs(exePath: String?, cwd: String?) -> [String] {
        var dirs: [String] = []
        if let exePath, exePath.hasPrefix("/") {
            let binDir = parent(exePath)
            dirs.append(normalize(binDir + "/../tuning"))
            dirs.append(normalize(binDir + "/../share/edge/tuning"))
            // .build/<triple>/release/edge → <repo>/tuning (and a few more levels up).
            var up = binDir
            for _ in 0..<4 {
                up = parent(up)
                if up == "/" { break }
                dirs.append(normalize(up + "/tuning"))
            }
        }
        dirs.append("/etc/edge/tuning")
        if let cwd, cwd.hasPrefix("/") { dirs.append(normalize(cwd + "/tuning")) }
        var seen = Set<String>()
        return dirs.filter { seen.insert($0).inserted }
    }

    /// `name` is a profile (`throughput`) or one of the other files
    /// (`limits.d/edge.conf`, `edge.service`); nil for anything else.
    static func fileName(_ name: String) -> String? {
        if profiles.contains(name) { return name + ".conf" }
        return name == limitsFile || name == unitFile ? name : nil
    }

    static func load(_ name: String, dir: String?) throws(NotFound) -> Found {
        guard let file = fileName(name) else {
            throw NotFound(description: "unknown profile '\(name)' (profiles: \(profiles.joined(separator: ", ")))")
        }
        if let dir {
            let path = normalize(dir.hasPrefix("/") ? dir + "/" + file : (currentDirectory() ?? ".") + "/" + dir + "/" + file)
            guard let text = SystemProbe.readSmall(path) else {
                throw NotFound(description: "\(path): cannot read (from --dir \(dir))")
            }
            return Found(text: text, source: path)
        }
        for d in searchDirs(exePath: executablePath(), cwd: currentDirectory()) {
            let path = d + "/" + file
            if access(path, R_OK) == 0, let text = SystemProbe.readSmall(path) { return Found(text: text, source: path) }
        }
        if let text = EmbeddedTuning.files[file] { return Found(text: text, source: "embedded:\(file)") }
        throw NotFound(description: "no tuning file '\(file)' found")
    }

    static func executablePath() -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func currentDirectory() -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buf, buf.count) != nil else { return nil }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `/a/b/c` → `/a/b`; `/a` → `/`.
    static func parent(_ path: String) -> String {
        var parts = path.split(separator: "/")
        guard !parts.isEmpty else { return "/" }
        parts.removeLast()
        return "/" + parts.joined(separator: "/")
    }

    /// Lexically resolves `.` and `..` in an absolute path.
    static func normalize(_ path: String) -> String {
        var out: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." { continue }
            if part == ".." { if !out.isEmpty { out.removeLast() }; continue }
            out.append(part)
        }
        return "/" + out.joined(separator: "/")
    }
}
