import DAgentDeploy
import DAgentNode
import DAgentRoot
import DAgentWire
import Foundation

/// Status reaches the root: a root replica's `dagent tree` reply carries what
/// the agents of deployed trees last wrote to the root group's store
/// (`deploy/TREE/status/AGENT`, `TreeReply.agent_processes`), read from the
/// replica's own copy of the store on its event loop (no request, no wait).
enum DeployRootTree {
    /// Status records (one per agent) a tree reply carries at most; the rest
    /// are counted in `agent_processes_omitted` (`dagent status --via` reads them all).
    static let maxAgents = 256

    static func install(node: Node, replica: RootReplica) {
        let previous = node.treeExtension
        node.treeExtension = { reply in
            previous?(&reply)
            fill(&reply, replica.localRecords(prefix: "deploy/", limit: 0).records)
        }
    }

    static func fill(_ reply: inout Dagent_TreeReply, _ records: [(key: String, value: String)]) {
        var out: [Dagent_AgentProcesses] = []
        var omitted: UInt32 = 0
        for (key, value) in records {
            let parts = key.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 4, parts[2] == "status",
                  let report = try? JSONDecoder().decode(AgentReport.self, from: Data(value.utf8)) else { continue }
            guard out.count < maxAgents else {
                omitted += 1
                continue
            }
            var a = Dagent_AgentProcesses()
            a.tree = String(parts[1])
            a.agent = String(parts[3])
            a.reportedAt = report.reportedAt ?? 0
            a.processes = report.processes.map { DeployTreeRows.message($0, age: 0) }
            out.append(a)
        }
        reply.agentProcesses = out
        reply.agentProcessesOmitted = omitted
    }
}
