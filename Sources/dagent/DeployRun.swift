import DAgentDeploy
import DAgentRoot
import DAgentCLI
import DAgentNode
import DAgentRouting
import Foundation

/// `dagent run --topology FILE --agent NAME | --root ID`: a node of a
/// deployed tree, configured from the topology file (what `dagent supervise`
/// and the systemd units start).
struct DeployRunContext {
    var topology: Topology
    var agent: AgentSpec?
    var root: RootSpec?
    /// Set once, before the node starts; read by the hooks below.
    nonisolated(unsafe) static var current: DeployRunContext?
}

enum DeployTopologyFile {
    /// Reads and validates a topology file; exits 2 with every problem on failure.
    static func load(_ path: String) -> Topology {
        let abs = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        guard let text = try? String(contentsOfFile: abs, encoding: .utf8) else { fail("cannot read topology file '\(path)'", code: 2) }
        do {
            return try TopologyParser.parse(yaml: text, source: path, baseDirectory: (abs as NSString).deletingLastPathComponent)
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            exit(2)
        }
    }

    static func absolute(_ path: String) -> String {
        let abs = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return URL(fileURLWithPath: abs).standardizedFileURL.path
    }
}

extension RunCommand {
    /// This command with the options `--topology` stands for (nil without it).
    func resolvedFromTopology() -> RunCommand? {
        if topology == nil && (agent != nil || root != nil) { fail("--agent and --root need --topology FILE", code: 2) }
        guard topology != nil else {
            // A process started by an agent's supervisor: keep its session in the data folder the
            // supervisor gives it, so that a restart reclaims its name at once.
            let env = ProcessInfo.processInfo.environment
            guard data == nil, raft == nil, let dir = env["DAGENT_DATA"], !dir.isEmpty, let me = env["DAGENT_NAME"], me == name else { return nil }
            var copy = self
            copy.data = dir
            return copy
        }
        var copy = self
        do { try copy.applyTopology() } catch { fail("\(error)", code: 2) }
        copy.topology = nil
        copy.agent = nil
        copy.root = nil
        return copy
    }

    /// With `--topology`, fills in the node's options from the file: an agent
    /// gets a generated `node.yaml` (name, listen, msgq, the root replicas as
    /// parents, plugins), a root replica the DCF cluster JSON.
    mutating func applyTopology() throws {
        guard let path = topology else { return }
        let t = DeployTopologyFile.load(path)
        func q(_ s: String) -> String { JSONEncodedString.quote(s) }
        if let name = agent {
            guard let a = t.agent(named: name) else {
                throw ConfigError("\(path): no agent '\(name)' (agents: \(t.agents.map(\.name).joined(separator: ", ")))")
            }
            let dir = t.dataDir(agent: a.name)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            var y = "# Generated from \(path) by dagent run --topology; edits are overwritten.\n"
            y += "name: \(q(a.name))\nrole: agent\ndata: \(q(dir))\nlog_level: \(t.logLevel)\n"
            if let l = a.listen { y += "listen: \(q(l.description))\n" }
            if let m = a.msgq { y += "msgq: \(q(m))\n" }
            if let h = a.http { y += "http: \(q(h.description))\n" }
            if !a.metricsJSON.isEmpty { y += "metrics: \(a.metricsJSON)\n" }
            y += "parents: [\(t.rootAddresses.map { q($0.description) }.joined(separator: ", "))]\n"
            if let s = t.secret { y += "secret: \(q(s))\n" }
            if !a.plugins.isEmpty {
                y += "plugins:\n  dirs: [\(a.plugins.map(q).joined(separator: ", "))]\n  config: \(a.pluginConfigJSON)\n"
            }
            let file = dir + "/node.yaml"
            try DurableFile.write(Data(y.utf8), to: file)
            config = file
            DeployRunContext.current = DeployRunContext(topology: t, agent: a, root: nil)
        } else if let id = root {
            guard let r = t.root(id: id) else {
                throw ConfigError("\(path): no root replica with id \(id) (ids: \(t.roots.map { String($0.id) }.joined(separator: ", ")))")
            }
            let dir = t.dataDir(root: r)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let members = t.roots.enumerated().map { i, m in
                "{\"stream_id\":1,\"node_id\":\(m.id),\"ip\":\(q(m.listen.host)),\"port\":\(m.listen.port),\"role\":\"\(i == 0 ? "LEADER" : "FOLLOWER")\"}"
            }
            let file = dir + "/cluster.json"
            try DurableFile.write(Data("[\(members.joined(separator: ","))]\n".utf8), to: file)
            raft = file
            nodeId = r.id
            data = dir
            if name == nil { name = r.name }
            if secret == nil { secret = t.secret }
            if logLevel == nil { logLevel = t.logLevel }
            DeployRunContext.current = DeployRunContext(topology: t, agent: nil, root: r)
        } else {
            throw ConfigError("--topology needs --agent NAME or --root ID")
        }
    }
}

/// What `dagent run` does for deployed nodes, at the points it calls.
enum DeployRunHooks {
    nonisolated(unsafe) static var service: DeployAgentService?
    nonisolated(unsafe) static var notified = false

    /// After the node started: an agent of a topology starts supervising.
    static func nodeStarted(_ node: Node, replica: RootReplica?) {
        if let replica { DeployRootTree.install(node: node, replica: replica) }
        guard let ctx = DeployRunContext.current else { return }
        if let a = ctx.agent {
            let s = DeployAgentService(node: node, tree: ctx.topology.name, dataDir: ctx.topology.dataDir(agent: a.name), childAddress: a.childAddress)
            s.start()
            service = s
        }
        if node.config.parents.isEmpty { registered() }
    }

    /// The node is registered (or serving, at the top): tell systemd.
    static func registered() {
        guard !notified else { return }
        notified = true
        if SystemdNotify.notify("READY=1\nSTATUS=registered") {
            unsetenv("NOTIFY_SOCKET")
        }
    }

    /// Before the node stops: stop the supervised processes.
    static func stopping() {
        if let s = service {
            SystemdNotify.notify("STOPPING=1")
            let wait = (DeployRunContext.current?.agent?.processes.map(\.stopTimeout).max() ?? 10) + 2
            s.stop(timeout: wait)
        }
    }
}

enum JSONEncodedString {
    /// A JSON string literal (also a valid YAML scalar).
    static func quote(_ s: String) -> String {
        let d = try! JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])
        let text = String(decoding: d, as: UTF8.self)
        return String(text.dropFirst().dropLast())
    }
}
