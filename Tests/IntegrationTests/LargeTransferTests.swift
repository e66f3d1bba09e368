// Streaming: 1 GiB each way through the proxy with bounded memory. edge's
// VmRSS is sampled every 100 ms and must stay under 64 MiB; bodies are
// verified with sha256 (and, for downloads, byte-by-byte against the pattern).

import Foundation
import XCTest

final class LargeTransferTests: EdgeTestCase {
    static let oneGiB = 1 << 30
    static let rssLimitKiB = 64 * 1024

    private func runClient(_ args: [String]) throws -> [String: Any] {
        let py = try Paths.require("python3")
        let r = try runCommand(py, [Paths.upstreamScript] + args, timeout: 600)
        guard r.status == 0 else { throw HarnessError("client \(args) failed (\(r.status)): \(r.stderr.suffix(2000))") }
        guard let j = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any] else {
            throw HarnessError("client printed no JSON: \(r.stdoutText.prefix(500))")
        }
        return j
    }

    private func upload(size: Int, chunked: Bool) throws {
        let h = try startEdge()
        let expected = try TestData.patternSHA256(size)
        var args = ["upload", "--port", String(h.listenPort), "--path", "/upload", "--size", String(size), "--timeout", "120"]
        if chunked { args.append("--chunked") }
        let t0 = OS.now()
        let (j, maxKiB, samples) = try sampleRSS(pid: h.edgePID) { try runClient(args) }
        let secs = OS.now() - t0
        print(String(format: "upload %d MiB (%@): %.1fs, %.0f MiB/s, edge max VmRSS %d KiB over %d samples",
                     size >> 20, chunked ? "chunked" : "content-length", secs, Double(size) / 1_048_576 / secs,
                     maxKiB, samples))
        XCTAssertEqual(j["status"] as? Int, 200, "\(j)")
        let body = (j["body"] as? String) ?? ""
        let resp = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] ?? [:]
        XCTAssertEqual(resp["length"] as? Int, size, "upstream received \(resp["length"] ?? "nil") bytes")
        XCTAssertEqual(resp["sha256"] as? String, expected, "body corrupted in transit")
        XCTAssertGreaterThan(samples, 0, "RSS was never sampled")
        XCTAssertLessThan(maxKiB, Self.rssLimitKiB, "edge RSS reached \(maxKiB) KiB while streaming an upload")
    }

    private func download(size: Int, chunked: Bool) throws {
        let h = try startEdge()
        let expected = try TestData.patternSHA256(size)
        let path = "/bytes?n=\(size)" + (chunked ? "&chunked=1" : "")
        let t0 = OS.now()
        let (j, maxKiB, samples) = try sampleRSS(pid: h.edgePID) {
            try runClient(["download", "--port", String(h.listenPort), "--path", path, "--timeout", "120"])
        }
        let secs = OS.now() - t0
        print(String(format: "download %d MiB (%@): %.1fs, %.0f MiB/s, edge max VmRSS %d KiB over %d samples",
                     size >> 20, chunked ? "chunked" : "content-length", secs, Double(size) / 1_048_576 / secs,
                     maxKiB, samples))
        XCTAssertEqual(j["status"] as? Int, 200, "\(j)")
        XCTAssertEqual(j["length"] as? Int, size)
        XCTAssertEqual(j["pattern_ok"] as? Bool, true, "downloaded bytes differ from the pattern")
        XCTAssertEqual(j["sha256"] as? String, expected)
        XCTAssertGreaterThan(samples, 0, "RSS was never sampled")
        XCTAssertLessThan(maxKiB, Self.rssLimitKiB, "edge RSS reached \(maxKiB) KiB while streaming a download")
    }

    func testOneGiBUploadContentLength() throws { try upload(size: Self.oneGiB, chunked: false) }
    func testOneGiBDownloadContentLength() throws { try download(size: Self.oneGiB, chunked: false) }
    func testChunkedUpload256MiB() throws { try upload(size: 256 << 20, chunked: true) }
    func testChunkedDownload256MiB() throws { try download(size: 256 << 20, chunked: true) }
}
