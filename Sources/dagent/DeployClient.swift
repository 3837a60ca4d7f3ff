import DAgentDeploy
import DAgentWire
import DAgentCLI
import DAgentNode
import DAgentRouting
import Foundation

/// Options every deploy command shares.
struct DeployOptions: ParsableArguments {
    @Option(name: [.customShort("f"), .customLong("file")], help: "The topology file (see docs/deploy.md).")
    var file: String?

    @Option(help: "Join the tree through this address (tcp://HOST:PORT or msgq://PATH) instead of the file's root replicas; with `up`/`down`, also: leave this machine's nodes alone (they run under systemd or elsewhere).")
    var via: String?

    @Option(help: "Act as this machine: nodes whose host: is HOST count as local (default: this machine's host name).")
    var host: String?

    @Option(help: "Log level of this command's own one-shot node.")
    var logLevel: String = "error"

    var topologyPath: String { DeployTopologyFile.absolute(path) }
    func load() -> Topology { DeployTopologyFile.load(path) }
    /// The file; exits with a usage error when -f is missing.
    var path: String {
        guard let file else { fail("say which topology: -f FILE", code: 2) }
        return file
    }
}

import ArgumentParser

/// A one-shot node of the CLI inside a deployed tree.
final class DeployClient: @unchecked Sendable {
    let node: Node
    let topology: Topology

    init(node: Node, topology: Topology) {
        self.node = node
        self.topology = topology
    }

    /// Joins through `via` (or the root replicas), waiting up to `timeout`
    /// while the parents come up.
    static func join(_ t: Topology, via: String?, timeout: Double, logLevel: String) throws -> DeployClient {
        bootstrapLogging(level: logLevel)
        var config = NodeConfig(name: "dagent-deploy-\(getpid())")
        let parents = via ?? t.rootAddresses.map(\.description).joined(separator: ",")
        config.parents = try Shorthand.parseList(parents)
        config.secret = t.secret ?? ""
        config.reconnectInitialBackoff = 0.05
        config.reconnectMaxBackoff = 0.5
        let node = try Node(config: config)
        try node.start().wait()
        do {
            try node.ready().timeoutWait(node: node, seconds: timeout)
        } catch {
            let why = node.joinProblem().map { " (\($0))" } ?? ""
            try? node.shutdown()
            throw DeployIOError("cannot join the tree through \(parents) within \(timeout)s\(why)")
        }
        return DeployClient(node: node, topology: t)
    }

    func close() { try? node.shutdown() }

    /// One admin request to an agent; the reply payload.
    func admin(_ agent: String, _ request: [String: Any], timeout: Double) throws -> Data {
        let body = try JSONSerialization.data(withJSONObject: request)
        return try node.request(to: agent, type: DeployProtocol.adminType, payload: body, timeout: timeout).wait().payload
    }

    /// The agent's processes, or the reason it did not answer.
    func report(_ agent: String, timeout: Double) -> Result<AgentReport, DeployIOError> {
        do {
            let d = try admin(agent, ["op": "status"], timeout: timeout)
            return .success(try JSONDecoder().decode(AgentReport.self, from: d))
        } catch {
            return .failure(DeployIOError("\(error)"))
        }
    }

    /// Reports of several agents, asked in parallel.
    func reports(_ agents: [String], timeout: Double) -> [String: Result<AgentReport, DeployIOError>] {
        final class Box: @unchecked Sendable {
            let lock = NSLock()
            var out: [String: Result<AgentReport, DeployIOError>] = [:]
        }
        let box = Box()
        DispatchQueue.concurrentPerform(iterations: agents.count) { i in
            let r = report(agents[i], timeout: timeout)
            box.lock.withLock { box.out[agents[i]] = r }
        }
        return box.out
    }

    /// Stores an agent's desired state and tells it to read it now (retried
    /// until the agent answers or `deadline`).
    func handOver(_ agent: String, _ processes: [ProcessSpec], deadline: Date) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let text = String(decoding: try enc.encode(DesiredState(processes: processes)), as: UTF8.self)
        try DeployState.put(node, DeployProtocol.desiredKey(tree: topology.name, agent: agent), text, timeout: max(1, deadline.timeIntervalSinceNow))
        var last = ""
        while Date() < deadline {
            do {
                let d = try admin(agent, ["op": "reconcile"], timeout: min(5, max(0.5, deadline.timeIntervalSinceNow)))
                let obj = try JSONSerialization.jsonObject(with: d) as? [String: Any]
                if obj?["ok"] as? Bool == true { return }
                last = obj?["error"] as? String ?? "refused"
            } catch {
                last = "\(error)"
            }
            usleep(100_000)
        }
        throw DeployIOError("agent '\(agent)' did not take its processes: \(last)")
    }
}

/// Progress lines on stderr.
func progress(_ command: String, _ message: String) {
    FileHandle.standardError.write(Data("\(command): \(message)\n".utf8))
}

/// The per-machine supervisor of a topology, seen from the CLI.
enum LocalSupervise {
    static func pidFile(_ t: Topology) -> String { t.superviseDir + "/supervise.pid" }
    static func statusFile(_ t: Topology) -> String { t.superviseDir + "/status.json" }

    /// The pid of the live `dagent supervise` of this tree, if any.
    static func runningPid(_ t: Topology) -> Int32? {
        guard let text = try? String(contentsOfFile: pidFile(t), encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
              kill(pid, 0) == 0, ProcStat.startTicks(pid: pid) != nil,
              let cmd = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8), cmd.contains("supervise") else { return nil }
        return pid
    }

    static func report(_ t: Topology) -> AgentReport? {
        guard runningPid(t) != nil, let d = FileManager.default.contents(atPath: statusFile(t)),
              var r = try? JSONDecoder().decode(AgentReport.self, from: d) else { return nil }
        // Uptimes were true when the file was written.
        if let m = (try? FileManager.default.attributesOfItem(atPath: statusFile(t)))?[.modificationDate] as? Date {
            let age = max(0, Date().timeIntervalSince(m))
            for i in r.processes.indices where r.processes[i].pid != nil { r.processes[i].uptime += age }
        }
        return r
    }

    /// True if a node on `host` runs on this machine.
    static func isLocal(_ host: String?, as override: String?) -> Bool {
        guard let host else { return true }
        if ["localhost", "127.0.0.1", "::1"].contains(host) { return true }
        return host == (override ?? ProcessInfo.processInfo.hostName) || host == ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init)
    }

    /// The root replicas and agents of the file that run on this machine, as processes of `dagent supervise`.
    static func nodes(_ t: Topology, path: String, host: String?) -> [ProcessSpec] {
        let exe = DeployPaths.executable
        var out: [ProcessSpec] = []
        let localRoots = t.roots.filter { isLocal($0.host, as: host) }
        for r in localRoots {
            var s = ProcessSpec.defaults(name: r.name, agent: "supervise", cwd: "/")
            s.run = .argv([exe, "run", "--topology", path, "--root", String(r.id)])
            s.backoff = Backoff(initial: 0.2, max: 5)
            s.minUptime = 2
            s.crashLoopAfter = 5
            out.append(s)
        }
        for a in t.agents where isLocal(a.host, as: host) {
            var s = ProcessSpec.defaults(name: a.name, agent: "supervise", cwd: "/")
            s.run = .argv([exe, "run", "--topology", path, "--agent", a.name])
            s.backoff = Backoff(initial: 0.2, max: 5)
            s.minUptime = 2
            s.crashLoopAfter = 5
            s.stopTimeout = (a.processes.map(\.stopTimeout).max() ?? 10) + 5
            // Stopped before the roots (dependencies order the stop; supervise starts all at once).
            s.dependsOn = localRoots.map(\.name)
            out.append(s)
        }
        return out
    }
}
