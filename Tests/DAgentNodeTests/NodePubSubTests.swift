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
        var rc = NodeConfig(name: "root")
        rc.listen = [.tcp(host: "127.0.0.1", port: port)]
        let root = try Node(config: rc)
        try root.start().wait()
        defer { try? root.shutdown() }
        func leaf(_ name: String) throws -> Node {
            var c = NodeConfig(name: name)
            c.parents = [.tcp(host: "127.0.0.1", port: port)]
            let n = try Node(config: c)
            try n.start().wait()
            try n.ready().wait()
            return n
        }
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
}
