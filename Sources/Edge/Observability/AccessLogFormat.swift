/// Fields an access-log line can carry. JSON lines carry all of them in this
/// order; a text template picks some with `$name`.
enum AccessLogField: UInt8, CaseIterable, Sendable {
    case time, requestId, client, listener, route, cluster, endpoint, method, authority, path, proto
    case status, bytesIn, bytesOut, connectMs, firstByteMs, totalMs, error
    /// Filled by the TLS and gateway work when they land; empty until then.
    case tlsVersion, sni, consumer

    var name: String {
        switch self {
        case .time: return "time"
        case .requestId: return "request_id"
        case .client: return "client"
        case .listener: return "listener"
        case .route: return "route"
        case .cluster: return "cluster"
        case .endpoint: return "endpoint"
        case .method: return "method"
        case .authority: return "authority"
        case .path: return "path"
        case .proto: return "protocol"
        case .status: return "status"
        case .bytesIn: return "bytes_in"
        case .bytesOut: return "bytes_out"
        case .connectMs: return "upstream_connect_ms"
        case .firstByteMs: return "upstream_first_byte_ms"
        case .totalMs: return "total_ms"
        case .error: return "error"
        case .tlsVersion: return "tls_version"
        case .sni: return "sni"
        case .consumer: return "consumer"
        }
    }
}

/// One step of a compiled line format: literal bytes, then (optionally) a field.
struct AccessLogOp: Sendable {
    var literal: StaticBytes
    /// nil: literal only.
    var field: AccessLogField?
}

/// A compiled line format, built once at start and kept for the process's
/// life (the ops and literal bytes are never freed), read by every reactor.
struct AccessLogFormat: @unchecked Sendable {
    var json: Bool
    var ops: UnsafeBufferPointer<AccessLogOp>

    struct Problem: Error { var message: String }

    /// `$name` placeholders between literal text; `$$` is a dollar sign.
    static func parse(_ template: String) -> Result<[(String, AccessLogField?)], Problem> {
        var out: [(String, AccessLogField?)] = []
        var literal = ""
        let bytes = Array(template.utf8)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            guard b == UInt8(ascii: "$") else { literal.unicodeScalars.append(Unicode.Scalar(b)); i += 1; continue }
            if i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "$") { literal += "$"; i += 2; continue }
            var j = i + 1
            while j < bytes.count && ((bytes[j] >= 97 && bytes[j] <= 122) || bytes[j] == 95) { j += 1 }
            let name = String(decoding: bytes[(i + 1)..<j], as: UTF8.self)
            guard let field = AccessLogField.allCases.first(where: { $0.name == name }) else {
                let known = AccessLogField.allCases.map(\.name).joined(separator: ", ")
                return .failure(Problem(message: "unknown access log field '$\(name)'; known: \(known)"))
            }
            out.append((literal, field))
            literal = ""
            i = j
        }
        if !literal.isEmpty { out.append((literal, nil)) }
        return .success(out)
    }

    /// Compiles the config's format. Validation already ran in the loader.
    static func compile(_ config: AccessLogConfig) -> AccessLogFormat {
        var steps: [(String, AccessLogField?)] = []
        if config.format == .json {
            // Keys live in the literals, so the hot path never touches a String.
            for (k, f) in AccessLogField.allCases.enumerated() { steps.append(((k == 0 ? "{" : ",") + "\"\(f.name)\":", f)) }
            steps.append(("}", nil))
        } else if case .success(let s) = parse(config.template) {
            steps = s
        }
        let ops = UnsafeMutableBufferPointer<AccessLogOp>.allocate(capacity: max(steps.count, 1))
        for (k, (text, field)) in steps.enumerated() {
            let bytes = Array(text.utf8)
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
            bytes.withUnsafeBytes { if let b = $0.baseAddress { p.copyMemory(from: b, byteCount: bytes.count) } }
            ops[k] = AccessLogOp(literal: StaticBytes(base: UnsafeRawPointer(p), count: bytes.count), field: field)
        }
        return AccessLogFormat(json: config.format == .json, ops: UnsafeBufferPointer(rebasing: ops[0..<steps.count]))
    }
}
