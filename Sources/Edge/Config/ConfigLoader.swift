import CIOUring
import Glibc
import Yams

/// Reads `edge.yaml` into a validated `EdgeConfig`. Works on Yams's composed
/// `Node` tree (not Codable) so every error names file, line and field.
/// Checks run in a fixed order (runtime, admin, clusters, listeners, then
/// cross-checks) and the first problem is reported, so output is deterministic.
package enum ConfigLoader {
    static let rootFields = ["runtime", "admin", "listeners", "clusters", "access_log", "metrics", "tracing", "consumers", "policies", "redis"]

    /// Reads and parses a file. Unreadable files fail with `FILE: cannot read: <strerror>`.
    static func load(path: String) throws(ConfigError) -> EdgeConfig {
        let text: String
        do { text = try readFile(path) } catch {
            throw ConfigError(location: SourceLocation(file: path, line: 0), field: "", problem: "cannot read: \(error.message)")
        }
        return try parse(yaml: text, file: path)
    }

    /// Parses YAML text; `file` is only used in error messages.
    package static func parse(yaml: String, file: String) throws(ConfigError) -> EdgeConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let e as YamlError {
            throw syntaxError(e, file: file)
        } catch {
            throw ConfigError(location: SourceLocation(file: file, line: 1), field: "", problem: "invalid YAML: \(error)")
        }
        guard let root else {
            throw ConfigError(location: SourceLocation(file: file, line: 1), field: "listeners",
                              problem: "the config is empty; at least one listener is required")
        }
        let doc = ConfigNode(node: root, path: "", file: file)
        let fields = try doc.mapping(allowed: rootFields)

        var config = EdgeConfig()
        if let n = fields.optional("runtime") { config.runtime = try parseRuntime(n) }
        if let n = fields.optional("admin") {
            config.admin = try parseAdmin(n)
        } else {
            config.admin.address = defaultAdminAddress()
        }
        if let n = fields.optional("clusters") { config.clusters = try parseClusters(n) }
        if let n = fields.optional("access_log") { config.observability.accessLog = try parseAccessLog(n) }
        if let n = fields.optional("metrics") { config.observability.metrics = try parseMetrics(n) }
        if let n = fields.optional("tracing") { config.observability.tracing = try parseTracing(n) }
        guard let listeners = fields.optional("listeners") else {
            throw doc.error("missing required field 'listeners'")
        }
        if let n = fields.optional("consumers") { config.consumers = try parseConsumers(n) }
        if let n = fields.optional("redis") { config.redis = try parseRedis(n) }
        if let n = fields.optional("policies") { config.policies = try parsePolicies(n, consumers: config.consumers) }
        try resolveSharedLimits(&config)
        config.listeners = try parseListeners(listeners, clusters: config.clusters)
        try checkPolicyReferences(config)
        try checkAdminAddress(config, fields: fields)
        return config
    }

    // MARK: runtime / admin

    static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    static func parseRuntime(_ node: ConfigNode) throws(ConfigError) -> RuntimeConfig {
        let m = try node.mapping(allowed: ["workers", "drain_timeout", "log_format", "log_level",
                                           "buffer_size", "buffer_count", "max_connections_per_worker", "pid_file",
                                           "max_connections", "max_loop_lag", "trickle_read_interval"])
        var r = RuntimeConfig()
        if let n = m.optional("workers") {
            if (try? n.string()) == "auto" { r.workers = nil } else {
                guard (try? n.int(in: Int.min...Int.max)) != nil else {
                    throw n.error("expected 'auto' or a number of workers, got '\(n.node.string ?? "")'")
                }
                r.workers = try n.int(in: 1...1024)
            }
        }
        if let n = m.optional("drain_timeout") { r.drainTimeoutMs = try n.durationMs(min: 0) }
        if let n = m.optional("log_format") { r.logFormat = try n.oneOf(["text", "json"], what: "log format") }
        if let n = m.optional("log_level") { r.logLevel = try n.oneOf(logLevels, what: "log level") }
        if let n = m.optional("buffer_size") { r.bufferSize = Int(try n.sizeBytes(in: 512...(1 << 20))) }
        if let n = m.optional("buffer_count") {
            let c = try n.int(in: 1...32768)
            guard c & (c - 1) == 0 else {
                throw n.error("must be a power of two (io_uring buffer ring), got \(c)")
            }
            r.bufferCount = c
        }
        if let n = m.optional("max_connections_per_worker") {
            r.maxConnectionsPerWorker = try n.int(in: 1...1_048_576)
        }
        if let n = m.optional("max_connections") { r.maxConnections = try n.int(in: 0...100_000_000) }
        if let n = m.optional("max_loop_lag") {
            if (try? n.string()) == "off" { r.maxLoopLagMs = 0 } else { r.maxLoopLagMs = try n.durationMs(min: 1) }
        }
        if let n = m.optional("trickle_read_interval") {
            if (try? n.string()) == "off" { r.trickleReadIntervalMs = 0 } else {
                r.trickleReadIntervalMs = try n.durationMs(min: 1)
                guard r.trickleReadIntervalMs <= 1000 else {
                    throw n.error("at most 1s (reads of a trickling head wait this long), got \(r.trickleReadIntervalMs)ms")
                }
            }
        }
        if let n = m.optional("pid_file") {
            let p = try n.nonEmptyString()
            // `edge reload` finds the process through it: a relative path would depend on the cwd.
            guard p.hasPrefix("/"), !p.hasSuffix("/"), !p.utf8.contains(0) else {
                throw n.error("must be an absolute file path like /run/edge.pid, got '\(p)'")
            }
            r.pidFile = p
        }
        return r
    }

    static func parseAdmin(_ node: ConfigNode) throws(ConfigError) -> AdminConfig {
        let m = try node.mapping(allowed: ["address", "token_file", "token_env", "auth_reads"])
        var a = AdminConfig()
        a.auth = try parseAdminAuth(m)
        guard let n = m.optional("address") else {
            a.address = defaultAdminAddress()
            return a
        }
        let text = try n.string()
        if text == "off" || text == "false" {
            a.address = nil
            a.addressText = "off"
        } else {
            a.address = try n.socketAddress()
            a.addressText = text
        }
        return a
    }

    /// The built-in `127.0.0.1:9901`.
    static func defaultAdminAddress() -> SocketAddress? {
        try? ConfigValues.socketAddress(AdminConfig().addressText)
    }

    /// The admin port must not collide with a listener.
    static func checkAdminAddress(_ config: EdgeConfig, fields: ConfigMapping) throws(ConfigError) {
        guard let admin = config.admin.address else { return }
        for (i, l) in config.listeners.enumerated() where l.address.canonicalKey == admin.canonicalKey {
            let node = fields.optional("admin") ?? fields.owner
            throw ConfigError(location: node.location, field: "admin.address",
                              problem: "\(admin.text) is also the address of listeners[\(i)] '\(l.name)'")
        }
    }

    // MARK: helpers

    /// Names of listeners and clusters: used in logs and metric labels.
    static func name(_ node: ConfigNode) throws(ConfigError) -> String {
        let s = try node.nonEmptyString()
        let ok = s.count <= 64 && s.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "_" || $0 == "-" || $0 == "."
        }
        guard ok else { throw node.error("names may use letters, digits, '_', '-' and '.' (at most 64), got '\(s)'") }
        return s
    }

    static func syntaxError(_ e: YamlError, file: String) -> ConfigError {
        let line: Int
        let problem: String
        switch e {
        case .scanner(let ctx, let p, let mark, _), .parser(let ctx, let p, let mark, _), .composer(let ctx, let p, let mark, _):
            line = mark.line
            problem = ctx.map { "\(p) \($0.text)" } ?? p
        case .reader(let p, _, _, _):
            line = 1
            problem = p
        default:
            line = 1
            problem = "\(e)"
        }
        return ConfigError(location: SourceLocation(file: file, line: max(line, 1)), field: "", problem: "YAML syntax error: \(problem)")
    }

    struct ReadError: Error { var message: String }

    /// Reads a whole file with POSIX calls (no Foundation on this path).
    static func readFile(_ path: String) throws(ReadError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ReadError(message: String(cString: strerror(errno))) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ReadError(message: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            if bytes.count > 16 << 20 { throw ReadError(message: "file is larger than 16MiB") }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ReadError(message: "file is not valid UTF-8")
        }
        return text
    }
}

extension EdgeConfig {
    /// Total routes over all listeners (for `edge validate`'s summary).
    package var routeCount: Int { listeners.reduce(0) { $0 + $1.routes.count } }

    /// `config OK: N listeners, M routes, K clusters`.
    package var summary: String {
        "config OK: \(listeners.count) listener\(listeners.count == 1 ? "" : "s"), "
            + "\(routeCount) route\(routeCount == 1 ? "" : "s"), "
            + "\(clusters.count) cluster\(clusters.count == 1 ? "" : "s")"
    }
}
