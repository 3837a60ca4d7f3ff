import DAgentWire
import XCTest
@testable import DAgentRouting

/// The small pure types of the routing core: route table (router cache), queues, rpc table, parent selector.
final class PureTypesTests: XCTestCase {
    func testRouteTableEpochsAndInvalidation() {
        var t = RouteTable()
        t.upsert("a", link: 1, session: 5, parent: "p", role: .leaf)
        t.upsert("b", link: 1, session: 6, parent: "p", role: .leaf)
        let e1 = t["a"]!.epoch
        t.upsert("a", link: 2, session: 5, parent: "q", role: .leaf)   // the name moves
        XCTAssertGreaterThan(t["a"]!.epoch, e1, "a move bumps the epoch")
        XCTAssertEqual(t.names(via: 1), ["b"])
        XCTAssertNil(t.remove("a", ifVia: 1), "a stale link cannot remove a moved name")
        XCTAssertEqual(t.removeAll(via: 1), ["b"])
        XCTAssertNil(t["b"])
        XCTAssertEqual(t["a"]?.link, 2)
    }

    func testSendQueuesOrderAndLimits() throws {
        var q = SendQueues(perDestinationLimit: 2, destinationLimit: 2)
        func env(_ dst: String, _ id: UInt64) -> Dagent_Envelope { var e = Dagent_Envelope(); e.dst = dst; e.id = id; return e }
        try q.enqueue(env("x", 1), nowNs: 0)
        try q.enqueue(env("y", 2), nowNs: 5)
        try q.enqueue(env("x", 3), nowNs: 10)
        XCTAssertThrowsError(try q.enqueue(env("x", 4), nowNs: 10))
        XCTAssertThrowsError(try q.enqueue(env("z", 5), nowNs: 10))
        XCTAssertEqual(q.expire(nowNs: 12, timeoutNs: 10).map(\.id), [1], "only the one older than the timeout")
        XCTAssertEqual(q.expire(nowNs: 15, timeoutNs: 10).map(\.id), [2])
        XCTAssertEqual(q.totalCount, 1)
        XCTAssertEqual(q.drainAll().map(\.id), [3])
        XCTAssertTrue(q.isEmpty)
    }

    func testRpcTableExpiry() {
        var t = RpcTable<Int>()
        let c1 = t.add(1, dst: "a", type: 1, nowNs: 0, timeoutNs: 10)
        let c2 = t.add(2, dst: "b", type: 1, nowNs: 0, timeoutNs: 100)
        XCTAssertNotEqual(c1, c2)
        XCTAssertEqual(t.expire(nowNs: 50).map(\.waiter), [1])
        XCTAssertNil(t.complete(cookie: c1))
        XCTAssertEqual(t.complete(cookie: c2)?.waiter, 2)
        XCTAssertEqual(t.count, 0)
    }

    func testParentSelectorFailsOverWithBackoff() {
        var s = ParentSelector(addresses: ["p1", "p2"], initialBackoffNs: 100, maxBackoffNs: 1000)
        XCTAssertEqual(s.next(nowNs: 0).index, 0)
        s.markDown(0, nowNs: 0)
        XCTAssertEqual(s.next(nowNs: 0).index, 1, "fails over to the next address")
        s.markDown(1, nowNs: 0)
        let (i, delay) = s.next(nowNs: 10)
        XCTAssertEqual(i, 0)
        XCTAssertEqual(delay, 90, "both down: wait for the soonest")
        for _ in 0..<10 { s.markDown(0, nowNs: 0) }
        XCTAssertEqual(s.candidates[0].downUntilNs, 1000, "backoff is capped")
        s.markUp(0)
        XCTAssertEqual(s.next(nowNs: 0).index, 0)
    }

}
