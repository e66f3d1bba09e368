import XCTest
import CIOUring
@testable import Edge

/// Connection-counter slots (Admission): stable per listener name, reclaimed
/// once no live table uses them and no connection counts in them, never -1.
final class AdmissionSlotTests: XCTestCase {
    private func table(_ names: [String]) throws -> RouteTable {
        var y = "listeners:\n"
        for (i, n) in names.enumerated() {
            y += "  - { name: \(n), address: \"127.0.0.1:\(30000 + i)\", max_connections: 5, cluster: api }\n"
        }
        y += "clusters:\n  - { name: api, endpoints: [\"127.0.0.1:9000\"] }\n"
        return RouteTableCompiler.compile(try ConfigLoader.parse(yaml: y, file: "edge.yaml"))
    }

    private func slots(_ t: RouteTable) -> [Int32] { t.listeners.map(\.counterSlot) }

    /// Far more distinct names over time than slots: every listener keeps accounting.
    func testSlotsAreReclaimedAcrossManyDistinctNames() throws {
        var previous = try table(["slot-stable"])
        let stable = slots(previous)[0]
        XCTAssertGreaterThanOrEqual(stable, 0)
        for i in 0..<(3 * Admission.maxListenerSlots) {
            let t = try table(["slot-stable", "slot-gen-\(i)", "slot-gen-\(i)-b"])
            let s = slots(t)
            XCTAssertTrue(s.allSatisfy { $0 >= 0 && Int($0) < Admission.maxListenerSlots }, "config \(i): \(s)")
            XCTAssertEqual(Set(s).count, s.count, "config \(i): listeners share a slot: \(s)")
            XCTAssertEqual(s[0], stable, "config \(i): a kept listener must keep its slot")
            XCTAssertFalse(slots(previous).dropFirst().contains { s.contains($0) },
                           "config \(i): reused a slot of the previous (still live) table")
            previous = t
        }
    }

    /// A slot whose cell still counts a connection is not handed to a new name,
    /// even after every table using it is gone.
    func testCountingSlotIsNotReclaimed() throws {
        var t: RouteTable? = try table(["slot-busy"])
        let busy = Int(slots(t!)[0])
        _ = edge_atomic_add_i32(Admission.listenerCells + busy, 1)
        defer { _ = edge_atomic_add_i32(Admission.listenerCells + busy, -1) }
        t = nil
        var seen = Set<Int32>()
        for i in 0..<(2 * Admission.maxListenerSlots) {
            let n = try table(["slot-probe-\(i)"])
            seen.insert(slots(n)[0])
        }
        XCTAssertFalse(seen.contains(Int32(busy)), "slot \(busy) still counts a connection but was given to a new listener")
        XCTAssertEqual(Admission.counterSlot(forListener: "slot-busy"), Int32(busy))
    }
}
