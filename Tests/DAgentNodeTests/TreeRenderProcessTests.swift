@testable import DAgentNode
import DAgentWire
import Foundation
import XCTest

/// `dagent tree` with supervised processes: an agent's own, and a root's from the store.
final class TreeRenderProcessTests: XCTestCase {
    func reply() -> Dagent_TreeReply {
        var t = Dagent_TreeReply()
        t.name = "a1"
        t.role = .agent
        t.parent = "r1"
        var n = Dagent_NameRecord()
        n.name = "echo1"
        n.parent = "a1"
        t.names = [n]
        t.deployTree = "shop"
        var p = Dagent_SupervisedProcess()
        p.name = "echo1"
        p.state = "running"
        p.pid = 42
        p.restarts = 2
        p.uptime = 3.25
        p.lastExit = "killed by \"SIGKILL\""
        var w = Dagent_SupervisedProcess()
        w.name = "worker"
        w.state = "waiting"
        w.waitingFor = ["echo1"]
        t.processes = [p, w]
        return t
    }

    func testTextShowsTheProcessesUnderTheAgent() {
        let text = TreeRender.text(reply())
        XCTAssertTrue(text.contains("└── echo1 [leaf]  process running restarts=2"), text)
        XCTAssertTrue(text.contains("processes (tree shop): 2\n  echo1   running pid=42 up=3.2s restarts=2 last_exit=\"killed by \"SIGKILL\"\"\n"
                                    + "  worker  waiting (for echo1) pid=- restarts=0"), text)
    }

    func testJSONIsValidAndComplete() throws {
        let obj = try JSONSerialization.jsonObject(with: Data(TreeRender.json(reply()).utf8)) as! [String: Any]
        XCTAssertEqual(obj["deploy_tree"] as? String, "shop")
        let procs = obj["processes"] as! [[String: Any]]
        XCTAssertEqual(procs[0]["pid"] as? Int, 42)
        XCTAssertEqual(procs[0]["last_exit"] as? String, "killed by \"SIGKILL\"")
        XCTAssertTrue(procs[1]["pid"] is NSNull)
        XCTAssertEqual(procs[1]["waiting_for"] as? [String], ["echo1"])
        XCTAssertNil(obj["agent_processes"], "only root replicas carry the store's reports")
    }

    func testRootRendersTheAgentsReports() throws {
        var t = Dagent_TreeReply()
        t.name = "r1"
        t.role = .root
        var a = Dagent_AgentProcesses()
        a.tree = "shop"
        a.agent = "a1"
        a.reportedAt = Date().timeIntervalSince1970 - 5
        a.processes = reply().processes
        t.agentProcesses = [a]
        t.agentProcessesOmitted = 3
        let text = TreeRender.text(t)
        XCTAssertTrue(text.contains("  a1 (tree shop, reported 5."), text)
        XCTAssertTrue(text.contains("    echo1   running pid=42"), text)
        XCTAssertTrue(text.contains("(3 more agents not shown"), text)
        let obj = try JSONSerialization.jsonObject(with: Data(TreeRender.json(t).utf8)) as! [String: Any]
        let list = obj["agent_processes"] as! [[String: Any]]
        XCTAssertEqual(list[0]["agent"] as? String, "a1")
        XCTAssertEqual((list[0]["processes"] as! [[String: Any]]).count, 2)
        XCTAssertEqual(obj["agent_processes_omitted"] as? Int, 3)
    }
}
