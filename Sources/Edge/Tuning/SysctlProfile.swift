/// Parsing of the files in `tuning/`: sysctl.d profiles and the limits.d file.
/// Pure functions (text in, values out) so tests can feed them anything.

/// One `key = value` line of a sysctl.d file, with the one-line reason that
/// precedes it.
struct SysctlSetting: Equatable, Sendable {
    /// Dotted name, e.g. `net.core.somaxconn` (slash form is converted).
    var key: String
    /// Value with runs of blanks collapsed to one space (`4096 131072 16777216`).
    var value: String
    /// The comment line directly above the setting, without `#` (empty when none).
    var reason: String
    /// 1-based line number in the file.
    var line: Int
    /// A leading `-` (systemd-sysctl: ignore failures, e.g. a missing key).
    var ignoreFailure: Bool = false

    /// `/proc/sys/net/core/somaxconn` for `net.core.somaxconn`.
    var procPath: String { "/proc/sys/" + key.replacingDots() }
}

/// A problem in a tuning file, reported as `file:line: message`.
struct TuneFileError: Error, Equatable, CustomStringConvertible {
    var file: String
    var line: Int
    var message: String
    var description: String { "\(file):\(line): \(message)" }
}

enum SysctlFile {
    /// Parses sysctl.d syntax (see sysctl.d(5)): `key = value` lines, `#` or
    /// `;` comment lines, blank lines, an optional leading `-`. Inline
    /// comments are not part of the format (systemd-sysctl would keep them in
    /// the value), so a `#` after a value is rejected. A key may appear once.
    static func parse(_ text: String, file: String = "<profile>") throws(TuneFileError) -> [SysctlSetting] {
        var out: [SysctlSetting] = []
        var seen: [String: Int] = [:]
        var pendingReason = ""
        var lineNo = 0
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0.isNewline }) {
            lineNo += 1
            let line = TuneText.trim(rawLine)
            if line.isEmpty { pendingReason = ""; continue }
            if line.hasPrefix("#") || line.hasPrefix(";") {
                pendingReason = TuneText.trim(line.dropFirst())
                continue
            }
            var body = Substring(line)
            var ignore = false
            if body.hasPrefix("-") { ignore = true; body = body.dropFirst() }
            guard let eq = body.firstIndex(of: "=") else {
                throw TuneFileError(file: file, line: lineNo, message: "expected 'key = value', got '\(line)'")
            }
            let rawKey = TuneText.trim(body[..<eq])
            let rawValue = TuneText.trim(body[body.index(after: eq)...])
            guard !rawKey.isEmpty else {
                throw TuneFileError(file: file, line: lineNo, message: "missing key before '='")
            }
            guard !rawKey.contains(where: { $0 == " " || $0 == "\t" }) else {
                throw TuneFileError(file: file, line: lineNo, message: "key '\(rawKey)' contains blanks")
            }
            guard !rawValue.isEmpty else {
                throw TuneFileError(file: file, line: lineNo, message: "\(rawKey): missing value")
            }
            guard !rawValue.contains("#") else {
                throw TuneFileError(file: file, line: lineNo,
                                    message: "\(rawKey): inline comments are not allowed in sysctl.d files; put the reason on the line above")
            }
            let key = normalizeKey(rawKey)
            if let first = seen[key] {
                throw TuneFileError(file: file, line: lineNo, message: "\(key): duplicate setting (first on line \(first))")
            }
            seen[key] = lineNo
            out.append(SysctlSetting(key: key, value: TuneText.fields(rawValue).joined(separator: " "),
                                     reason: pendingReason, line: lineNo, ignoreFailure: ignore))
            pendingReason = ""
        }
        return out
    }

    /// sysctl.d rule: when the first separator is `/`, slashes separate and
    /// dots are literal (`net/ipv4/conf/eth0.100/rp_filter`); we use the
    /// dotted form with the literal dots written as `/`, like sysctl(8).
    static func normalizeKey(_ key: String) -> String {
        guard let firstSep = key.firstIndex(where: { $0 == "." || $0 == "/" }), key[firstSep] == "/" else { return key }
        return String(key.map { $0 == "/" ? "." : ($0 == "." ? "/" : $0) })
    }
}

/// One line of a limits.d file: `<domain> <type> <item> <value>`.
struct LimitEntry: Equatable, Sendable {
    var domain: String
    /// `soft`, `hard` or `-` (both).
    var type: String
    /// `nofile`, `memlock`, ...
    var item: String
    var value: LimitValue
    var reason: String
    var line: Int
}

/// An rlimit value: a number (in the item's unit) or unlimited.
enum LimitValue: Equatable, Sendable, CustomStringConvertible {
    case unlimited
    case value(UInt64)

    static func parse(_ text: String) -> LimitValue? {
        switch text {
        case "unlimited", "infinity", "-1": return .unlimited
        default: return UInt64(text).map { .value($0) }
        }
    }

    /// `self >= other` with unlimited as the largest value.
    func atLeast(_ other: LimitValue) -> Bool {
        switch (self, other) {
        case (.unlimited, _): return true
        case (.value, .unlimited): return false
        case let (.value(a), .value(b)): return a >= b
        }
    }

    var description: String {
        switch self {
        case .unlimited: return "unlimited"
        case .value(let n): return String(n)
        }
    }
}

enum LimitsFile {
    static let types: Set<String> = ["soft", "hard", "-"]

    static func parse(_ text: String, file: String = "<limits>") throws(TuneFileError) -> [LimitEntry] {
        var out: [LimitEntry] = []
        var pendingReason = ""
        var lineNo = 0
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0.isNewline }) {
            lineNo += 1
            let line = TuneText.trim(rawLine)
            if line.isEmpty { pendingReason = ""; continue }
            if line.hasPrefix("#") { pendingReason = TuneText.trim(line.dropFirst()); continue }
            let f = TuneText.fields(line)
            guard f.count == 4 else {
                throw TuneFileError(file: file, line: lineNo, message: "expected '<domain> <type> <item> <value>', got '\(line)'")
            }
            guard types.contains(f[1]) else {
                throw TuneFileError(file: file, line: lineNo, message: "type must be soft, hard or -, got '\(f[1])'")
            }
            guard let value = LimitValue.parse(f[3]) else {
                throw TuneFileError(file: file, line: lineNo, message: "\(f[2]): value must be a number or unlimited, got '\(f[3])'")
            }
            out.append(LimitEntry(domain: f[0], type: f[1], item: f[2], value: value, reason: pendingReason, line: lineNo))
            pendingReason = ""
        }
        return out
    }

    /// The hard limit the file asks for `item` (`hard` or `-` lines; a
    /// `soft`-only item counts too), the largest when several domains differ.
    static func wanted(_ item: String, in entries: [LimitEntry]) -> LimitValue? {
        let matching = entries.filter { $0.item == item }
        let hard = matching.filter { $0.type != "soft" }
        let pool = hard.isEmpty ? matching : hard
        return pool.map(\.value).reduce(nil) { acc, v in
            guard let acc else { return v }
            return v.atLeast(acc) ? v : acc
        }
    }
}

/// Small Foundation-free text helpers.
enum TuneText {
    static func isBlank(_ c: Character) -> Bool { c == " " || c == "\t" || c == "\r" || c == "\n" }

    static func trim<S: StringProtocol>(_ s: S) -> String {
        guard let first = s.firstIndex(where: { !isBlank($0) }),
              let last = s.lastIndex(where: { !isBlank($0) }) else { return "" }
        return String(s[first...last])
    }

    static func fields<S: StringProtocol>(_ s: S) -> [String] {
        String(s).split(whereSeparator: { (c: Character) in isBlank(c) }).map(String.init)
    }
}

extension String {
    fileprivate func replacingDots() -> String { String(map { $0 == "." ? "/" : ($0 == "/" ? "." : $0) }) }
}
