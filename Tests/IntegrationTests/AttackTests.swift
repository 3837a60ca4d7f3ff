import DAgentClusterSupport
import DAgentRaft
import DAgentWire
import Foundation
import XCTest

/// The findings of the security review, each tried as an attacker would, with
/// real processes on loopback. Each test failed on the code before the fix.
final class AttackTests: XCTestCase {
    var c: Cluster!

    override func setUpWithError() throws { c = try Cluster(name) }
    override func tearDown() { c.shutdown() }

    /// A one-replica root group serving `@state` on `port`.
    func startStateRoot(port: Int) throws {
        let cluster = c.dir.appendingPathComponent("cluster.json")
        try #"[{"stream_id":1,"node_id":1,"ip":"127.0.0.1","port":\#(port),"role":"LEADER"}]"#
            .write(to: cluster, atomically: true, encoding: .utf8)
        try c.start("root", ["run", "--raft", cluster.path, "--node-id", "1", "--data", c.dir.appendingPathComponent("r1").path])
        c.waitFor("the replica answers @state") {
            c.run(["state", "status", "--via", c.addr(port), "--timeout", "1"]).status == 0
        }
    }

    /// A leaf that calls itself `@state` under an agent used to receive every
    /// write of that subtree (the route table was checked before the parent).
    func testStateImpersonatorIsRefused() throws {
        let root = Cluster.freePort(), agent = Cluster.freePort()
        try startStateRoot(port: root)
        try c.start("a1", ["run", "--name", "a1", "--role", "agent", "--listen", c.addr(agent), "--parent", c.addr(root)])
        c.waitFor("a1 registered") { c.names(at: root)?.contains("a1") == true }
        let fake = c.run(["recv", "--via", c.addr(agent), "--name", "@state", "--count", "1", "--timeout", "3"])
        XCTAssertNotEqual(fake.status, 0)
        XCTAssertTrue(fake.err.contains("reserved for services"), fake.err)
        let put = c.run(["state", "put", "--via", c.addr(agent), "secretkey", "topsecret"])
        XCTAssertEqual(put.status, 0, put.err)
        let get = c.run(["state", "get", "--via", c.addr(root), "secretkey"])
        XCTAssertTrue(get.out.contains("topsecret"), get.out + get.err)
    }

    /// `{"op":"lease_grant","id":-1,...}` trapped in `UInt64(negative)` and
    /// killed the replica ("Illegal instruction").
    func testLeaseGrantWithANegativeIDDoesNotKillTheReplica() throws {
        let root = Cluster.freePort()
        try startStateRoot(port: root)
        let r = c.run(["request", "--via", c.addr(root), "--to", "@state", "--type", "\(0xFFFF_0100)",
                       #"{"op":"lease_grant","id":-1,"ttl_ms":1}"#])
        XCTAssertTrue(r.out.contains(#""code":"bad_request""#) && r.out.contains(#""ok":false"#), r.out + r.err)
        XCTAssertNil(c.waitForExit("root", timeout: 0.5), "the replica died")
        XCTAssertEqual(c.run(["state", "status", "--via", c.addr(root), "--timeout", "2"]).status, 0)
    }

    /// A registered node forged the RESPONSE to another node's request: the
    /// cookie was sequential and no hop checked `src`.
    func testForgedReplyIsIgnored() throws {
        let root = Cluster.freePort()
        try c.start("root", ["run", "--name", "root", "--listen", c.addr(root)])
        try c.start("sink", ["recv", "--via", c.addr(root), "--name", "sink", "--timeout", "30"])   // never answers
        c.waitFor("sink registered") { c.names(at: root)?.contains("sink") == true }
        let victim = try c.start("victim", ["request", "--via", c.addr(root), "--name", "victim", "--to", "sink",
                                            "--timeout", "4", "question"])
        c.waitFor("victim registered") { c.names(at: root)?.contains("victim") == true }
        let evil = try RawPeer(port: root)
        XCTAssertTrue(evil.register("evil"))
        XCTAssertEqual(evil.read { if case .registerResult? = $0.body { return true } else { return false } }?.registerResult.error, .ok)
        for src in ["sink", "evil"] {
            for cookie in UInt64(1)...64 {
                var frame = Dagent_Frame()
                frame.envelope.src = src
                frame.envelope.dst = "victim"
                frame.envelope.kind = .response
                frame.envelope.cookie = cookie
                frame.envelope.hopLimit = 8
                frame.envelope.payload = Data("forged".utf8)
                XCTAssertTrue(evil.write(frame))
            }
        }
        XCTAssertEqual(c.waitForExit("victim", timeout: 15), 1)
        XCTAssertFalse(c.output("victim").contains("forged"), c.output("victim"))
        _ = victim
        XCTAssertTrue(c.log("root").contains("claims src 'sink', which is not in its subtree"), c.log("root"))
    }

    /// `dagent tree` printed every session, and a session is what reclaims a name.
    func testTreeOutputRevealsNoSession() throws {
        let root = Cluster.freePort()
        try c.start("root", ["run", "--name", "root", "--listen", c.addr(root)])
        let data = c.dir.appendingPathComponent("l1data").path
        try c.start("l1", ["run", "--name", "l1", "--parent", c.addr(root), "--data", data])
        c.waitFor("l1 saved its session") { FileManager.default.fileExists(atPath: data + "/session") }
        let session = try String(contentsOfFile: data + "/session", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let tree = c.run(["tree", "--via", c.addr(root), "--json"])
        XCTAssertEqual(tree.status, 0, tree.err)
        XCTAssertTrue(tree.out.contains("\"l1\""), tree.out)
        XCTAssertFalse(tree.out.contains("session"), tree.out)
        XCTAssertFalse(tree.out.lowercased().contains(session.lowercased()), tree.out)
        let plain = c.run(["tree", "--via", c.addr(root)])
        XCTAssertFalse(plain.out.lowercased().contains(session.lowercased()), plain.out)
        // On the wire: the TreeReply a registered peer gets carries no session either.
        let peeker = try RawPeer(port: root)
        XCTAssertTrue(peeker.register("peeker"))
        _ = peeker.read { if case .registerResult? = $0.body { return true } else { return false } }
        var ask = Dagent_Frame()
        ask.treeRequest.requestID = 7
        XCTAssertTrue(peeker.write(ask))
        let reply = peeker.read { if case .treeReply? = $0.body { return true } else { return false } }?.treeReply
        XCTAssertEqual(reply?.names.contains { $0.name == "l1" }, true)
        XCTAssertEqual(reply?.names.filter { $0.session != 0 }.map(\.name), [])
        // A name cannot be taken without its session.
        let thief = try RawPeer(port: root)
        XCTAssertTrue(thief.register("l1"))
        XCTAssertEqual(thief.read { if case .registerResult? = $0.body { return true } else { return false } }?.registerResult.error, .nameTaken)
    }
}

/// Raft peer links: a `PeerHello` claiming a member's id replaced the real
/// member's link, and the frames that followed were fed to Raft unchecked.
final class RaftPeerAttackTests: XCTestCase {
    var c: Cluster!

    override func setUpWithError() throws { c = try Cluster(name) }
    override func tearDown() { c.shutdown() }

    func startGroup(_ ports: [Int], running ids: [Int]) throws {
        let cluster = c.dir.appendingPathComponent("cluster.json")
        let members = ports.enumerated().map { i, p in
            #"{"stream_id":1,"node_id":\#(i + 1),"ip":"127.0.0.1","port":\#(p),"role":"\#(i == 0 ? "LEADER" : "FOLLOWER")"}"#
        }
        try "[\(members.joined(separator: ","))]".write(to: cluster, atomically: true, encoding: .utf8)
        for id in ids {
            try c.start("r\(id)", ["run", "--raft", cluster.path, "--node-id", "\(id)", "--data", c.dir.appendingPathComponent("d\(id)").path])
        }
    }

    func hello(_ nodeID: UInt64) -> Dagent_Frame {
        var frame = Dagent_Frame()
        frame.peerHello.service = "raft"
        frame.peerHello.streamID = 1
        frame.peerHello.nodeID = nodeID
        frame.peerHello.name = "impostor"
        return frame
    }

    func testAPeerHelloCannotReplaceALiveMembersLink() throws {
        let ports = [Cluster.freePort(), Cluster.freePort()]
        try startGroup(ports, running: [1, 2])
        c.waitFor("the group answers") { c.run(["state", "put", "--via", c.addr(ports[1]), "k", "v1", "--timeout", "1"]).status == 0 }
        let impostor = try RawPeer(port: ports[1])
        XCTAssertTrue(impostor.write(hello(1)))
        XCTAssertTrue(impostor.closedByPeer())
        c.waitFor("r2 says why") { c.log("r2").contains("refusing peer hello from node 1: node 1 already has a live peer link here") }
        // The real link is untouched: the group still commits through both replicas.
        XCTAssertEqual(c.run(["state", "put", "--via", c.addr(ports[1]), "k", "v2", "--timeout", "3"]).status, 0)
        XCTAssertEqual(c.log("r2").components(separatedBy: "peer link from replica 1 up").count, 2, "the real link was replaced")
    }

    func testRaftMessagesMustComeFromTheLinksPeer() throws {
        let ports = [Cluster.freePort(), Cluster.freePort(), Cluster.freePort()]
        try startGroup(ports, running: [3])   // 1 and 2 are down
        c.waitFor("r3 listens") { (try? RawPeer(port: ports[2])) != nil }
        let peer = try RawPeer(port: ports[2])
        XCTAssertTrue(peer.write(hello(1)))
        c.waitFor("r3 took the hello") { c.log("r3").contains("peer link from replica 1 up") }
        // On the link of node 1, a vote request claiming to be node 2.
        var vote = DAgentRaft.Message(type: .vote, from: 2, to: 3, term: 99)
        vote.logTerm = 0
        var frame = Dagent_Frame()
        frame.service.streamID = 1
        frame.service.body = Data(vote.serialize())
        XCTAssertTrue(peer.write(frame))
        c.waitFor("r3 drops it") {
            c.log("r3").contains("dropping a raft message from replica 1 that claims to come from 2")
        }
    }
}
