import DAgentNode
import DAgentTestSupport
import DAgentWire
import Foundation
import NIOCore
import XCTest

/// `handleRequests(ofType:)` and `handleMessages(ofType:)`: reserved types taken
/// before the application's handler, on real TCP links (in one process).
final class NodeTypeHandlerTests: XCTestCase {
    func testHandleMessagesTakesRequestsAndOneWayMessagesOfItsType() throws {
        let port = freePort()
        let root = try TCPTree.root(port: port)
        defer { try? root.shutdown() }
        var c = NodeConfig(name: "svc")
        c.parents = [.tcp(host: "127.0.0.1", port: port)]
        let svc = try Node(config: c)
        let lock = NSLock()
        var app: [UInt32] = [], taken: [(UInt32, Dagent_Kind, String)] = []
        svc.onMessage = { e in lock.lock(); app.append(e.type); lock.unlock() }
        let both: UInt32 = 0xFFFF_0990, requestsOnly: UInt32 = 0xFFFF_0991
        svc.handleMessages(ofType: both) { e in
            lock.lock(); taken.append((e.type, e.kind, String(decoding: e.payload, as: UTF8.self))); lock.unlock()
            if e.kind == .request { svc.reply(to: e, payload: Data("ok".utf8)) }
        }
        svc.handleRequests(ofType: requestsOnly) { e in
            lock.lock(); taken.append((e.type, e.kind, "")); lock.unlock()
            svc.reply(to: e, payload: Data())
        }
        try svc.start().wait()
        defer { try? svc.shutdown() }
        try svc.ready().wait()

        let reply = try root.request(to: "svc", type: both, payload: Data("q".utf8), timeout: 5).wait()
        XCTAssertEqual(String(decoding: reply.payload, as: UTF8.self), "ok")
        try root.send(to: "svc", type: both, payload: Data("one-way".utf8)).wait()
        try root.send(to: "svc", type: requestsOnly, payload: Data()).wait()   // not taken: goes to the application
        try root.send(to: "svc", type: 7, payload: Data()).wait()
        waitFor("two messages taken, two for the application") {
            lock.lock(); defer { lock.unlock() }
            return app.count == 2 && taken.count == 2
        }
        lock.lock()
        defer { lock.unlock() }
        XCTAssertEqual(taken.map(\.0), [both, both])
        XCTAssertEqual(taken.map(\.1), [.request, .data])
        XCTAssertEqual(taken.map(\.2), ["q", "one-way"])
        XCTAssertEqual(app, [requestsOnly, 7], "one-way messages of a requests-only type, and other types, reach the application")
    }
}
