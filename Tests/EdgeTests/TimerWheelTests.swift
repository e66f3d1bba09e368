import XCTest
@testable import Edge

/// The reactor's timer wheel: deadlines fire once, in time, and cancel/re-arm
/// (done on every read) leaves no stale entries.
final class TimerWheelTests: XCTestCase {
    func testFiresAfterDeadlineOnly() {
        let w = TimerWheel(capacity: 8, nowMs: 1_000)
        w.schedule(3, atMs: 1_050)
        var fired: [Int32] = []
        w.advance(nowMs: 1_040) { fired.append($0) }
        XCTAssertEqual(fired, [])
        w.advance(nowMs: 1_060) { fired.append($0) }
        XCTAssertEqual(fired, [3])
        w.advance(nowMs: 5_000) { fired.append($0) }
        XCTAssertEqual(fired, [3], "a timer fires once")
        XCTAssertFalse(w.isScheduled(3))
    }

    func testRescheduleAndCancel() {
        let w = TimerWheel(capacity: 8, nowMs: 0)
        w.schedule(1, atMs: 100)
        w.schedule(2, atMs: 100)
        w.schedule(1, atMs: 500)   // pushed forward, like a read resetting an idle timeout
        w.cancel(2)
        var fired: [Int32] = []
        w.advance(nowMs: 200) { fired.append($0) }
        XCTAssertEqual(fired, [])
        w.advance(nowMs: 600) { fired.append($0) }
        XCTAssertEqual(fired, [1])
    }

    func testDeadlinesBeyondOneRotation() {
        // 4096 slots x 10 ms = 40.96 s per rotation; a 60 s timeout must not fire early.
        let w = TimerWheel(capacity: 4, nowMs: 0)
        w.schedule(0, atMs: 60_000)
        var fired: [Int32] = []
        var t: Int64 = 0
        while t < 59_000 { t += 1_000; w.advance(nowMs: t) { fired.append($0) } }
        XCTAssertEqual(fired, [])
        w.advance(nowMs: 61_000) { fired.append($0) }
        XCTAssertEqual(fired, [0])
    }

    func testHandlerMayCancelAnotherExpiredTimer() {
        let w = TimerWheel(capacity: 4, nowMs: 0)
        w.schedule(0, atMs: 50)
        w.schedule(1, atMs: 50)
        var fired: [Int32] = []
        w.advance(nowMs: 100) { id in
            fired.append(id)
            w.cancel(id == 0 ? 1 : 0)
        }
        XCTAssertEqual(Set(fired), [0, 1], "both were expired before any handler ran")
    }
}
