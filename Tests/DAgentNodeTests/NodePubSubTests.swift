import DAgentNode
import DAgentRouting
import DAgentTestSupport
import DAgentWire
import Foundation
import NIOCore
import XCTest

/// The Swift pub/sub API of `Node` on real TCP links (in one process).
final class NodePubSubTests: XCTestCase {
    func testSubscribePublishCancelAcrossTwoHops() throws {
        let port = freePort()
        let root = try TCPTree.root(port: port)
        defer { try? root.shutdown() }
        func leaf(_ name: String) throws -> Node { try TCPTree.leaf(name, port: port) }
        let sub = try leaf("sub")
        defer { try? sub.shutdown() }
        let pub = try leaf("pub")
        defer { try? pub.shutdown() }

        let lock = NSLock()
        var got: [(String, String, String)] = []
        let s = try sub.subscribe("orders.>") { e in
            lock.lock(); got.append((e.topic, e.src, String(decoding: e.payload, as: UTF8.self))); lock.unlock()
        }.wait()
        try waitFor("interest at the publisher") {
            try pub.treeSnapshot().wait().links.first { $0.isParent }?.interest.map(\.pattern) == ["orders.>"]
        }
        for i in 0..<100 { try pub.publish("orders.eu.\(i)", payload: Data("p\(i)".utf8)).wait() }
        waitFor("100 deliveries") { lock.lock(); defer { lock.unlock() }; return got.count == 100 }
        lock.lock()
        XCTAssertEqual(got.map(\.2), (0..<100).map { "p\($0)" }, "in publish order")
        XCTAssertEqual(got.first?.0, "orders.eu.0")
        XCTAssertEqual(got.first?.1, "pub")
        lock.unlock()

        XCTAssertThrowsError(try pub.publish("orders.*", payload: Data()).wait()) { error in
            XCTAssertEqual((error as? DAgentError)?.code, .badTopic, "\(error)")
        }
        XCTAssertThrowsError(try sub.subscribe("a..b") { _ in }.wait())

        s.cancel()
        try waitFor("interest withdrawn at the publisher") {
            try pub.treeSnapshot().wait().links.first { $0.isParent }?.interest.isEmpty == true
        }
        try pub.publish("orders.eu.x", payload: Data("late".utf8)).wait()
        let counters = try pub.pubsubCounters().wait()
        XCTAssertEqual(counters.counters.unwanted, 1, "nobody wants it: it stops at the publisher")
    }

    /// The slow-subscriber rule on a real link: a subscriber that stops reading
    /// gets its copies dropped (and counted) once the bytes its link holds pass
    /// `slow_subscriber_bytes`; the link's count of unsent bytes (kept by the
    /// link, not asked of the channel) falls back to 0 once it reads again, and
    /// every copy that was not dropped arrives, in order.
    func testSlowSubscriberCopiesAreDroppedAndTheLinkDrains() throws {
        let port = freePort()
        let root = try TCPTree.root(port: port) { c in
            c.slowSubscriberBytes = 64 * 1024
            c.heartbeatInterval = 10   // the stalled subscriber sends no heartbeat: no expiry meanwhile
        }
        defer { try? root.shutdown() }
        func leaf(_ name: String) throws -> Node { try TCPTree.leaf(name, port: port) { $0.heartbeatInterval = 10 } }
        let sub = try leaf("sub")
        defer { try? sub.shutdown() }
        let pub = try leaf("pub")
        defer { try? pub.shutdown() }

        let gate = DispatchSemaphore(value: 0)
        let lock = NSLock()
        var got: [Int] = []
        _ = try sub.subscribeMessages("bulk") { m in
            let seq = Int(m.payload.getInteger(at: m.payload.readerIndex, as: UInt32.self) ?? 0)
            lock.lock(); got.append(seq); let first = got.count == 1; lock.unlock()
            if first { _ = gate.wait(timeout: .now() + 60) }   // stops reading: its event loop is held
        }.wait()
        var released = false
        defer { if !released { gate.signal() } }
        try waitFor("interest at the publisher") {
            try pub.treeSnapshot().wait().links.first { $0.isParent }?.interest.map(\.pattern) == ["bulk"]
        }
        func subLink() throws -> Dagent_LinkInfo? { try root.treeSnapshot().wait().links.first { $0.peer == "sub" } }

        var payload = ByteBuffer()
        payload.writeRepeatingByte(0x61, count: 16 * 1024)
        var sent = 0
        while sent < 20_000 {
            payload.setInteger(UInt32(sent), at: 0)
            try pub.publish("bulk", payload: Data(payload.readableBytesView)).wait()
            sent += 1
            // Until the kernel's socket buffers are full too: then the link itself holds bytes.
            if sent % 100 == 0, let l = try subLink(), l.publishDrops > 0, l.bytesPending >= 64 * 1024 { break }
        }
        let blocked = try XCTUnwrap(try subLink())
        XCTAssertGreaterThan(blocked.publishDrops, 0, "copies dropped for the stalled subscriber after \(sent) publishes")
        XCTAssertGreaterThanOrEqual(blocked.bytesPending, 64 * 1024, "the link holds the unsent bytes")
        XCTAssertEqual(try pub.pubsubCounters().wait().counters.droppedSlow, 0, "the publisher's own link kept up")

        released = true
        gate.signal()
        try waitFor("the link drains", timeout: 30) { try subLink()?.bytesPending == 0 }
        let drained = try XCTUnwrap(try subLink())
        try waitFor("every copy not dropped arrives", timeout: 30) {
            lock.lock(); defer { lock.unlock() }; return UInt64(got.count) == drained.publishesOut
        }
        XCTAssertEqual(drained.publishesOut + drained.publishDrops, UInt64(sent), "each publish either sent or dropped at the root")
        lock.lock()
        XCTAssertEqual(got, got.sorted(), "in publish order")
        lock.unlock()
    }

    /// A fan-out from one node to several subscriber links, flushed link by link
    /// when the publish ends its read (`Node.writeRelays(flushingEach:)`) and
    /// once per read for bursts: every subscriber gets every publish, in order,
    /// whether they come one at a time or in a burst.
    func testFanOutToSeveralLinksOneAtATimeAndInBursts() throws {
        let port = freePort()
        let root = try TCPTree.root(port: port)
        defer { try? root.shutdown() }
        func leaf(_ name: String) throws -> Node { try TCPTree.leaf(name, port: port) }
        let lock = NSLock()
        var got: [[String]] = Array(repeating: [], count: 4)
        var subs: [Node] = []
        defer { for s in subs { try? s.shutdown() } }
        for i in 0..<4 {
            let s = try leaf("fan-\(i)")
            subs.append(s)
            _ = try s.subscribeMessages("fan.>") { m in
                lock.lock(); got[i].append(String(buffer: m.payload)); lock.unlock()
            }.wait()
        }
        let pub = try leaf("pub")
        defer { try? pub.shutdown() }
        try waitFor("interest of all four at the root") {
            try root.treeSnapshot().wait().links.filter { $0.peer.hasPrefix("fan-") && !$0.interest.isEmpty }.count == 4
        }
        try waitFor("interest at the publisher") {
            try pub.treeSnapshot().wait().links.first { $0.isParent }?.interest.map(\.pattern) == ["fan.>"]
        }
        var expected: [String] = []
        for i in 0..<100 {   // one at a time: each publish alone in the root's read
            try pub.publish("fan.one", payload: Data("a\(i)".utf8)).wait()
            expected.append("a\(i)")
            let n = expected.count
            try waitFor("publish \(i) at every subscriber") { lock.lock(); defer { lock.unlock() }; return got.allSatisfy { $0.count == n } }
        }
        try pub.eventLoop.submit {   // a burst: one batch frame through the root
            for i in 0..<300 { try pub.publishOnLoop("fan.burst", payload: Data("b\(i)".utf8)) }
        }.wait()
        expected += (0..<300).map { "b\($0)" }
        try waitFor("the burst at every subscriber") { lock.lock(); defer { lock.unlock() }; return got.allSatisfy { $0.count == expected.count } }
        lock.lock()
        for (i, g) in got.enumerated() { XCTAssertEqual(g, expected, "subscriber \(i): everything, in publish order") }
        lock.unlock()
        let counters = try root.pubsubCounters().wait().counters
        XCTAssertGreaterThanOrEqual(counters.forwarded, 4 * 101, "a copy per subscriber link for each single publish and each batch")
        XCTAssertEqual(counters.droppedSlow, 0)
    }
}
