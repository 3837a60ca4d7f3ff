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
        XCTAssertTrue(r.out.contains("must be a non-negative integer"), r.out + r.err)
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
