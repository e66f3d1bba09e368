import CHiredis
import Glibc

/// One blocking hiredis connection, owned by the shared-limit sync thread
/// (never a reactor). `~Copyable`: the context is freed exactly once. Replies
/// are copied into Swift values and freed at once.
struct RedisConnection: ~Copyable {
    enum Reply {
        case integer(Int)
        case array([Reply])
        case other
        case error(String)
    }

    private let context: UnsafeMutablePointer<redisContext>

    /// Connects within `timeoutMs`; later commands time out after it too.
    init?(host: String, port: Int, timeoutMs: Int, error: inout String) {
        let tv = timeval(tv_sec: timeoutMs / 1000, tv_usec: (timeoutMs % 1000) * 1000)
        guard let c = redisConnectWithTimeout(host, Int32(port), tv) else { error = "out of memory"; return nil }
        if c.pointee.err != 0 {
            error = withUnsafeBytes(of: c.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            redisFree(c)
            return nil
        }
        _ = redisSetTimeout(c, tv)
        _ = redisEnableKeepAlive(c)
        context = c
    }

    deinit { redisFree(context) }

    /// Sends one command; nil when the connection failed (it is then unusable).
    func command(_ args: [String]) -> Reply? {
        var lengths = args.map { $0.utf8.count }
        var cstrings = args.map { strdup($0) }
        defer { for p in cstrings { free(p) } }
        let raw = cstrings.withUnsafeMutableBufferPointer { buf in
            buf.withMemoryRebound(to: UnsafePointer<CChar>?.self) { p in
                redisCommandArgv(context, Int32(args.count), p.baseAddress, &lengths)
            }
        }
        guard let raw, context.pointee.err == 0 else {
            if let raw { freeReplyObject(raw) }
            return nil
        }
        defer { freeReplyObject(raw) }
        return RedisConnection.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    var lastError: String {
        withUnsafeBytes(of: context.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    private static func convert(_ r: UnsafeMutablePointer<redisReply>) -> Reply {
        let t = r.pointee.type
        if t == edge_redis_reply_integer() { return .integer(Int(r.pointee.integer)) }
        if t == edge_redis_reply_error() {
            let s = r.pointee.str.map { String(cString: $0) } ?? "error"
            return .error(s)
        }
        if t == edge_redis_reply_array() {
            var out: [Reply] = []
            let n = Int(r.pointee.elements)
            out.reserveCapacity(n)
            if let e = r.pointee.element {
                for i in 0..<n { if let child = e[i] { out.append(convert(child)) } else { out.append(.other) } }
            }
            return .array(out)
        }
        return .other
    }

    /// "127.0.0.1:6379" / "[::1]:6379" → host and port.
    static func split(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }
}
