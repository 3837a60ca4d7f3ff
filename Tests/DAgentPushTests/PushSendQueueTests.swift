import DAgentPush
import NIOCore
import XCTest

final class PushSendQueueTests: XCTestCase {
    func buf(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }

    func testLimitAndOrder() {
        var q = PushSendQueue(limitBytes: 10)
        XCTAssertEqual(q.push(buf("abcd")), .queued)
        XCTAssertEqual(q.push(buf("efgh")), .queued)
        XCTAssertEqual(q.push(buf("ijk")), .overLimit(wouldBe: 11))
        XCTAssertEqual(q.bytes, 8)
        XCTAssertEqual(q.pop().map { String(buffer: $0) }, "abcd")
        XCTAssertEqual(q.push(buf("ijk")), .queued)
        XCTAssertEqual(q.pop().map { String(buffer: $0) }, "efgh")
        XCTAssertEqual(q.pop().map { String(buffer: $0) }, "ijk")
        XCTAssertNil(q.pop())
        XCTAssertEqual(q.bytes, 0)
        XCTAssertTrue(q.isEmpty)
    }

    func testConflationKeepsLatestInPlace() {
        var q = PushSendQueue(limitBytes: 100)
        XCTAssertEqual(q.push(buf("m1"), conflateKey: "m"), .queued)
        XCTAssertEqual(q.push(buf("x1")), .queued)
        XCTAssertEqual(q.push(buf("m2"), conflateKey: "m"), .replaced)
        XCTAssertEqual(q.push(buf("m333"), conflateKey: "m"), .replaced)
        XCTAssertEqual(q.count, 2)
        XCTAssertEqual(q.bytes, 6)
        XCTAssertEqual(q.pop().map { String(buffer: $0) }, "m333")
        // After the key's frame left, the next one queues anew.
        XCTAssertEqual(q.push(buf("m4"), conflateKey: "m"), .queued)
        XCTAssertEqual(q.pop().map { String(buffer: $0) }, "x1")
        XCTAssertEqual(q.pop().map { String(buffer: $0) }, "m4")
    }

    func testConflationStillBounded() {
        var q = PushSendQueue(limitBytes: 5)
        XCTAssertEqual(q.push(buf("abc"), conflateKey: "k"), .queued)
        XCTAssertEqual(q.push(buf("abcdef"), conflateKey: "k"), .overLimit(wouldBe: 6))
        XCTAssertEqual(q.bytes, 3)
    }
}
