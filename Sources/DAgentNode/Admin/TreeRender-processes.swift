import DAgentWire

/// The supervised processes of a deployed agent in `dagent tree`
/// (`TreeReply.processes`, see docs/deploy.md).
extension TreeRender {
    /// One line about a process: state, pid, restarts, uptime, last exit.
    static func processSummary(_ p: Dagent_SupervisedProcess) -> String {
        var s = p.state
        if p.state == "waiting" && !p.waitingFor.isEmpty { s += " (for \(p.waitingFor.joined(separator: ",")))" }
        if (p.state == "backoff" || p.state == "crash-loop") && p.pid == 0 { s += " (next in \(seconds(p.nextStartIn)))" }
        if p.adopted { s += " (adopted)" }
        s += p.pid == 0 ? " pid=-" : " pid=\(p.pid) up=\(seconds(p.uptime))"
        s += " restarts=\(p.restarts)"
        if p.registered { s += " registered" }
        if !p.lastExit.isEmpty { s += " last_exit=\"\(p.lastExit)\"" }
        return s
    }

    /// The lines under the agent's own line: `processes (tree NAME): N`, then one per process.
    static func processLines(_ reply: Dagent_TreeReply) -> [String] {
        guard !reply.processes.isEmpty || !reply.deployTree.isEmpty else { return [] }
        var lines = ["processes (tree \(reply.deployTree)): \(reply.processes.count)"]
        let width = reply.processes.map(\.name.count).max() ?? 0
        for p in reply.processes {
            lines.append("  " + p.name + String(repeating: " ", count: width - p.name.count) + "  " + processSummary(p))
        }
        return lines
    }

    /// `,"deploy_tree":...,"processes":[...]`, or "" when the node supervises nothing.
    static func processJSON(_ reply: Dagent_TreeReply, quote q: (String) -> String) -> String {
        guard !reply.processes.isEmpty || !reply.deployTree.isEmpty else { return "" }
        let list = reply.processes.map { processObject($0, quote: q) }
        return ",\"deploy_tree\":\(q(reply.deployTree)),\"processes\":[\(list.joined(separator: ","))]"
    }

    static func processObject(_ p: Dagent_SupervisedProcess, quote q: (String) -> String) -> String {
        "{\"name\":\(q(p.name)),\"state\":\(q(p.state)),\"pid\":\(p.pid == 0 ? "null" : String(p.pid)),\"restarts\":\(p.restarts),"
            + "\"uptime\":\(number(p.uptime)),\"last_exit\":\(q(p.lastExit)),\"registered\":\(p.registered),\"adopted\":\(p.adopted),"
            + "\"next_start_in\":\(number(p.nextStartIn)),\"waiting_for\":[\(p.waitingFor.map(q).joined(separator: ","))]}"
    }

    /// A finite JSON number with millisecond precision.
    static func number(_ v: Double) -> String {
        guard v.isFinite else { return "0" }
        return String(Double((v * 1000).rounded()) / 1000)
    }

    /// 0.4s, 12s, 3m05s, 2h03m (as `dagent status` prints uptimes).
    static func seconds(_ s: Double) -> String {
        guard s.isFinite, s >= 0 else { return "0s" }
        if s < 10 { return String(Double(Int(s * 10)) / 10) + "s" }
        let t = Int(min(s, 1e12))
        if t < 60 { return "\(t)s" }
        if t < 3600 { return "\(t / 60)m" + (t % 60 < 10 ? "0" : "") + "\(t % 60)s" }
        return "\(t / 3600)h" + ((t % 3600) / 60 < 10 ? "0" : "") + "\((t % 3600) / 60)m"
    }
}

/// On a root replica: the agents' processes from the root group's store.
extension TreeRender {
    /// Every process the reply knows by name: its own, then the agents' reports.
    static func processesByName(_ reply: Dagent_TreeReply) -> [String: Dagent_SupervisedProcess] {
        var out: [String: Dagent_SupervisedProcess] = [:]
        for a in reply.agentProcesses { for p in a.processes where out[p.name] == nil { out[p.name] = p } }
        for p in reply.processes { out[p.name] = p }
        return out
    }

    /// `agents' processes (from the root group's store):`, then per agent its report's age and rows.
    static func agentProcessLines(_ reply: Dagent_TreeReply, now: Double) -> [String] {
        guard !reply.agentProcesses.isEmpty || reply.agentProcessesOmitted > 0 else { return [] }
        var lines = ["agents' processes (from the root group's store, deploy/TREE/status/AGENT):"]
        let width = reply.agentProcesses.flatMap { $0.processes.map(\.name.count) }.max() ?? 0
        for a in reply.agentProcesses {
            let age = a.reportedAt > 0 ? ", reported \(seconds(max(0, now - a.reportedAt))) ago" : ""
            lines.append("  \(a.agent) (tree \(a.tree)\(age)): \(a.processes.count)")
            for p in a.processes {
                lines.append("    " + p.name + String(repeating: " ", count: width - p.name.count) + "  " + processSummary(p))
            }
        }
        if reply.agentProcessesOmitted > 0 { lines.append("  (\(reply.agentProcessesOmitted) more agents not shown: dagent status --via ADDR lists them)") }
        return lines
    }

    /// `,"agent_processes":[...]`, or "".
    static func agentProcessJSON(_ reply: Dagent_TreeReply, quote q: (String) -> String) -> String {
        guard !reply.agentProcesses.isEmpty || reply.agentProcessesOmitted > 0 else { return "" }
        let list = reply.agentProcesses.map { a in
            "{\"tree\":\(q(a.tree)),\"agent\":\(q(a.agent)),\"reported_at\":\(number(a.reportedAt)),"
                + "\"processes\":[\(a.processes.map { processObject($0, quote: q) }.joined(separator: ","))]}"
        }
        return ",\"agent_processes\":[\(list.joined(separator: ","))],\"agent_processes_omitted\":\(reply.agentProcessesOmitted)"
    }
}
