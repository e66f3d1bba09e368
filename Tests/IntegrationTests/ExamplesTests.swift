import Foundation
import XCTest

/// Every config in examples/ (the ones the README quotes) passes `edge validate`.
final class ExamplesTests: XCTestCase {
    func testEveryExampleValidates() throws {
        let dir = Paths.repoRoot.appendingPathComponent("examples")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 3, "examples: \(files)")
        // The HTTPS listener's demo certificates (what `make run` generates).
        if !FileManager.default.fileExists(atPath: dir.appendingPathComponent("certs/server.pem").path) {
            let g = try runCommand(try Paths.edgeBinary(), ["gen-certs", "--hostname", "localhost", "--out", dir.appendingPathComponent("certs").path])
            XCTAssertEqual(g.status, 0, g.stderr)
        }
        for f in files {
            let r = try runCommand(try Paths.edgeBinary(), ["validate", "--config", dir.appendingPathComponent(f).path])
            XCTAssertEqual(r.status, 0, "\(f): \(r.stderr)")
            XCTAssertTrue(r.stdoutText.hasPrefix("config OK"), "\(f): \(r.stdoutText)")
        }
    }
}
