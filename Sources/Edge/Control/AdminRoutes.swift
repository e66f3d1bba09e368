/// A parsed admin request line. The admin API only needs method and path, so
/// this is far simpler (and stricter) than the data-path parser.
struct AdminRequest: Equatable {
    var method: String
    /// Path without the query string.
    var path: String

    /// Index just past the blank line ending the head, if it has arrived.
    static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 3..<bytes.count where bytes[i] == 10 {
            if bytes[i - 1] == 13 && bytes[i - 2] == 10 && bytes[i - 3] == 13 { return i + 1 }
        }
        return nil
    }

    /// Parses `METHOD SP /path[?query] SP HTTP/1.x CRLF ...`; nil if malformed.
    init?(head: [UInt8]) {
        guard let eol = head.firstIndex(of: 13) else { return nil }
        let parts = head[..<eol].split(separator: 32, omittingEmptySubsequences: false)
        guard parts.count == 3,
              let method = String(validating: parts[0], as: UTF8.self),
              let target = String(validating: parts[1], as: UTF8.self),
              let version = String(validating: parts[2], as: UTF8.self),
              !method.isEmpty, method.utf8.allSatisfy(ConfigLoader.isTokenByte),
              target.hasPrefix("/"), version == "HTTP/1.1" || version == "HTTP/1.0" else { return nil }
        self.method = method
        self.path = String(target.prefix { $0 != "?" && $0 != "#" })
    }
}

/// A complete admin reply; always sent with Content-Length and `Connection: close`.
struct AdminResponse: Equatable {
    var status: Int
    var contentType = "text/plain; charset=utf-8"
    var body: String
    var extraHeaders: [String: String] = [:]
    var omitBody = false

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 202: return "Accepted"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 431: return "Request Header Fields Too Large"
        case 503: return "Service Unavailable"
        default: return "Unknown"
        }
    }
}

/// Maps admin paths to replies. Pure (no sockets) so it is unit-tested directly.
enum AdminRoutes {
    static let paths = ["/health", "/health/live", "/health/ready", "/metrics", "/reload", "/drain"]

    static func respond(method: String, path: String, provider: AdminStatusProvider) -> AdminResponse {
        guard paths.contains(path) else { return AdminResponse(status: 404, body: "not found\n") }
        switch (method, path) {
        case ("POST", "/reload"):
            // Same validation as `edge validate`; a rejected config keeps the running one.
            let result = provider.reload()
            return AdminResponse(status: result.ok ? 200 : 400, contentType: "application/json", body: result.json + "\n")
        case ("GET", "/reload"), ("HEAD", "/reload"):
            return AdminResponse(status: 200, contentType: "application/json", body: provider.lastReload.json + "\n")
        case ("POST", "/drain"):
            provider.beginDrain()
            return AdminResponse(status: 202, body: "draining\n")
        case (_, "/reload"):
            return AdminResponse(status: 405, body: "method not allowed\n", extraHeaders: ["Allow": "GET, POST"])
        case (_, "/drain"):
            return AdminResponse(status: 405, body: "method not allowed\n", extraHeaders: ["Allow": "POST"])
        default:
            break
        }
        guard method == "GET" || method == "HEAD" else {
            return AdminResponse(status: 405, body: "method not allowed\n", extraHeaders: ["Allow": "GET, HEAD"])
        }
        switch path {
        case "/health/live":
            return AdminResponse(status: 200, body: "live\n")
        case "/health/ready":
            if provider.isDraining { return AdminResponse(status: 503, body: "draining\n") }
            if !isReady(provider) { return AdminResponse(status: 503, body: "not ready\n") }
            let lagging = provider.laggingWorkers
            if !lagging.isEmpty {
                let list = lagging.map { "worker \($0.worker) is \($0.behind) config publication(s) behind" }.joined(separator: "; ")
                return AdminResponse(status: 503, body: "not ready: \(list)\n")
            }
            return AdminResponse(status: 200, body: "ready\n")
        case "/metrics":
            return AdminResponse(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: provider.renderMetrics())
        default: // "/health"
            let total = provider.totalWorkers, ready = provider.readyWorkers, draining = provider.isDraining
            let status = draining ? "draining" : (isReady(provider) ? "ok" : "starting")
            let body = #"{"status":"\#(status)","workers":{"total":\#(total),"ready":\#(ready)},"draining":\#(draining)}"# + "\n"
            return AdminResponse(status: 200, contentType: "application/json", body: body)
        }
    }

    /// All workers up (and at least one exists).
    static func isReady(_ p: AdminStatusProvider) -> Bool {
        p.totalWorkers > 0 && p.readyWorkers >= p.totalWorkers
    }
}
