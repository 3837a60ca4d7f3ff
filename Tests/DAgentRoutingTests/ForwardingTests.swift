import DAgentWire
import XCTest
@testable import DAgentRouting

/// Forwarding, errors back to the sender, hop limit, queues, expiry.
final class ForwardingTests: XCTestCase {
    func testThreeHopDelivery() throws {
        let net = CoreNetwork.standardTree()
        try net.send("ep1", to: "ep2", "hello")
        XCTAssertEqual(net.texts("ep2"), ["hello"])
        let e = net.inbox("ep2")[0]
        XCTAssertEqual(e.src, "ep1")
        XCTAssertEqual(e.hopLimit, WireConstants.defaultHopLimit - 3, "a1, root, a2 each took a hop")
        XCTAssertEqual(net.cores["root"]!.stats.routed, 1)
        XCTAssertEqual(net.rawForwards, 3, "a1, root and a2 relayed the bytes without decoding them")
    }

    func testDeliveryDownAndUp() throws {
        let net = CoreNetwork.standardTree()
        try net.send("root", to: "ep1", "down")
        try net.send("ep1", to: "root", "up")
        try net.send("ep1", to: "a1", "to-parent")
        XCTAssertEqual(net.texts("ep1"), ["down"])
        XCTAssertEqual(net.texts("root"), ["up"])
        XCTAssertEqual(net.texts("a1"), ["to-parent"])
    }

    func testNoRouteComesBackToTheSender() throws {
        let net = CoreNetwork.standardTree()
        var e = Dagent_Envelope()
        e.dst = "nobody"
        e.kind = .request
        e.cookie = 42
        try net.cores["ep1"]!.sendLocal(e, nowNs: net.nowNs)
        net.pump()
        let errors = net.errors("ep1")
        XCTAssertEqual(errors.count, 1)
        XCTAssertEqual(errors[0].error, .noRoute)
        XCTAssertEqual(errors[0].cookie, 42, "the error carries the request's cookie")
        XCTAssertEqual(errors[0].src, "root", "the top node answered")
        XCTAssertTrue(errors[0].reason.contains("'nobody'"))
        XCTAssertEqual(net.cores["root"]!.stats.noRoute, 1)
    }

    func testNoRouteAtTheTopIsThrownLocally() {
        let net = CoreNetwork.standardTree()
        XCTAssertThrowsError(try net.send("root", to: "nobody")) { error in
            XCTAssertEqual((error as? DAgentError)?.code, .noRoute)
        }
    }

    func testErrorsAboutErrorsAreDroppedNotLooped() throws {
        let net = CoreNetwork.standardTree()
        net.kill("ep1")
        // An error addressed to a vanished node must not bounce forever.
        var e = Dagent_Envelope()
        e.dst = "ep1"
        e.kind = .error
        try net.cores["ep2"]!.sendLocal(e, nowNs: net.nowNs)
        net.pump()
        XCTAssertEqual(net.cores["root"]!.stats.droppedErrors, 1)
        XCTAssertTrue(net.errors("ep2").isEmpty)
    }

    func testHopLimitStopsLoops() throws {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false)
        net.add("a", role: .agent, hasParent: true) { $0.hopLimit = 2 }
        net.add("b", role: .agent, hasParent: true)
        net.add("c", role: .leaf, hasParent: true)
        // (the raw fast path must honour the hop limit too: see the checks below)
        net.connect("a", to: "root")
        net.connect("b", to: "root")
        net.connect("c", to: "b")
        try net.send("a", to: "c", "too far")   // a→root→b→c needs 3 hops, limit 2
        XCTAssertTrue(net.texts("c").isEmpty)
        XCTAssertEqual(net.errors("a").map(\.error), [.hopLimit])
    }

    func testUnknownKindIsAnsweredWithAnError() throws {
        let net = CoreNetwork.standardTree()
        var e = Dagent_Envelope()
        e.dst = "ep2"
        e.kind = .UNRECOGNIZED(9)
        try net.cores["ep1"]!.sendLocal(e, nowNs: net.nowNs)
        net.pump()
        XCTAssertEqual(net.errors("ep1").map(\.error), [.unknownKind])
    }

    func testOversizedMessageIsRefused() {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false) { $0.maxMessageBytes = 10 }
        net.add("leaf", role: .leaf, hasParent: true) { $0.maxMessageBytes = 100 }
        net.add("other", role: .leaf, hasParent: true)
        net.connect("leaf", to: "root")
        net.connect("other", to: "root")
        try! net.send("leaf", to: "other", String(repeating: "x", count: 50))
        XCTAssertEqual(net.errors("leaf").map(\.error), [.tooLarge])
        XCTAssertTrue(net.errors("leaf")[0].reason.contains("max_message_bytes=10"))
        XCTAssertThrowsError(try net.send("leaf", to: "other", String(repeating: "x", count: 101)))
    }

    func testPingIsAnsweredByTheCore() throws {
        let net = CoreNetwork.standardTree()
        var e = Dagent_Envelope()
        e.dst = "ep2"
        e.kind = .request
        e.type = WireConstants.pingType
        e.cookie = 7
        try net.cores["ep1"]!.sendLocal(e, nowNs: net.nowNs)
        net.pump()
        XCTAssertTrue(net.inbox("ep2").isEmpty, "the application never sees pings")
        XCTAssertEqual(net.inbox("ep1").map(\.kind), [.response])
        XCTAssertEqual(net.inbox("ep1").first?.cookie, 7)
    }

    func testQueueWhileParentNotReadyThenFlush() throws {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false)
        net.add("target", role: .leaf, hasParent: true)
        net.connect("target", to: "root")
        net.add("leaf", role: .leaf, hasParent: true)
        try net.send("leaf", to: "target", "1")
        try net.send("leaf", to: "target", "2")
        XCTAssertEqual(net.cores["leaf"]!.queues.totalCount, 2)
        net.connect("leaf", to: "root")
        XCTAssertEqual(net.texts("target"), ["1", "2"], "flushed in order once registered")
        XCTAssertTrue(net.cores["leaf"]!.queues.isEmpty)
    }

    func testFullQueueIsAnExplicitError() throws {
        let net = CoreNetwork()
        net.add("leaf", role: .leaf, hasParent: true) { $0.sendQueueLength = 2 }
        try net.send("leaf", to: "x", "1")
        try net.send("leaf", to: "x", "2")
        XCTAssertThrowsError(try net.send("leaf", to: "x", "3")) { error in
            let e = error as! DAgentError
            XCTAssertEqual(e.code, .queueFull)
            XCTAssertTrue(e.reason.contains("send_queue_length=2"), e.reason)
        }
        try net.send("leaf", to: "y", "other destinations still queue")
    }

    func testForwardedMessageToFullQueueGetsErrorBack() throws {
        let net = CoreNetwork()
        net.add("agent", role: .agent, hasParent: true) { $0.sendQueueLength = 1 }
        net.add("leaf", role: .leaf, hasParent: true)
        net.connect("leaf", to: "agent")   // agent has no parent connected: accepted provisionally
        try net.send("leaf", to: "far", "1")
        try net.send("leaf", to: "far", "2")
        XCTAssertEqual(net.errors("leaf").map(\.error), [.queueFull])
    }

    func testQueuedMessagesExpireWithNotReady() throws {
        let net = CoreNetwork()
        net.add("agent", role: .agent, hasParent: true) { $0.queueTimeoutNs = 2_000_000_000 }
        net.add("leaf", role: .leaf, hasParent: true)
        net.connect("leaf", to: "agent")
        try net.send("leaf", to: "far", "late")
        net.advance(seconds: 1)
        XCTAssertTrue(net.errors("leaf").isEmpty)
        net.advance(seconds: 1.5)
        XCTAssertEqual(net.errors("leaf").map(\.error), [.notReady])
        XCTAssertTrue(net.errors("leaf")[0].reason.contains("queue_timeout=2s"))
    }

    func testDurableRestoreRequeues() throws {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false)
        net.add("target", role: .leaf, hasParent: true)
        net.connect("target", to: "root")
        net.add("leaf", role: .leaf, hasParent: true)
        try net.send("leaf", to: "target", "kept")
        let dumped = net.cores["leaf"]!.queues.snapshot()
        // A new incarnation reloads the dump.
        net.cores["leaf"] = nil
        net.add("leaf", role: .leaf, hasParent: true)
        XCTAssertEqual(net.cores["leaf"]!.restoreQueued(dumped, nowNs: net.nowNs), 1)
        net.connect("leaf", to: "root")
        XCTAssertEqual(net.texts("target"), ["kept"])
    }
}

/// DATA with a cookie asks for a delivery receipt.
final class DeliveryReceiptTests: XCTestCase {
    func testReceiptComesBackWithTheDeliveryAndNotWithoutACookie() throws {
        let net = CoreNetwork.standardTree()
        var e = Dagent_Envelope()
        e.dst = "ep2"
        e.type = 9
        e.cookie = 77
        e.payload = Data("hi".utf8)
        try net.cores["ep1"]!.sendLocal(e, nowNs: net.nowNs)
        net.pump()
        XCTAssertEqual(net.texts("ep2"), ["hi"])
        let receipts = net.inbox("ep1").filter { $0.kind == .response }
        XCTAssertEqual(receipts.map(\.cookie), [77])
        XCTAssertEqual(receipts.first?.src, "ep2")
        try net.send("ep1", to: "ep2", "no receipt")
        XCTAssertEqual(net.inbox("ep1").filter { $0.kind == .response }.count, 1, "plain DATA gets no receipt")
    }
}
