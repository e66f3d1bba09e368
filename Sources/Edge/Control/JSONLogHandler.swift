import CIOUring
import Glibc
import Logging

/// swift-log handler for `runtime.log_format: json`: one JSON object per line
/// on stderr (`ts`, `level`, `label`, `msg`, `metadata`), for log shippers.
/// Process logs only; the access log has its own writer.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    /// Where lines go (stderr by default; tests pass a pipe).
    var fd: Int32 = 2

    init(label: String, fd: Int32 = 2, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.fd = fd
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let line = Self.format(ts: Self.timestamp(), level: event.level, label: label,
                               message: event.message.description, metadata: merged)
        Self.writeLine(fd, line)
    }

    /// One JSON line (with trailing newline); metadata keys sorted for stable output.
    static func format(ts: String, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        var out = #"{"ts":"# + quote(ts) + #","level":"# + quote(level.rawValue)
        out += #","label":"# + quote(label) + #","msg":"# + quote(message)
        if !metadata.isEmpty { out += #","metadata":"# + json(.dictionary(metadata)) }
        return out + "}\n"
    }

    static func json(_ v: Logger.Metadata.Value) -> String {
        switch v {
        case .string(let s): return quote(s)
        case .stringConvertible(let c): return quote(c.description)
        case .array(let a): return "[" + a.map(json).joined(separator: ",") + "]"
        case .dictionary(let d):
            return "{" + d.keys.sorted().map { k in quote(k) + ":" + json(d[k] ?? .string("")) }.joined(separator: ",") + "}"
        }
    }

    /// JSON string literal with RFC 8259 escaping.
    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    /// UTC `2025-01-31T12:34:56.789Z`.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tm = tm()
        gmtime_r(&t, &tm)
        func pad(_ n: Int32, _ w: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(tm.tm_year + 1900)-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T"
            + "\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
    }

    /// One write(2) per line so concurrent threads' lines do not interleave.
    static func writeLine(_ fd: Int32, _ line: String) {
        var bytes = Array(line.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeMutableBytes { buf -> Int in
                guard let base = buf.baseAddress else { return 0 }
                return write(fd, base + off, buf.count - off)
            }
            if n > 0 { off += n } else if n < 0 && errno == EINTR { continue } else { return }
        }
    }
}
