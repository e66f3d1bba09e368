/// Admin endpoints added by the observability work: the token gate,
/// `GET /config` (running config, secrets redacted), `GET /clusters`,
/// `GET /listeners`, and OpenMetrics when `/metrics` is asked for it.
/// Runs on the admin thread; `nil` lets `AdminRoutes` answer.
final class AdminExtras: @unchecked Sendable {
    let auth: AdminAuthConfig
    let server: EdgeServer

    init(auth: AdminAuthConfig, server: EdgeServer) {
        self.auth = auth
        self.server = server
    }

    static let paths = ["/config", "/clusters", "/listeners", "/dashboard"]

    func respond(method: String, path: String, head: [UInt8]) -> AdminResponse? {
        // The page holds no data (its fetches carry the token), so it loads without one.
        if path == "/dashboard" && (method == "GET" || method == "HEAD") {
            return AdminResponse(status: 200, contentType: "text/html; charset=utf-8", body: DashboardPage.html)
        }
        if let denied = AdminAuth.check(auth, method: method, head: head) { return denied }
        if path == "/cache/purge" { return CachePurge.adminRespond(method: method, head: head, body: []) }
        if path == "/metrics", method == "GET" || method == "HEAD",
           let accept = AdminAuth.header("accept", in: head),
           String(decoding: accept, as: UTF8.self).contains("application/openmetrics-text") {
            return AdminResponse(status: 200, contentType: OpenMetrics.contentType,
                                 body: OpenMetrics.convert(server.renderMetrics()))
        }
        guard Self.paths.contains(path) else { return nil }
        guard method == "GET" || method == "HEAD" else {
            return AdminResponse(status: 405, body: "method not allowed\n", extraHeaders: ["Allow": "GET, HEAD"])
        }
        let config = server.reloader.config
        let body: String
        switch path {
        case "/config": body = AdminInspect.config(config)
        case "/clusters": body = AdminInspect.clusters(config, telemetry: server.telemetry)
        default: body = AdminInspect.listeners(config, workers: server.totalWorkers)
        }
        return AdminResponse(status: 200, contentType: "application/json", body: body + "\n")
    }
}
