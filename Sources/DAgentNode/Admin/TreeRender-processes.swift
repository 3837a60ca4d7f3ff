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
        let list = reply.processes.map { p in
            "{\"name\":\(q(p.name)),\"state\":\(q(p.state)),\"pid\":\(p.pid == 0 ? "null" : String(p.pid)),\"restarts\":\(p.restarts),"
                + "\"uptime\":\(number(p.uptime)),\"last_exit\":\(q(p.lastExit)),\"registered\":\(p.registered),\"adopted\":\(p.adopted),"
                + "\"next_start_in\":\(number(p.nextStartIn)),\"waiting_for\":[\(p.waitingFor.map(q).joined(separator: ","))]}"
        }
        return ",\"deploy_tree\":\(q(reply.deployTree)),\"processes\":[\(list.joined(separator: ","))]"
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
