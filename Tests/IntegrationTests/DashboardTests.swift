// The live dashboard in a real browser: headless Chromium loads /dashboard
// while wrk drives traffic through edge; the rendered DOM must show non-zero
// live numbers. Set EDGE_DASHBOARD_SCREENSHOT=path to keep a screenshot
// (docs/dashboard.png was made that way).

import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class DashboardTests: EdgeTestCase {
    func chromium(_ args: [String], timeout: Double) throws -> CommandResult {
        let bin = try Paths.require("chromium")
        let dir = try Paths.makeTempDir("chromium")
        defer { try? FileManager.default.removeItem(at: dir) }
        return try runCommand(bin, ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                    "--user-data-dir=\(dir.path)", "--window-size=1200,760"] + args, timeout: timeout)
    }

    func testDashboardShowsLiveNumbersUnderLoad() throws {
        let wrk = try Paths.require("wrk")
        var o = EdgeOptions()
        o.extraRoutes = "      - match: { path_prefix: \"/named/\" }\n        cluster: up\n        strip_prefix: true\n        name: named"
        let h = try startEdge(o)
        let page = try HTTP.get(port: h.adminPort, "/dashboard")
        XCTAssertEqual(page.status, 200)
        XCTAssertTrue(page.header("content-type")?.hasPrefix("text/html") == true)
        XCTAssertFalse(page.text.contains("http://") || page.text.contains("https://"), "the page must be self-contained (no CDN)")

        // Bounded load: wrk stops by itself; stopped by PID in any case.
        let load = try ManagedProcess(name: "wrk", executable: wrk,
                                      arguments: ["-t1", "-c8", "-d25s", "http://127.0.0.1:\(h.listenPort)/named/echo"], dir: h.dir)
        defer { load.stop() }
        let url = "http://127.0.0.1:\(h.adminPort)/dashboard"
        var rps = 0.0, dom = ""
        for _ in 0..<3 where rps <= 0 {
            OS.sleepMs(1500)
            let r = try chromium(["--virtual-time-budget=4000", "--dump-dom", url], timeout: 60)
            dom = r.stdoutText
            rps = Self.number(in: dom, id: "rps") ?? 0
        }
        XCTAssertGreaterThan(rps, 0, "requests/s shown by the dashboard under load:\n\(dom.prefix(3000))")
        XCTAssertTrue(dom.contains("web / named"), "route row present")
        XCTAssertTrue(dom.contains("127.0.0.1:\(h.upstreamPort)"), "endpoint of cluster up listed")
        if let out = ProcessInfo.processInfo.environment["EDGE_DASHBOARD_SCREENSHOT"], !out.isEmpty {
            let r = try chromium(["--virtual-time-budget=4000", "--screenshot=\(out)", url], timeout: 60)
            XCTAssertTrue(FileManager.default.fileExists(atPath: out), r.stderr)
        }
        XCTAssertTrue(h.edge?.isRunning == true)
    }

    /// The number inside `<b id="ID">...</b>` of the rendered page.
    static func number(in dom: String, id: String) -> Double? {
        guard let r = dom.range(of: "id=\"\(id)\">") else { return nil }
        let rest = dom[r.upperBound...]
        guard let end = rest.firstIndex(of: "<") else { return nil }
        return Double(rest[..<end].trimmingCharacters(in: .whitespaces))
    }
}
