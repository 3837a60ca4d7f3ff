import DAgentWire
import NIOCore
import XCTest
@testable import DAgentRouting

/// Brother p2p decided in the routing core: a leaf whose parent link comes
/// with a brother table sends straight to the brother's channel.
final class BrotherTests: XCTestCase {
    /// agent ← l1, l2 (leaves on a message queue; the table maps l2 → channel 22).
    func leaves() -> (CoreNetwork, CoreNetwork.Brothers) {
        let net = CoreNetwork()
        net.add("agent", role: .agent, hasParent: false)
        net.add("l1", role: .leaf, hasParent: true)
        net.add("l2", role: .leaf, hasParent: true)
        let table = CoreNetwork.Brothers()
        table.names = ["l1": 11, "l2": 22]
        net.connectLeaf("l1", to: "agent", channel: 11, brothers: table)
        net.connectLeaf("l2", to: "agent", channel: 22, brothers: table)
        return (net, table)
    }

    func testABrotherIsReachedWithoutTheAgent() throws {
        let (net, _) = leaves()
        let routedAtAgent = net.cores["agent"]!.stats.routed
        try net.send("l1", to: "l2", "direct")
        XCTAssertEqual(net.texts("l2"), ["direct"])
        XCTAssertEqual(net.cores["agent"]!.stats.routed, routedAtAgent, "the agent is not a hop")
        XCTAssertEqual(net.cores["l1"]!.stats.directOut, 1)
        XCTAssertEqual(net.cores["l2"]!.stats.directIn, 1)
        XCTAssertTrue(net.cores["l1"]!.isBrother("l2"))
        XCTAssertFalse(net.cores["l1"]!.isBrother("agent"), "a name missing from the table goes via the parent")
    }

    func testTheHopNamesTheBrotherChannel() throws {
        let (net, _) = leaves()
        let core = net.cores["l1"]!
        var h = MessageHeader(dst: "l2")
        let hop = try core.sendFast(&h, payloadCount: 0)
        XCTAssertEqual(hop, Hop(link: core.parentLink!, brother: 22))
    }

    func testLookupsAreCachedUntilTheGenerationMoves() throws {
        let (net, table) = leaves()
        for i in 0..<5 { try net.send("l1", to: "l2", "m\(i)") }
        let lookups = table.lookups
        XCTAssertLessThanOrEqual(lookups, 2, "one lookup per name until the table changes")
        // l2 moves away: the table forgets it; until the generation moves the cache still says 22.
        table.names["l2"] = nil
        table.generation += 1
        try net.send("l1", to: "l2", "via the agent")
        XCTAssertEqual(table.lookups, lookups + 1)
        XCTAssertEqual(net.texts("l2").last, "via the agent")
        XCTAssertEqual(net.cores["l1"]!.stats.directOut, 5)
    }

    func testOwnSubtreeAndOwnNameWinOverTheTable() throws {
        let (net, table) = leaves()
        table.names["l1"] = 22   // a stale or hostile entry: never a reason to leave ourselves
        try net.send("l2", to: "l2", "self")
        XCTAssertEqual(net.texts("l2"), ["self"])
        XCTAssertEqual(net.cores["l2"]!.stats.directOut, 0)
    }

    func testBrothersAreDroppedWithTheParentLink() throws {
        let (net, _) = leaves()
        let core = net.cores["l1"]!
        net.cut("l1", core.parentLink!)
        XCTAssertFalse(core.isBrother("l2"))
        try net.send("l1", to: "l2", "later")
        XCTAssertEqual(core.stats.queued, 1, "no parent link: queued, not sent to the brother")
        XCTAssertEqual(core.stats.directOut, 0)
    }

    func testWithoutAParentNothingIsABrother() {
        let (net, _) = leaves()
        XCTAssertFalse(net.cores["agent"]!.isBrother("l2"))
    }
}
