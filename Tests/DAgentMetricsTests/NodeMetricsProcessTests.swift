@testable import DAgentMetrics
import DAgentNode
import DAgentWire
import XCTest

/// The `dagent_process_*` series from the processes in a tree snapshot (no processes, no I/O).
final class NodeMetricsProcessTests: XCTestCase {
    func process(_ name: String, _ state: String, pid: UInt32, restarts: UInt32, uptime: Double = 0) -> Dagent_SupervisedProcess {
        var p = Dagent_SupervisedProcess()
        p.name = name
        p.state = state
        p.pid = pid
        p.restarts = restarts
        p.uptime = uptime
        return p
    }

    func testStatesUpRestartsAndRemoval() throws {
        var config = NodeConfig(name: "a1")
        config.listen = [.tcp(host: "127.0.0.1", port: 0)]
        let node = try Node(config: config)
        try node.start().wait()
        defer { try? node.shutdown() }
        let m = NodeMetrics(node: node)
        var t = Dagent_TreeReply()
        t.processes = [process("echo1", "running", pid: 10, restarts: 0, uptime: 2.5), process("bad", "crash-loop", pid: 0, restarts: 4)]
        m.apply(t)
        let r = m.registry
        XCTAssertEqual(r.value("dagent_process_up", labels: [("process", "echo1")]), 1)
        XCTAssertEqual(r.value("dagent_process_up", labels: [("process", "bad")]), 0)
        XCTAssertEqual(r.value("dagent_process_uptime_seconds", labels: [("process", "echo1")]), 2.5)
        XCTAssertEqual(r.value("dagent_process_restarts_total", labels: [("process", "bad")]), 4)
        XCTAssertEqual(r.value("dagent_process_state", labels: [("process", "bad"), ("state", "crash-loop")]), 1)
        XCTAssertEqual(r.value("dagent_process_state", labels: [("process", "bad"), ("state", "running")]), 0)
        // A restart counts once; a new incarnation of the agent that starts over does not go backwards.
        t.processes = [process("echo1", "running", pid: 11, restarts: 1, uptime: 0.1)]
        m.apply(t)
        XCTAssertEqual(r.value("dagent_process_restarts_total", labels: [("process", "echo1")]), 1)
        // "bad" is no longer supervised: every series of it is gone, echo1's stay.
        XCTAssertNil(r.value("dagent_process_up", labels: [("process", "bad")]))
        XCTAssertNil(r.value("dagent_process_state", labels: [("process", "bad"), ("state", "crash-loop")]))
        XCTAssertNil(r.value("dagent_process_restarts_total", labels: [("process", "bad")]))
        XCTAssertEqual(r.value("dagent_process_up", labels: [("process", "echo1")]), 1)
        // Coming back starts its counter from what the agent says.
        t.processes.append(process("bad", "backoff", pid: 0, restarts: 6))
        m.apply(t)
        XCTAssertEqual(r.value("dagent_process_restarts_total", labels: [("process", "bad")]), 6)
        let text = r.render()
        XCTAssertTrue(text.contains("# TYPE dagent_process_restarts_total counter\n"), text)
        XCTAssertTrue(text.contains("dagent_process_state{process=\"bad\",state=\"backoff\"} 1\n"), text)
    }
}
