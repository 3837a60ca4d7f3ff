import DAgentWire
import XCTest
@testable import DAgentRouting

/// Registration, name propagation, collisions, session reclaim, withdrawal.
final class RegistrationTests: XCTestCase {
    func testNamesPropagateToTheTop() {
        let net = CoreNetwork.standardTree()
        for name in ["a1", "a2", "ep1", "ep2"] { XCTAssertTrue(net.registered(name), name) }
        XCTAssertEqual(Set(net.cores["root"]!.routes.allEntries.keys), ["a1", "a2", "ep1", "ep2"])
        XCTAssertEqual(Set(net.cores["a1"]!.routes.allEntries.keys), ["ep1"])
        XCTAssertEqual(net.cores["root"]!.routes["ep1"]!.parent, "a1")
        XCTAssertNotEqual(net.cores["ep1"]!.session, 0)
        XCTAssertEqual(net.cores["ep1"]!.parentName, "a1")
    }

    func testDuplicateNameUnderSameParentIsRefused() {
        let net = CoreNetwork.standardTree()
        net.add("ep1-dup", role: .leaf, hasParent: true)
        // A second node that calls itself "ep1": build its core under that name.
        let dup = CoreNetwork()
        _ = dup
        net.cores["ep1b"] = NodeCore(config: NodeCoreConfig(name: "ep1", role: .leaf, hasParent: true))
        net.connect("ep1b", to: "a1")
        let failures = net.failures("ep1b")
        XCTAssertEqual(failures.count, 1)
        XCTAssertEqual(failures.first?.0, .nameTaken)
        XCTAssertTrue(failures.first!.1.contains("already held by a live node"), failures.first!.1)
        // The original holder is untouched.
        XCTAssertEqual(net.cores["a1"]!.routes["ep1"]?.session, net.cores["ep1"]!.session)
    }

    func testDuplicateNameAcrossSubtreesIsRefusedAtTheTop() {
        let net = CoreNetwork.standardTree()
        // "ep1" lives under a1; a node under a2 claims it. a2 does not know ep1: the root does.
        net.cores["imposter"] = NodeCore(config: NodeCoreConfig(name: "ep1", role: .leaf, hasParent: true))
        net.connect("imposter", to: "a2")
        XCTAssertEqual(net.failures("imposter").first?.0, .nameTaken)
        XCTAssertNil(net.cores["a2"]!.routes["ep1"], "a2 must forget the refused name")
        XCTAssertEqual(net.cores["root"]!.routes["ep1"]?.parent, "a1")
        // Traffic to ep1 still reaches the real one.
        try! net.send("ep2", to: "ep1", "still-me")
        XCTAssertEqual(net.texts("ep1"), ["still-me"])
    }

    func testRestartedNodeReclaimsItsNameWithItsSession() {
        let net = CoreNetwork.standardTree()
        let session = net.cores["ep1"]!.sessionSecret
        // ep1 restarts: its old link still looks alive at a1 (no FIN seen yet).
        net.frozen.insert("ep1")
        let old = net.cores.removeValue(forKey: "ep1")!
        _ = old
        net.add("ep1", role: .leaf, hasParent: true, session: session)
        net.frozen.remove("ep1")
        net.connect("ep1", to: "a1")
        XCTAssertTrue(net.registered("ep1"))
        XCTAssertTrue(net.failures("ep1").isEmpty)
        XCTAssertTrue(net.closes.contains { $0.reason.contains("superseded") }, "the stale link is closed")
        try! net.send("ep2", to: "ep1", "after-restart")
        XCTAssertEqual(net.texts("ep1"), ["after-restart"])
    }

    func testReclaimUnderAnotherAgentMovesTheName() {
        let net = CoreNetwork.standardTree()
        let session = net.cores["ep1"]!.sessionSecret
        net.frozen.insert("ep1")
        net.cores.removeValue(forKey: "ep1")
        net.add("ep1", role: .leaf, hasParent: true, session: session)
        net.frozen.remove("ep1")
        net.connect("ep1", to: "a2")   // comes back under the other agent
        XCTAssertTrue(net.registered("ep1"))
        XCTAssertEqual(net.cores["root"]!.routes["ep1"]?.parent, "a2")
        XCTAssertNil(net.cores["a1"]!.routes["ep1"], "a1 was told the name moved")
        try! net.send("ep2", to: "ep1", "moved")
        XCTAssertEqual(net.texts("ep1"), ["moved"])
    }

    func testLeavingNodeIsWithdrawnUpTheTree() {
        let net = CoreNetwork.standardTree()
        net.kill("ep2")
        XCTAssertNil(net.cores["a2"]!.routes["ep2"])
        XCTAssertNil(net.cores["root"]!.routes["ep2"])
        try! net.send("ep1", to: "ep2", "gone?")
        XCTAssertEqual(net.errors("ep1").map(\.error), [.noRoute])
    }

    func testAgentLossWithdrawsItsWholeSubtree() {
        let net = CoreNetwork.standardTree()
        net.kill("a2")
        XCTAssertEqual(Set(net.cores["root"]!.routes.allEntries.keys), ["a1", "ep1"])
    }

    func testInvalidNamesAreRefused() {
        let net = CoreNetwork.standardTree()
        net.cores["bad"] = NodeCore(config: NodeCoreConfig(name: "has space", role: .leaf, hasParent: true))
        net.connect("bad", to: "a1")
        XCTAssertEqual(net.failures("bad").first?.0, .refused)
        XCTAssertTrue(net.failures("bad").first!.1.contains("invalid name"))
    }

    func testMaxChildrenIsEnforced() {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false) { $0.maxChildren = 1 }
        net.add("c1", role: .leaf, hasParent: true)
        net.add("c2", role: .leaf, hasParent: true)
        net.connect("c1", to: "root")
        net.connect("c2", to: "root")
        XCTAssertTrue(net.registered("c1"))
        XCTAssertTrue(net.failures("c2").first!.1.contains("max_children=1"))
    }

    func testParentFailoverReRegistersSubtree() {
        let net = CoreNetwork()
        net.add("r1", role: .root, hasParent: false)
        net.add("r2", role: .root, hasParent: false)
        net.add("agent", role: .agent, hasParent: true)
        net.add("leaf", role: .leaf, hasParent: true)
        let (agentUp, _) = net.connect("agent", to: "r1")
        net.connect("leaf", to: "agent")
        XCTAssertNotNil(net.cores["r1"]!.routes["leaf"])
        net.cut("agent", agentUp, reason: "r1 died")
        XCTAssertTrue(net.events["agent"]!.contains { if case .parentLost = $0 { return true } else { return false } })
        net.connect("agent", to: "r2")
        XCTAssertEqual(Set(net.cores["r2"]!.routes.allEntries.keys), ["agent", "leaf"], "subtree re-registered at the new parent")
    }

    func testNamesAddedWhileRegistrationInFlightReachTheParent() {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false)
        net.add("agent", role: .agent, hasParent: true)
        net.add("leaf", role: .leaf, hasParent: true)
        // Hold root's answers so the agent's registration stays in flight.
        net.frozen.insert("root")
        net.connect("agent", to: "root")
        net.connect("leaf", to: "agent")
        XCTAssertTrue(net.registered("leaf"), "accepted provisionally while the parent is not ready")
        net.frozen.remove("root")
        // Root's RegisterResult was lost while frozen: drop and reconnect to replay.
        let link = net.peers["agent"]!.first { $0.value.node == "root" }!.key
        net.cut("agent", link)
        net.connect("agent", to: "root")
        XCTAssertEqual(Set(net.cores["root"]!.routes.allEntries.keys), ["agent", "leaf"])
    }
}
