import CIOUring
import Glibc

/// A problem with one scalar value, before it is tied to a file, line and field.
/// `ConfigValues` stays free of YAML so the unit parsers can be tested alone;
/// `ConfigNode` turns this into a `ConfigError`.
struct ValueError: Error, Equatable {
    var message: String
    init(_ message: String) { self.message = message }
}

/// Parsers for the value syntaxes the config file uses: durations (`250ms`,
/// `5s`), sizes (`64KiB`), integers and `host:port` addresses. Strict on
/// purpose: a typo must be an error, never a silently different value.
enum ConfigValues {
    /// Largest duration any field accepts, in milliseconds (what fits an Int32,
    /// about 24 days), so every consumer can convert without overflow.
    static let maxDurationMs = Int(Int32.max)

    /// Parses `<digits><unit>` with unit `ms`, `s`, `m` or `h` into milliseconds.
    static func durationMs(_ text: String) throws(ValueError) -> Int {
        let s = text.trimmingSpaces()
        let digits = s.prefix { $0.isASCII && $0.isNumber }
        let unit = s.dropFirst(digits.count)
        guard !digits.isEmpty else { throw ValueError("expected a duration like 5s, got '\(text)'") }
        let scale: Int
        switch unit {
        case "ms": scale = 1
        case "s": scale = 1000
        case "m": scale = 60_000
        case "h": scale = 3_600_000
        case "": throw ValueError("duration needs a unit: ms, s, m, h (e.g. '\(digits)s'), got '\(text)'")
        default: throw ValueError("expected a duration like 5s (units: ms, s, m, h), got '\(text)'")
        }
        guard let n = Int(digits) else { throw ValueError("duration '\(text)' is too large") }
        let (ms, overflow) = n.multipliedReportingOverflow(by: scale)
        guard !overflow, ms <= maxDurationMs else {
            throw ValueError("duration '\(text)' is too large (at most \(maxDurationMs / 3_600_000)h)")
        }
        return ms
    }

    /// Parses `<digits>[B|KiB|MiB|GiB]` into bytes. A bare integer is bytes.
    static func sizeBytes(_ text: String) throws(ValueError) -> UInt64 {
        let s = text.trimmingSpaces()
        let digits = s.prefix { $0.isASCII && $0.isNumber }
        let unit = s.dropFirst(digits.count)
        let bad = ValueError("expected a size like 64KiB (units: B, KiB, MiB, GiB; a bare number is bytes), got '\(text)'")
        guard !digits.isEmpty else { throw bad }
        let scale: UInt64
        switch unit {
        case "", "B": scale = 1
        case "KiB": scale = 1 << 10
        case "MiB": scale = 1 << 20
        case "GiB": scale = 1 << 30
        default: throw bad
        }
        guard let n = UInt64(digits) else { throw ValueError("size '\(text)' is too large") }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: scale)
        guard !overflow, bytes <= UInt64(Int.max) else { throw ValueError("size '\(text)' is too large") }
        return bytes
    }

    /// Parses a plain decimal integer (optional leading `-`).
    static func integer(_ text: String) throws(ValueError) -> Int {
        let s = text.trimmingSpaces()
        let body = s.hasPrefix("-") ? s.dropFirst() : Substring(s)
        guard !body.isEmpty, body.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw ValueError("expected an integer, got '\(text)'")
        }
        guard let n = Int(s) else { throw ValueError("integer '\(text)' is out of range") }
        return n
    }

    /// Parses `true`/`false` (YAML's `yes`/`no`/`on`/`off` are not accepted,
    /// to keep one spelling).
    static func bool(_ text: String) throws(ValueError) -> Bool {
        switch text.trimmingSpaces().lowercased() {
        case "true": return true
        case "false": return false
        default: throw ValueError("expected true or false, got '\(text)'")
        }
    }

    /// Parses `ipv4:port`, `[ipv6]:port` or `localhost:port` into a socket
    /// address (network byte order). No DNS: other host names are refused.
    /// `allowPortZero` is for addresses where the kernel may pick the port.
    static func socketAddress(_ text: String, allowPortZero: Bool = false) throws(ValueError) -> SocketAddress {
        let s = text.trimmingSpaces()
        guard !s.isEmpty else { throw ValueError("expected an address like 127.0.0.1:8080, got ''") }
        let host: Substring
        let portText: Substring
        var isV6 = false
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else {
                throw ValueError("missing ']' in IPv6 address '\(text)'; expected e.g. [::1]:8080")
            }
            host = s[s.index(after: s.startIndex)..<close]
            let rest = s[s.index(after: close)...]
            guard rest.hasPrefix(":") else {
                throw ValueError("missing port in '\(text)'; expected e.g. [::1]:8080")
            }
            portText = rest.dropFirst()
            isV6 = true
        } else {
            guard let colon = s.lastIndex(of: ":") else {
                throw ValueError("missing port in '\(text)'; expected host:port like 127.0.0.1:8080")
            }
            host = s[..<colon]
            portText = s[s.index(after: colon)...]
            if host.contains(":") {
                throw ValueError("IPv6 addresses need brackets, e.g. [::1]:8080, got '\(text)'")
            }
        }
        guard !host.isEmpty else {
            throw ValueError("missing host in '\(text)'; use 0.0.0.0:PORT or [::]:PORT for all interfaces")
        }
        let minPort = allowPortZero ? 0 : 1
        guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
              let port = Int(portText), port >= minPort, port <= 65535 else {
            throw ValueError("port must be a number between \(minPort) and 65535, got '\(portText)' in '\(text)'")
        }
        let p = UInt16(port)
        if isV6 {
            guard let addr = sockaddr_storage(parsing: String(host), family: AF_INET6, port: p) else {
                throw ValueError("invalid IPv6 address '\(host)' in '\(text)'")
            }
            return SocketAddress(storage: addr, length: addr.socketLength, text: s)
        }
        let hostText = host.lowercased() == "localhost" ? "127.0.0.1" : String(host)
        if let addr = sockaddr_storage(parsing: hostText, family: AF_INET, port: p) {
            return SocketAddress(storage: addr, length: addr.socketLength, text: s)
        }
        if hostText.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) {
            throw ValueError("invalid IPv4 address '\(host)' in '\(text)'")
        }
        throw ValueError("host names are not supported yet; use an IP literal (got '\(host)')")
    }

    /// An upstream endpoint: everything `socketAddress` accepts, plus host
    /// names ("db.internal:5432"), resolved now with getaddrinfo (AF_UNSPEC,
    /// SOCK_STREAM, first result). Returns the host name for names so it can
    /// be re-resolved later; nil for IP literals and `localhost` (fixed 127.0.0.1).
    /// This blocks on DNS: call it on the control thread only.
    static func endpointAddress(_ text: String) throws(ValueError) -> (SocketAddress, hostName: String?) {
        let r = try resolveEndpoint(text)
        if let failure = r.failure { throw ValueError(failure) }
        return (r.address, r.hostName)
    }

    /// An endpoint as written, with its DNS outcome: a name that does not
    /// resolve is not a syntax error. `failure` says why, and `address` then
    /// has family AF_UNSPEC and the port (connecting to it answers 502
    /// `upstream_dns_failure` until a DNS refresh finds an address).
    struct EndpointResolution {
        var address: SocketAddress
        var hostName: String?
        var failure: String?
    }

    static func resolveEndpoint(_ text: String) throws(ValueError) -> EndpointResolution {
        let literalError: ValueError
        do { return EndpointResolution(address: try socketAddress(text), hostName: nil, failure: nil) } catch { literalError = error }
        let s = text.trimmingSpaces()
        guard !s.hasPrefix("["), let colon = s.lastIndex(of: ":") else { throw literalError }
        let host = String(s[..<colon])
        // Only names get past here; malformed IPs and ports keep the literal parser's message.
        guard !host.isEmpty, !host.contains(":"), host.contains(where: { $0.isLetter }),
              let port = Int(s[s.index(after: colon)...]), (1...65535).contains(port) else { throw literalError }
        guard isHostName(host) else {
            throw ValueError("'\(host)' is not a valid host name (letters, digits, '-' and '.'; labels of 1 to 63) in '\(text)'")
        }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var res: UnsafeMutablePointer<addrinfo>? = nil
        let rc = getaddrinfo(host, String(port), &hints, &res)
        defer { if let res { freeaddrinfo(res) } }
        guard rc == 0, let first = res, let addr = first.pointee.ai_addr else {
            var reason = rc == 0 ? "no addresses" : String(cString: gai_strerror(rc))
            if rc == EAI_SYSTEM { reason += " (\(String(cString: strerror(errno))))" }
            var storage = sockaddr_storage()  // AF_UNSPEC, with the port
            storage.port = UInt16(port)
            return EndpointResolution(address: SocketAddress(storage: storage, length: socklen_t(MemoryLayout<sockaddr_in>.size), text: s),
                                      hostName: host, failure: "cannot resolve host '\(host)': \(reason)")
        }
        var storage = sockaddr_storage()
        let length = min(Int(first.pointee.ai_addrlen), MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: addr, count: length)) }
        return EndpointResolution(address: SocketAddress(storage: storage, length: socklen_t(length), text: s), hostName: host, failure: nil)
    }

    /// RFC 1123 host name: dot-separated labels of letters, digits and '-'.
    static func isHostName(_ h: String) -> Bool {
        guard h.utf8.count <= 253 else { return false }
        let labels = h.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { l in
            !l.isEmpty && l.utf8.count <= 63 && !l.hasPrefix("-") && !l.hasSuffix("-")
                && l.unicodeScalars.allSatisfy { ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "-" }
        }
    }
}

extension SocketAddress {
    /// Builds an address from what the kernel returned (getsockname, accept).
    init(storage: sockaddr_storage, length: socklen_t) {
        self.init(storage: storage, length: length, text: "")
        self.text = Self.format(storage)
    }

    /// Port in host byte order (also of an unresolved, AF_UNSPEC, endpoint).
    var port: UInt16 { storage.port }

    /// Family, address bytes and port: two spellings of one socket
    /// (`localhost:80`, `127.0.0.1:80`) give the same key.
    var canonicalKey: String {
        Self.format(storage)
    }

    /// `a.b.c.d:port` or `[v6]:port`, as inet_ntop prints it.
    static func format(_ storage: sockaddr_storage) -> String {
        withUnsafeTemporaryAllocation(byteCount: Int(INET6_ADDRSTRLEN) + 1, alignment: 1) { buf in
            let n = storage.writeIPText(into: buf)
            guard n > 0 else { return "?" }
            let ip = String(decoding: UnsafeRawBufferPointer(rebasing: buf[0..<n]), as: UTF8.self)
            return storage.family == AF_INET6 ? "[\(ip)]:\(storage.port)" : "\(ip):\(storage.port)"
        }
    }
}

extension StringProtocol {
    /// Drops leading and trailing spaces and tabs (no Foundation needed).
    func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }),
              let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
