import DAgentClusterSupport
import DAgentWire
import Foundation
import XCTest
import DAgentMsgq

/// End-to-end behaviour of a real tree: root + two agents + endpoints on loopback.
final class TreeTests: XCTestCase {
    var c: Cluster!
    var root = 0, a1 = 0, a2 = 0

    override func setUpWithError() throws {
        c = try Cluster(name)
        root = Cluster.freePort()
        a1 = Cluster.freePort()
        a2 = Cluster.freePort()
    }

    override func tearDown() { c.shutdown() }

    /// root, a1, a2 (agents), ep1 under a1, ep2 under a2, both echoing.
    func startStandardTree(hb: String = "0.2") throws {
        try c.start("root", ["run", "--name", "root", "--listen", c.addr(root), "--heartbeat-interval", hb])
        try c.start("a1", ["run", "--name", "a1", "--role", "agent", "--listen", c.addr(a1), "--parent", c.addr(root), "--heartbeat-interval", hb])
        try c.start("a2", ["run", "--name", "a2", "--role", "agent", "--addr", "proxy:\(c.addr(a2))->\(c.addr(root))", "--heartbeat-interval", hb])
        try c.start("ep1", ["run", "--name", "ep1", "--parent", c.addr(a1), "--echo", "--heartbeat-interval", hb])
        try c.start("ep2", ["run", "--name", "ep2", "--addr", "push:\(c.addr(a2))", "--echo", "--heartbeat-interval", hb])
        c.waitFor("all names at the root") { c.names(at: root) == ["a1", "a2", "ep1", "ep2"] }
    }

    func testThreeHopRequestAndSend() throws {
        try startStandardTree()
        let r = c.run(["request", "--via", c.addr(a1), "--to", "ep2", "hello over three hops"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.out, "hello over three hops\n")

        try c.start("sink", ["recv", "--via", c.addr(a2), "--name", "sink", "--count", "2"])
        c.waitFor("sink registered") { c.names(at: root)?.contains("sink") == true }
        let first = c.run(["send", "--via", c.addr(a1), "--to", "sink", "--type", "5", "first"])
        XCTAssertEqual(first.status, 0, first.err)
        let second = c.run(["send", "--via", c.addr(a1), "--to", "sink", "second"])
        XCTAssertEqual(second.status, 0, second.err)
        XCTAssertEqual(c.waitForExit("sink"), 0)
        let lines = c.output("sink").split(separator: "\n")
        XCTAssertEqual(lines.count, 2, c.log("sink"))
        XCTAssertTrue(lines[0].hasSuffix(" 5 first"), String(lines[0]))
        XCTAssertTrue(lines[1].hasSuffix(" 1 second"), String(lines[1]))
    }

    func testTreeCommandShowsNamesLevelsAndLinks() throws {
        try startStandardTree()
        let text = c.run(["tree", "--via", c.addr(root)])
        XCTAssertEqual(text.status, 0, text.err)
        XCTAssertTrue(text.out.contains("root [root]"), text.out)
        XCTAssertTrue(text.out.contains("├── a1 [agent]"), text.out)
        XCTAssertTrue(text.out.contains("│   └── ep1 [leaf]"), text.out)
        let json = c.run(["tree", "--via", c.addr(a1), "--json"])
        let obj = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as! [String: Any]
        XCTAssertEqual(obj["name"] as? String, "a1")
        XCTAssertEqual(obj["parent"] as? String, "root")
        let names = obj["names"] as! [[String: Any]]
        XCTAssertEqual(names.map { $0["name"] as! String }, ["ep1"])
        XCTAssertEqual(names.first?["level"] as? Int, 1)
        XCTAssertNotNil(obj["queues"] as? [Any])
    }

    func testNoRouteFailsFastWithReason() throws {
        try startStandardTree()
        let start = Date()
        let r = c.run(["request", "--via", c.addr(a1), "--to", "nobody", "x"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("no route to 'nobody'"), r.err)
        XCTAssertEqual(r.err.split(separator: "\n").count, 1, "one line: \(r.err)")
        let s = c.run(["send", "--via", c.addr(a2), "--to", "nobody", "x"])
        XCTAssertEqual(s.status, 1)
        XCTAssertTrue(s.err.contains("no route"), s.err)
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
    }

    func testNameCollisionIsRefused() throws {
        try startStandardTree()
        // Same name under the other agent: only the root can see the clash.
        try c.start("dup", ["run", "--name", "ep1", "--parent", c.addr(a2)])
        XCTAssertEqual(c.waitForExit("dup"), 2)
        XCTAssertTrue(c.log("dup").contains("name taken: name 'ep1' is already held by a live node"), c.log("dup"))
        XCTAssertEqual(c.run(["request", "--via", c.addr(a2), "--to", "ep1", "still there"]).out, "still there\n")
    }

    func testSessionReclaimAfterRestart() throws {
        try startStandardTree()
        let data = c.dir.appendingPathComponent("ep3").path
        try c.start("ep3", ["run", "--name", "ep3", "--parent", c.addr(a1), "--echo", "--data", data, "--heartbeat-interval", "5"])
        c.waitFor("ep3 registered") { c.names(at: root)?.contains("ep3") == true }
        c.signal("ep3", SIGSTOP)   // frozen: its link stays open, the name stays held
        c.kill9("ep3")
        // Restarted at once, under the other agent: the session file reclaims the name.
        try c.start("ep3b", ["run", "--name", "ep3", "--parent", c.addr(a2), "--echo", "--data", data])
        c.waitFor("ep3 moved under a2") { c.tree(at: root)?.names.first { $0.name == "ep3" }?.parent == "a2" }
        XCTAssertFalse(c.log("ep3b").contains("name taken"), c.log("ep3b"))
        XCTAssertEqual(c.run(["request", "--via", c.addr(a1), "--to", "ep3", "back"]).out, "back\n")
    }

    func testKilledLeafIsWithdrawnAndFrozenLeafExpires() throws {
        try startStandardTree()
        c.kill9("ep2")
        c.waitFor("ep2 withdrawn after kill -9") { c.names(at: root)?.contains("ep2") == false }
        let r = c.run(["request", "--via", c.addr(a1), "--to", "ep2", "x"])
        XCTAssertTrue(r.err.contains("no route"), r.err)
        // A frozen process keeps its socket open: only heartbeats can expire it.
        c.signal("ep1", SIGSTOP)
        c.waitFor("ep1 expired by heartbeat") { c.names(at: root)?.contains("ep1") == false }
        XCTAssertTrue(c.log("a1").contains("expired: nothing heard from 'ep1'"), c.log("a1"))
        c.signal("ep1", SIGCONT)
    }

    func testParentFailover() throws {
        let root2 = Cluster.freePort()
        try c.start("root", ["run", "--name", "root", "--listen", c.addr(root), "--heartbeat-interval", "0.2"])
        try c.start("root2", ["run", "--name", "root2", "--listen", c.addr(root2), "--heartbeat-interval", "0.2"])
        // a1 must find root listening, or it fails over to root2 before the test kills root
        c.waitFor("both roots listening") { c.tree(at: root) != nil && c.tree(at: root2) != nil }
        try c.start("a1", ["run", "--name", "a1", "--listen", c.addr(a1), "--parent", "\(c.addr(root)),\(c.addr(root2))", "--heartbeat-interval", "0.2"])
        try c.start("ep1", ["run", "--name", "ep1", "--parent", c.addr(a1), "--echo"])
        c.waitFor("a1 and ep1 under root") { c.names(at: root) == ["a1", "ep1"] }
        c.kill9("root")
        c.waitFor("a1 re-registered its subtree at root2") { c.names(at: root2) == ["a1", "ep1"] }
        XCTAssertEqual(c.run(["request", "--via", c.addr(root2), "--to", "ep1", "via root2"]).out, "via root2\n")
        XCTAssertTrue(c.log("a1").contains("connected to parent \(c.addr(root2))"), c.log("a1"))
    }

    func testDurableQueueSurvivesRestart() throws {
        // The agent's parent is down: messages from its leaf queue at the agent.
        let data = c.dir.appendingPathComponent("a1").path
        try c.start("a1", ["run", "--name", "a1", "--listen", c.addr(a1), "--parent", c.addr(root), "--durable", "--data", data])
        try c.start("leaf", ["run", "--name", "leaf", "--parent", c.addr(a1)])
        c.waitFor("leaf registered (provisionally)") { c.names(at: a1) == ["leaf"] }
        for i in 1...3 {
            XCTAssertEqual(c.run(["send", "--via", c.addr(a1), "--to", "target", "--no-confirm", "msg\(i)"]).status, 0)
        }
        c.waitFor("3 messages queued at a1") { c.tree(at: a1)?.queues.first?.depth == 3 }
        XCTAssertEqual(c.stop("a1"), 0)
        XCTAssertTrue(c.log("a1").contains("durable: 3 queued message(s) kept in"), c.log("a1"))
        // Now the destination exists; restart the agent: the dump is reloaded and delivered.
        try c.start("root", ["run", "--name", "root", "--listen", c.addr(root)])
        try c.start("target", ["recv", "--via", c.addr(root), "--name", "target", "--count", "3"])
        c.waitFor("target registered") { c.names(at: root)?.contains("target") == true }
        try c.start("a1b", ["run", "--name", "a1", "--listen", c.addr(a1), "--parent", c.addr(root), "--durable", "--data", data])
        XCTAssertEqual(c.waitForExit("target", timeout: 15), 0, c.allLogs())
        let got = c.output("target").split(separator: "\n").map { $0.split(separator: " ").last! }
        XCTAssertEqual(got, ["msg1", "msg2", "msg3"])
        XCTAssertTrue(c.log("a1b").contains("durable: replayed 3 queued message(s)"), c.log("a1b"))
    }

    func testCleanShutdownOnSigint() throws {
        try c.start("root", ["run", "--name", "root", "--listen", c.addr(root)])
        c.waitFor("root listening") { c.names(at: root) != nil }
        c.signal("root", SIGINT)
        XCTAssertEqual(c.waitForExit("root"), 0)
        XCTAssertTrue(c.log("root").contains("received SIGINT; stopping"))
        XCTAssertTrue(c.log("root").contains("node 'root' stopped"))
    }
}
