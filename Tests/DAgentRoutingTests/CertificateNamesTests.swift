import DAgentWire
import NIOCore
import XCTest
@testable import DAgentRouting

/// SAN → allowed names (pure), and the core applying it to registrations, names
/// added later and peer hellos on a link whose TLS certificate is known.
final class CertificateNamesTests: XCTestCase, RawFrameTesting {
    func testExactNameAllowsOnlyThatName() {
        let names = CertificateNames(sans: ["leaf1"])
        XCTAssertNil(names.ownNameProblem("leaf1"))
        XCTAssertNotNil(names.ownNameProblem("leaf2"))
        XCTAssertNotNil(names.ownNameProblem("leaf1.x"))
        XCTAssertNotNil(names.subtreeNameProblem("below", owner: "leaf1"))
        let why = names.ownNameProblem("root")!
        XCTAssertTrue(why.contains("does not allow the name 'root'") && why.contains("'leaf1'"), why)
    }

    func testWildcardAllowsTheSubtreeOfItsOwnerOnly() {
        let names = CertificateNames(sans: ["a1", "*.a1"])
        XCTAssertNil(names.ownNameProblem("a1"))
        XCTAssertNil(names.subtreeNameProblem("l1", owner: "a1"))
        XCTAssertNil(names.subtreeNameProblem("anything.at.all", owner: "a1"))
        // The wildcard is tied to the name the link registered as.
        XCTAssertNotNil(names.subtreeNameProblem("l1", owner: "a2"))
        // A wildcard alone does not give the name itself (DNS: *.a1 does not match a1) nor x.a1 as own name.
        let only = CertificateNames(sans: ["*.a1"])
        XCTAssertNotNil(only.ownNameProblem("a1"))
        XCTAssertNotNil(only.ownNameProblem("x.a1"))
        XCTAssertNil(only.subtreeNameProblem("x", owner: "a1"))
    }

    func testOtherWildcardFormsAllowNothing() {
        let names = CertificateNames(sans: ["*", "a*", "*.*.b", "*.", ""])
        XCTAssertTrue(names.exact.isEmpty, "\(names.exact)")
        XCTAssertTrue(names.subtrees.isEmpty, "\(names.subtrees)")
        XCTAssertNotNil(names.ownNameProblem("a1"))
        XCTAssertNotNil(names.ownNameProblem("*"))
    }

    func testRaftIdentity() {
        XCTAssertEqual(CertificateNames.raftIdentity(stream: 7, node: 2), "@raft.7.2")
        let names = CertificateNames(sans: ["root2", "@raft.7.2"])
        XCTAssertNil(names.raftPeerProblem(stream: 7, node: 2))
        XCTAssertNotNil(names.raftPeerProblem(stream: 7, node: 1))
        XCTAssertNotNil(names.raftPeerProblem(stream: 8, node: 2))
        // A tree name never stands for a replica, even one spelled like it.
        XCTAssertNotNil(CertificateNames(sans: ["raft.7.2"]).raftPeerProblem(stream: 7, node: 2))
        XCTAssertNotNil(names.ownNameProblem("@raft.7.1"))
    }

    // MARK: the core

    func testRegistrationUnderACertificateNamingAnotherNodeIsRefused() {
        let net = CoreNetwork.standardTree()
        let (_, link) = net.rawLink(to: "a1")
        net.cores["a1"]!.linkCertified(link, sans: ["ep9"])
        net.cores["a1"]!.receive(frameBody: body(register("evil")), from: link, nowNs: net.nowNs)
        net.pump()
        XCTAssertNil(net.cores["a1"]!.routes["evil"])
        guard let result = lastResult(net) else { return XCTFail("no RegisterResult") }
        XCTAssertEqual(result.error, .refused)
        XCTAssertTrue(result.reason.contains("does not allow the name 'evil'"), result.reason)
    }

    func testSubtreeNeedsTheWildcard() {
        let net = CoreNetwork.standardTree()
        let (_, link) = net.rawLink(to: "a1")
        net.cores["a1"]!.linkCertified(link, sans: ["p1"])
        net.cores["a1"]!.receive(frameBody: body(register("p1", subtree: ["below1"])), from: link, nowNs: net.nowNs)
        net.pump()
        XCTAssertNotNil(net.cores["a1"]!.routes["p1"])
        XCTAssertNil(net.cores["a1"]!.routes["below1"])
        guard let result = lastResult(net) else { return XCTFail("no RegisterResult") }
        XCTAssertEqual(result.error, .ok)
        XCTAssertEqual(result.refused.map(\.name), ["below1"])
        XCTAssertTrue(result.refused[0].reason.contains("no SAN '*.p1'"), result.refused[0].reason)
        // Names added later are held to the same rule.
        var added = Dagent_NameAdded()
        added.requestID = 9
        var r = Dagent_NameRecord()
        r.name = "below2"
        added.names = [r]
        net.cores["a1"]!.receive(frameBody: body(.nameAdded(added)), from: link, nowNs: net.nowNs)
        net.pump()
        XCTAssertNil(net.cores["a1"]!.routes["below2"])
    }

    func testWildcardLetsTheSubtreeIn() {
        let net = CoreNetwork.standardTree()
        let (_, link) = net.rawLink(to: "a1")
        net.cores["a1"]!.linkCertified(link, sans: ["p1", "*.p1"])
        net.cores["a1"]!.receive(frameBody: body(register("p1", subtree: ["below1"])), from: link, nowNs: net.nowNs)
        net.pump()
        XCTAssertNotNil(net.cores["a1"]!.routes["p1"])
        XCTAssertNotNil(net.cores["a1"]!.routes["below1"])
        XCTAssertEqual(lastResult(net)?.refused.count, 0)
    }

    func testPeerHelloNeedsTheReplicaIdentity() {
        let net = CoreNetwork.standardTree()
        let (_, link) = net.rawLink(to: "a1")
        net.cores["a1"]!.linkCertified(link, sans: ["root2", "@raft.1.3"])
        var hello = Dagent_PeerHello()
        hello.service = "raft"
        hello.streamID = 1
        hello.nodeID = 2
        net.cores["a1"]!.receive(frameBody: body(.peerHello(hello)), from: link, nowNs: net.nowNs)
        net.pump()
        XCTAssertTrue(net.logs["a1"]!.contains { $0.contains("does not name replica 2 of stream 1") }, "\(net.logs["a1"]!)")
        XCTAssertFalse(net.cores["a1"]!.links[link]?.isPeer ?? false)
    }
}
