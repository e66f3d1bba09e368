import CIOUring
import Glibc

/// Reads the live host state `edge tune check` compares against a profile,
/// and writes it for `edge tune apply`. Everything read is optional: a value
/// that is not visible (container, VM, old kernel) is reported as such.
enum SystemProbe {
    static func snapshot(keys: [String]) -> SystemSnapshot {
        var s = SystemSnapshot()
        for key in keys {
            if let v = readSysctl(key) { s.sysctl[key] = v }
        }
        s.nofile = rlimitPair(RLIMIT_NOFILE.rawValue, divisor: 1)
        s.memlockKiB = rlimitPair(__RLIMIT_MEMLOCK.rawValue, divisor: 1024)  // RLIMIT_MEMLOCK is a macro
        s.governors = governors()
        s.kernelRelease = kernelRelease()
        s.ioUringDisabled = readSysctl("kernel.io_uring_disabled")
        s.nicIRQs = nicIRQs()
        return s
    }

    /// `/proc/sys/<key with dots as slashes>`, blanks normalised; nil when absent.
    static func readSysctl(_ key: String) -> String? {
        let path = SysctlSetting(key: key, value: "", reason: "", line: 0).procPath
        guard let text = readSmall(path) else { return nil }
        return TuneText.fields(text).joined(separator: " ")
    }

    /// Writes one value to /proc/sys; returns nil or the error text.
    static func writeSysctl(_ key: String, _ value: String) -> String? {
        let path = SysctlSetting(key: key, value: "", reason: "", line: 0).procPath
        return writeFile(path, value + "\n", truncate: true)
    }

    /// Writes `text` to `path` (creating it 0644); returns nil or the error text.
    static func writeFile(_ path: String, _ text: String, truncate: Bool = true) -> String? {
        let flags = O_WRONLY | O_CLOEXEC | (truncate ? O_TRUNC : 0) | O_CREAT
        let fd = open(path, flags, 0o644)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        defer { close(fd) }
        var bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeMutableBytes { b -> Int in
                guard let base = b.baseAddress else { return 0 }  // unreachable: off < count
                return write(fd, base + off, b.count - off)
            }
            if n < 0 {
                if errno == EINTR { continue }
                return String(cString: strerror(errno))
            }
            off += n
        }
        bytes.removeAll()
        return nil
    }

    /// Reads a small file (sysfs/procfs report size 0, so read until EOF).
    static func readSmall(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func listDir(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func rlimitPair(_ resource: UInt32, divisor: UInt64) -> RLimitPair? {
        var lim = rlimit()
        guard getrlimit(__rlimit_resource_t(resource), &lim) == 0 else { return nil }
        // rlim_t.max is RLIM_INFINITY (the C macro does not import).
        func conv(_ v: rlim_t) -> LimitValue { v == rlim_t.max ? .unlimited : .value(UInt64(v) / divisor) }
        return RLimitPair(soft: conv(lim.rlim_cur), hard: conv(lim.rlim_max))
    }

    static func isRoot() -> Bool { geteuid() == 0 }

    /// `/sys/devices/system/cpu/cpuN/cpufreq/scaling_governor` paths that exist.
    static func governorPaths() -> [String] {
        listDir("/sys/devices/system/cpu")
            .filter { $0.hasPrefix("cpu") && $0.dropFirst(3).allSatisfy(\.isNumber) && $0.count > 3 }
            .map { "/sys/devices/system/cpu/\($0)/cpufreq/scaling_governor" }
            .filter { access($0, F_OK) == 0 }
    }

    static func governors() -> [String] {
        governorPaths().compactMap { readSmall($0).map { TuneText.trim($0) } }
    }

    static func kernelRelease() -> String {
        var u = utsname()
        guard uname(&u) == 0 else { return "" }
        return withUnsafeBytes(of: u.release) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// IRQs of physical (or virtio) NICs: lines of /proc/interrupts whose
    /// action name mentions the interface, its device (virtio2-input.0) or
    /// whose number is in the device's msi_irqs.
    static func nicIRQs() -> [NICIRQ]? {
        guard let interrupts = readSmall("/proc/interrupts") else { return nil }
        var ifaces: [(name: String, tokens: [String], msi: Set<Int>)] = []
        for name in listDir("/sys/class/net") where name != "lo" {
            let devLink = "/sys/class/net/\(name)/device"
            guard access(devLink, F_OK) == 0 else { continue }  // virtual interface
            var tokens = [name]
            if let real = realpath(devLink, nil) {
                let path = String(cString: real)
                free(real)
                if let base = path.split(separator: "/").last { tokens.append(String(base)) }
            }
            let msi = Set(listDir(devLink + "/msi_irqs").compactMap(Int.init))
            ifaces.append((name, tokens, msi))
        }
        var out: [NICIRQ] = []
        for line in interrupts.split(separator: "\n") {
            let f = TuneText.fields(line)
            guard let first = f.first, first.hasSuffix(":"), let irq = Int(first.dropLast()), let action = f.last else { continue }
            for iface in ifaces {
                let matches = iface.msi.contains(irq) || iface.tokens.contains { tok in
                    action == tok || action.hasPrefix(tok + "-") || action.hasPrefix(tok + "@") || action.contains(iface.name)
                }
                guard matches else { continue }
                let eff = readSmall("/proc/irq/\(irq)/effective_affinity_list").map { TuneText.trim($0) }
                let list = readSmall("/proc/irq/\(irq)/smp_affinity_list").map { TuneText.trim($0) }
                out.append(NICIRQ(interface: iface.name, irq: irq, name: action,
                                  cpus: (eff?.isEmpty == false ? eff : list) ?? "?"))
                break
            }
        }
        return out
    }
}
