import DAgentNode
import Foundation
import XCTest

/// `SendWindow` (`send_window_bytes`): room is taken up to the bound, a taker over it waits
/// until room is given back or its timeout passes, a message larger than the window goes
/// through alone, and 0 means no bound.
final class SendWindowTests: XCTestCase {
    func testTakesUpToTheBoundThenTimesOut() {
        let w = SendWindow(limit: 100)
        XCTAssertTrue(w.acquire(60, timeout: 0))
        XCTAssertTrue(w.acquire(40, timeout: 0))
        XCTAssertEqual(w.heldBytes, 100)
        XCTAssertTrue(w.wouldWait(1))
        let t0 = Date()
        XCTAssertFalse(w.acquire(1, timeout: 0.05))
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(t0), 0.04)
        XCTAssertEqual(w.heldBytes, 100, "a failed acquire takes nothing")
        w.release(60)
        XCTAssertFalse(w.wouldWait(60))
        XCTAssertTrue(w.acquire(60, timeout: 0))
    }

    func testAMessageLargerThanTheWindowGoesThroughAlone() {
        let w = SendWindow(limit: 100)
        XCTAssertTrue(w.acquire(500, timeout: 0), "an empty window lets any one message through")
        XCTAssertFalse(w.acquire(1, timeout: 0))
        w.release(500)
        XCTAssertEqual(w.heldBytes, 0)
        XCTAssertTrue(w.acquire(1, timeout: 0))
    }

    func testAWaitingTakerWakesWhenRoomComesBack() {
        let w = SendWindow(limit: 10)
        XCTAssertTrue(w.acquire(10, timeout: 0))
        let took = expectation(description: "the waiting acquire returns true")
        Thread {
            if w.acquire(5, timeout: 10) { took.fulfill() }
        }.start()
        Thread.sleep(forTimeInterval: 0.05)
        XCTAssertEqual(w.heldBytes, 10, "still waiting")
        w.release(10)
        wait(for: [took], timeout: 5)
        XCTAssertEqual(w.heldBytes, 5)
    }

    func testZeroMeansNoBound() {
        let w = SendWindow(limit: 0)
        for _ in 0..<1000 { XCTAssertTrue(w.acquire(1 << 20, timeout: 0)) }
        XCTAssertFalse(w.wouldWait(1 << 30))
        XCTAssertEqual(w.heldBytes, 0, "nothing is counted without a bound")
    }

    func testTheWindowInEffectIsAtMostHalfTheSlowConsumerLimit() {
        var c = NodeConfig(name: "n")
        XCTAssertEqual(c.effectiveSendWindowBytes, 8 << 20, "the default")
        c.slowConsumerBytes = 1 << 20
        XCTAssertEqual(c.effectiveSendWindowBytes, 512 << 10, "a link is never cut before its sender waits")
        c.sendWindowBytes = 0
        XCTAssertEqual(c.effectiveSendWindowBytes, 0, "0: no window")
    }
}
