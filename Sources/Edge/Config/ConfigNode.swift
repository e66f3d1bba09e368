import Yams

/// A YAML node together with its dotted field path and file name, so every
/// value read from it can fail with a `file:line: field: problem` error.
/// `ConfigLoader` walks the document only through this type.
struct ConfigNode {
    let node: Node
    /// e.g. `listeners[0].routes[1].cluster`; empty for the document root.
    let path: String
    let file: String
    /// For a mapping value: the line of its key. A block list or mapping
    /// starts on the line after `key:`, but errors should point at the key.
    var keyLine: Int? = nil

    /// 1-based line (Yams marks are 1-based already).
    var line: Int { keyLine ?? node.mark?.line ?? 1 }

    func error(_ problem: String) -> ConfigError {
        ConfigError(location: SourceLocation(file: file, line: line), field: path.isEmpty ? "config" : path, problem: problem)
    }

    func error(_ e: ValueError) -> ConfigError { error(e.message) }

    var location: SourceLocation { SourceLocation(file: file, line: line) }

    /// A plain `~`, `null` or empty scalar: treated as "not given".
    var isNull: Bool {
        guard case .scalar(let s) = node, s.style == .plain else { return false }
        return s.string.isEmpty || s.string == "~" || s.string == "null" || s.string == "Null" || s.string == "NULL"
    }

    private var kindName: String {
        switch node {
        case .scalar: return isNull ? "null" : "a scalar ('\(node.string ?? "")')"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }

    // MARK: Scalars

    /// The scalar text; mappings, lists and null are errors.
    func string() throws(ConfigError) -> String {
        guard case .scalar(let s) = node, !isNull else { throw error("expected a string, got \(kindName)") }
        return s.string
    }

    /// A non-empty string with no leading/trailing spaces.
    func nonEmptyString() throws(ConfigError) -> String {
        let s = try string()
        guard !s.trimmingSpaces().isEmpty else { throw error("must not be empty") }
        return s
    }

    func int(in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        let n = try convert("an integer", ConfigValues.integer)
        guard range.contains(n) else {
            throw error("must be between \(range.lowerBound) and \(range.upperBound), got \(n)")
        }
        return n
    }

    func bool() throws(ConfigError) -> Bool {
        try convert("true or false", ConfigValues.bool)
    }

    /// Milliseconds; `min` is usually 1 so timeouts cannot be zero.
    func durationMs(min: Int = 1) throws(ConfigError) -> Int {
        let ms = try convert("a duration like 5s", ConfigValues.durationMs)
        guard ms >= min else { throw error("must be at least \(min)ms, got '\(node.string ?? "")'") }
        return ms
    }

    func sizeBytes(in range: ClosedRange<UInt64>) throws(ConfigError) -> UInt64 {
        let n = try convert("a size like 64KiB", ConfigValues.sizeBytes)
        guard range.contains(n) else {
            throw error("must be between \(Self.formatSize(range.lowerBound)) and \(Self.formatSize(range.upperBound)), got '\(node.string ?? "")'")
        }
        return n
    }

    func socketAddress(allowPortZero: Bool = false) throws(ConfigError) -> SocketAddress {
        try convert("an address like 127.0.0.1:8080") { (t: String) throws(ValueError) in
            try ConfigValues.socketAddress(t, allowPortZero: allowPortZero)
        }
    }

    /// One of `words`, exactly as written.
    func oneOf(_ words: [String], what: String) throws(ConfigError) -> String {
        let s = try scalarText("one of: \(words.joined(separator: ", "))")
        guard words.contains(s) else {
            throw error("unknown \(what) '\(s)', expected one of: \(words.joined(separator: ", "))")
        }
        return s
    }

    /// Scalar text run through a `ConfigValues` parser; its error gets this node's location.
    private func convert<T>(_ expected: String, _ parse: (String) throws(ValueError) -> T) throws(ConfigError) -> T {
        let text = try scalarText(expected)
        do { return try parse(text) } catch { throw self.error(error) }
    }

    private func scalarText(_ expected: String) throws(ConfigError) -> String {
        guard case .scalar(let s) = node, !isNull else { throw error("expected \(expected), got \(kindName)") }
        return s.string
    }

    static func formatSize(_ n: UInt64) -> String {
        if n >= 1 << 30, n % (1 << 30) == 0 { return "\(n >> 30)GiB" }
        if n >= 1 << 20, n % (1 << 20) == 0 { return "\(n >> 20)MiB" }
        if n >= 1 << 10, n % (1 << 10) == 0 { return "\(n >> 10)KiB" }
        return "\(n)B"
    }

    // MARK: Collections

    /// The items of a list, each with its indexed path. Null counts as empty.
    func list() throws(ConfigError) -> [ConfigNode] {
        if isNull { return [] }
        guard case .sequence(let seq) = node else { throw error("expected a list, got \(kindName)") }
        return seq.enumerated().map { ConfigNode(node: $0.element, path: "\(path)[\($0.offset)]", file: file) }
    }

    /// The node as a mapping restricted to `allowed` keys (null counts as empty).
    func mapping(allowed: [String]) throws(ConfigError) -> ConfigMapping {
        try ConfigMapping(self, allowed: allowed)
    }
}

/// A YAML mapping whose keys were checked against the fields a section
/// accepts: unknown and duplicate keys fail here, so typos never pass silently.
struct ConfigMapping {
    let owner: ConfigNode
    /// Keys in document order with their value nodes.
    let entries: [(key: String, keyNode: ConfigNode, value: ConfigNode)]

    init(_ owner: ConfigNode, allowed: [String]) throws(ConfigError) {
        self.owner = owner
        if owner.isNull { entries = []; return }
        guard case .mapping(let map) = owner.node else {
            throw owner.error("expected a mapping with fields: \(allowed.joined(separator: ", "))")
        }
        var seen: [String] = []
        var out: [(String, ConfigNode, ConfigNode)] = []
        for (k, v) in map {
            let keyPath = { (name: String) in owner.path.isEmpty ? name : "\(owner.path).\(name)" }
            guard case .scalar(let ks) = k else {
                throw ConfigNode(node: k, path: owner.path, file: owner.file).error("keys must be plain names")
            }
            let name = ks.string
            let keyNode = ConfigNode(node: k, path: keyPath(name), file: owner.file)
            guard allowed.contains(name) else {
                throw keyNode.error("unknown field '\(name)', expected one of: \(allowed.joined(separator: ", "))")
            }
            guard !seen.contains(name) else { throw keyNode.error("field '\(name)' is given twice") }
            seen.append(name)
            out.append((name, keyNode, ConfigNode(node: v, path: keyPath(name), file: owner.file, keyLine: keyNode.line)))
        }
        entries = out
    }

    /// The value for `key`, or nil when absent or null.
    func optional(_ key: String) -> ConfigNode? {
        guard let e = entries.first(where: { $0.key == key }), !e.value.isNull else { return nil }
        return e.value
    }

    func required(_ key: String) throws(ConfigError) -> ConfigNode {
        guard let v = optional(key) else { throw owner.error("missing required field '\(key)'") }
        return v
    }

    func has(_ key: String) -> Bool { optional(key) != nil }
}
