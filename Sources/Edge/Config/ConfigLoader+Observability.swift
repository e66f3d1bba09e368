import Glibc

/// `access_log:`, `metrics:` and the admin token fields, validated with
/// `file:line: field: problem` errors.
extension ConfigLoader {
    static let accessLogFields = ["path", "format", "template", "sample", "buffer"]

    static func parseAccessLog(_ node: ConfigNode) throws(ConfigError) -> AccessLogConfig? {
        if let on = try? node.bool() { return on ? AccessLogConfig() : nil }
        let m = try node.mapping(allowed: accessLogFields)
        var a = AccessLogConfig()
        if let n = m.optional("path") {
            a.path = try n.nonEmptyString()
            if a.path != "stderr" && !a.path.hasPrefix("/") {
                throw n.error("expected 'stderr' or an absolute file path, got '\(a.path)'")
            }
        }
        if let n = m.optional("format") {
            a.format = AccessLogConfig.Format(rawValue: try n.oneOf(["json", "text"], what: "access log format")) ?? .json
        }
        if let n = m.optional("template") {
            guard a.format == .text else { throw n.error("template needs 'format: text'") }
            a.template = try n.nonEmptyString()
            if case .failure(let problem) = AccessLogFormat.parse(a.template) { throw n.error(problem.message) }
        }
        if let n = m.optional("sample") {
            let text = try n.string()
            guard let v = Double(text), v >= 0, v <= 1 else {
                throw n.error("expected a fraction between 0 and 1 (e.g. 0.1), got '\(text)'")
            }
            a.sample = v
        }
        if let n = m.optional("buffer") { a.bufferBytes = Int(try n.sizeBytes(in: 4096...(64 << 20))) }
        return a
    }

    static func parseMetrics(_ node: ConfigNode) throws(ConfigError) -> MetricsConfig {
        let m = try node.mapping(allowed: ["histograms"])
        var c = MetricsConfig()
        if let n = m.optional("histograms") { c.histograms = try n.bool() }
        return c
    }

    /// `token_file`/`token_env` (one of them) and `auth_reads`.
    static func parseAdminAuth(_ m: ConfigMapping) throws(ConfigError) -> AdminAuthConfig {
        var a = AdminAuthConfig()
        if let n = m.optional("token_file"), let e = m.optional("token_env") {
            _ = n
            throw e.error("give either 'token_file' or 'token_env', not both")
        }
        if let n = m.optional("token_file") {
            let path = try n.nonEmptyString()
            let text: String
            do { text = try readFile(path) } catch {
                throw n.error("cannot read token file \(path): \(error.message)")
            }
            a.token = try checkedToken(text, n, source: "token file \(path)")
            a.tokenSource = "file"
        }
        if let n = m.optional("token_env") {
            let name = try n.nonEmptyString()
            guard let value = getenv(name).map({ String(cString: $0) }) else {
                throw n.error("environment variable \(name) is not set")
            }
            a.token = try checkedToken(value, n, source: "environment variable \(name)")
            a.tokenSource = "env"
        }
        if let n = m.optional("auth_reads") {
            a.authReads = try n.bool()
            if a.authReads && a.token == nil { throw n.error("auth_reads needs token_file or token_env") }
        }
        return a
    }

    private static func checkedToken(_ text: String, _ n: ConfigNode, source: String) throws(ConfigError) -> [UInt8] {
        let token = Array(text.trimmingSpaces().utf8.filter { $0 != 10 && $0 != 13 })
        guard token.count >= 16 else { throw n.error("\(source): the token must be at least 16 characters") }
        guard token.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            throw n.error("\(source): the token must be printable ASCII without spaces")
        }
        return token
    }
}

extension ConfigLoader {
    /// A route `name:`: becomes a metrics label and an access-log field, so
    /// it stays short and plain.
    static func metricsLabel(_ n: ConfigNode) throws(ConfigError) -> String {
        let s = try n.nonEmptyString()
        guard s.utf8.count <= 64, s.utf8.allSatisfy({ b in
            (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 45 || b == 95 || b == 46 || b == 47
        }) else {
            throw n.error("a route name is up to 64 letters, digits, '-', '_', '.' or '/', got '\(s)'")
        }
        return s
    }
}

extension ConfigLoader {
    static func parseTracing(_ node: ConfigNode) throws(ConfigError) -> TracingConfig? {
        if let on = try? node.bool(), !on { return nil }
        let m = try node.mapping(allowed: ["collector", "sample", "service_name"])
        let collectorNode = try m.required("collector")
        var t = TracingConfig(collector: try collectorNode.socketAddress())
        if let n = m.optional("sample") {
            let text = try n.string()
            guard let v = Double(text), v >= 0, v <= 1 else {
                throw n.error("expected a fraction between 0 and 1 (e.g. 0.01), got '\(text)'")
            }
            t.sample = v
        }
        if let n = m.optional("service_name") { t.serviceName = try metricsLabel(n) }
        return t
    }
}
