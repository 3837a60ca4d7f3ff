import ArgumentParser
import DAgentCLI
import DAgentDeploy
import DAgentNode
import Foundation

/// `dagent status -f FILE`: every node and process of a deployed tree.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the processes of a deployed tree: process, agent, state, pid, restarts, uptime, last exit.",
        discussion: """
        With --via ADDR and no -f: what every agent of every tree last reported to the root group's \
        store (written by the agent on each change). \
        This machine's root replicas and agents come from its `dagent supervise` (agent column \
        "supervise"); each agent of the file is asked for its processes through the tree (joined \
        through the root replicas, or --via). A process in crash-loop or failed is followed by \
        the end of its log. Exit status 1 if an agent did not answer or a process is not running.
        """
    )

    @OptionGroup var options: DeployOptions
    @Flag(help: "Print JSON: a list of rows (an unreachable agent is a row with state \"unreachable\").") var json = false
    @Option(help: "Seconds to wait for the tree.") var timeout: Double = 5

    func run() throws {
        if options.file == nil, let via = options.via { statusFromStore(via: via) }
        let t = options.load()
        var rows = LocalSupervise.report(t)?.processes ?? []
        var problems: [String] = []
        var unreachable: [[String: Any]] = []
        do {
            let client = try DeployClient.join(t, via: options.via, timeout: timeout, logLevel: options.logLevel)
            let reports = client.reports(t.agents.map(\.name), timeout: 2)
            for a in t.agents {
                switch reports[a.name] {
                case .success(let r)?: rows += r.processes
                case .failure(let e)?:
                    problems.append("agent \(a.name): \(e)")
                    unreachable.append(["agent": a.name, "state": "unreachable", "error": "\(e)"])
                case nil: break
                }
            }
            client.close()
        } catch {
            problems.append("\(error)")
            unreachable.append(["agent": "*", "state": "unreachable", "error": "\(error)"])
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            var list = (try? JSONSerialization.jsonObject(with: enc.encode(rows)) as? [Any]) ?? []
            list += unreachable as [Any]
            let d = try JSONSerialization.data(withJSONObject: list, options: [.prettyPrinted, .sortedKeys])
            FileHandle.standardOutput.write(d + Data("\n".utf8))
        } else {
            DeployStatusPrinter.print(rows, json: false)
            for p in problems { FileHandle.standardOutput.write(Data("unreachable: \(p)\n".utf8)) }
        }
        let notRunning = rows.contains { $0.state != .running }
        Foundation.exit(problems.isEmpty && !notRunning ? 0 : 1)
    }
}

extension StatusCommand {
    /// `dagent status --via ADDR` without a file: what every agent last reported to the root
    /// group's store (`deploy/TREE/status/AGENT`), for every tree.
    func statusFromStore(via: String) -> Never {
        bootstrapLogging(level: options.logLevel)
        var config = NodeConfig(name: "dagent-status-\(getpid())")
        do { config.parents = try Shorthand.parseList(via) } catch { fail("\(error)", code: 2) }
        let node = joinOrExit(config, timeout: timeout)
        var rows: [ProcessStatus] = []
        do {
            let r = try DeployState.call(node, ["op": "range", "prefix": "deploy/", "limit": 0], timeout: timeout)
            for rec in r["records"] as? [[String: Any]] ?? [] {
                guard let key = rec["key"] as? String, key.contains("/status/"), let value = rec["value"] as? String,
                      let report = try? JSONDecoder().decode(AgentReport.self, from: Data(value.utf8)) else { continue }
                rows += report.processes
            }
        } catch {
            fail("\(error)")
        }
        try? node.shutdown()
        DeployStatusPrinter.print(rows, json: json)
        Foundation.exit(rows.allSatisfy { $0.state == .running } ? 0 : 1)
    }
}

/// `dagent logs -f FILE NAME`: a process's captured output.
struct LogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print the captured stdout+stderr of a process (or of a root replica or agent).",
        discussion: """
        Logs live in DATA/agents/AGENT/supervisor/logs/NAME.log (processes) and \
        DATA/supervise/logs/NAME.log (root replicas and agents), rotated at logs.max_bytes into
        NAME.log.1 ... NAME.log.KEEP. When the file is on this machine it is read directly \
        (--follow keeps printing what is appended, across rotations); otherwise the agent is asked \
        through the tree for the last --tail lines (no --follow).
        """
    )

    @OptionGroup var options: DeployOptions
    @Option(help: "Print only the last N lines (0: the whole file).") var tail: Int = 0
    @Flag(help: "Keep printing lines as they are appended (local files only).") var follow = false
    @Argument(help: "Process, agent or root replica name.") var name: String

    func run() throws {
        let t = options.load()
        let path: String
        if let p = t.process(named: name) {
            path = t.dataDir(agent: p.agent) + "/supervisor/logs/\(name).log"
        } else if t.agent(named: name) != nil || t.roots.contains(where: { $0.name == name }) {
            path = t.superviseDir + "/logs/\(name).log"
        } else {
            fail("no process, agent or root replica '\(name)' in \(options.path)", code: 2)
        }
        if FileManager.default.fileExists(atPath: path) {
            var offset: UInt64 = 0
            if let h = FileHandle(forReadingAtPath: path) {
                if tail > 0 {
                    let text = LogFile.tail(path: path, lines: tail)
                    if !text.isEmpty { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }
                    offset = (try? h.seekToEnd()) ?? 0
                } else {
                    let d = (try? h.readToEnd()) ?? Data()
                    FileHandle.standardOutput.write(d)
                    offset = UInt64(d.count)
                }
                try? h.close()
            }
            guard follow else { return }
            while true {
                usleep(100_000)
                guard let h = FileHandle(forReadingAtPath: path) else { continue }
                let end = (try? h.seekToEnd()) ?? 0
                if end < offset { offset = 0 }   // rotated (copied and truncated)
                if end > offset {
                    try? h.seek(toOffset: offset)
                    let d = (try? h.readToEnd()) ?? Data()
                    FileHandle.standardOutput.write(d)
                    offset += UInt64(d.count)
                }
                try? h.close()
            }
        }
        guard let p = t.process(named: name) else { fail("no log for '\(name)' on this machine (\(path))") }
        if follow { fail("--follow reads local files only; \(path) is not on this machine") }
        do {
            let client = try DeployClient.join(t, via: options.via, timeout: 5, logLevel: options.logLevel)
            let d = try client.admin(p.agent, ["op": "logs", "name": name, "tail": tail > 0 ? tail : 1000], timeout: 5)
            client.close()
            guard let obj = try JSONSerialization.jsonObject(with: d) as? [String: Any], obj["ok"] as? Bool == true else {
                fail("agent \(p.agent): \(String(decoding: d, as: UTF8.self))")
            }
            FileHandle.standardOutput.write(Data(((obj["text"] as? String ?? "") + "\n").utf8))
        } catch {
            fail("\(error)")
        }
    }
}

/// `dagent restart -f FILE NAME`: restart one process.
struct RestartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restart",
        abstract: "Restart one process (stop_signal, then start again once it exited), or one of this machine's agents or root replicas.",
        discussion: "Waits until it runs again and prints its status row. Exit status 1 if it does not run within --timeout."
    )

    @OptionGroup var options: DeployOptions
    @Option(help: "Seconds to wait.") var timeout: Double = 30
    @Argument(help: "Process, agent or root replica name.") var name: String

    func run() throws {
        let t = options.load()
        let deadline = Date().addingTimeInterval(timeout)
        if let p = t.process(named: name) {
            do {
                let client = try DeployClient.join(t, via: options.via, timeout: min(timeout, 10), logLevel: options.logLevel)
                let before = (try? client.report(p.agent, timeout: 2).get())?.processes.first { $0.name == name }
                let d = try client.admin(p.agent, ["op": "restart", "name": name], timeout: 5)
                if let obj = try JSONSerialization.jsonObject(with: d) as? [String: Any], obj["ok"] as? Bool != true {
                    fail("agent \(p.agent): \(obj["error"] ?? "refused")")
                }
                progress("restart", "\(name): asked agent \(p.agent)")
                while Date() < deadline {
                    if let row = (try? client.report(p.agent, timeout: 2).get())?.processes.first(where: { $0.name == name }),
                       row.state == .running, row.pid != nil, row.pid != before?.pid {
                        DeployStatusPrinter.print([row], json: false)
                        client.close()
                        return
                    }
                    usleep(50_000)
                }
                fail("\(name) is not running again after \(timeout)s; see dagent logs -f \(options.path) \(name)")
            } catch {
                fail("\(error)")
            }
        }
        guard t.agent(named: name) != nil || t.roots.contains(where: { $0.name == name }) else {
            fail("no process, agent or root replica '\(name)' in \(options.path)", code: 2)
        }
        guard let row = LocalSupervise.report(t)?.processes.first(where: { $0.name == name }), let pid = row.pid else {
            fail("\(name) does not run under this machine's `dagent supervise`")
        }
        kill(pid, SIGTERM)   // supervise starts it again (restart: always)
        progress("restart", "\(name): sent SIGTERM to pid \(pid); supervise starts it again")
        while Date() < deadline {
            if let r = LocalSupervise.report(t)?.processes.first(where: { $0.name == name }), r.state == .running, let p = r.pid, p != pid {
                DeployStatusPrinter.print([r], json: false)
                return
            }
            usleep(50_000)
        }
        fail("\(name) is not running again after \(timeout)s")
    }
}

/// `dagent config -f FILE`: validate and print the resolved tree.
struct DeployConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Validate a topology file and print the resolved tree (errors name the line and the key).",
        discussion: "Exit status 2 with one line per problem (FILE:LINE: KEY: what is wrong) when the file is not valid."
    )

    @Option(name: [.customShort("f"), .customLong("file")], help: "The topology file.") var file: String
    @Flag(help: "Print the resolved tree as JSON.") var json = false

    func run() throws {
        let t = DeployTopologyFile.load(file)
        if json {
            FileHandle.standardOutput.write(Data((DeployConfigRender.json(t) + "\n").utf8))
        } else {
            FileHandle.standardOutput.write(Data(DeployConfigRender.text(t).utf8))
        }
    }
}

enum DeployConfigRender {
    static func text(_ t: Topology) -> String {
        var out = "tree \(t.name)  data \(t.data)\(t.secret == nil ? "" : "  secret (set)")\n"
        out += "root group (\(t.roots.count) replica\(t.roots.count == 1 ? "" : "s")):\n"
        for r in t.roots { out += "  \(r.name)  node_id \(r.id)  \(r.listen)\(r.host.map { "  host \($0)" } ?? "")\n" }
        for a in t.agents {
            var line = "agent \(a.name)"
            if let h = a.host { line += "  host \(h)" }
            if let l = a.listen { line += "  listen \(l)" }
            if let m = a.msgq { line += "  msgq \(m)" }
            if let h = a.http { line += "  http \(h)" }
            out += line + "\n"
            if !a.metricsJSON.isEmpty { out += "  metrics \(a.metricsJSON)\n" }
            if !a.plugins.isEmpty { out += "  plugins \(a.plugins.joined(separator: ", "))  config \(a.pluginConfigJSON)\n" }
            if a.processes.isEmpty { out += "  (no processes)\n" }
            for p in a.processes {
                var s = "  \(p.name): \(p.run)\n    restart \(p.restart.rawValue), backoff \(p.backoff.initial)s..\(p.backoff.max)s, min_uptime \(p.minUptime)s, crash-loop after \(p.crashLoopAfter) quick exits"
                if p.maxRestarts > 0 { s += ", max_restarts \(p.maxRestarts)" }
                s += "\n    stop \(SignalName.name(p.stopSignal)) then SIGKILL after \(p.stopTimeout)s; logs \(p.logMaxBytes) bytes x \(p.logKeep); cwd \(p.cwd)"
                if !p.dependsOn.isEmpty { s += "\n    depends_on \(p.dependsOn.joined(separator: ", "))" }
                if !p.env.isEmpty { s += "\n    env " + p.env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") }
                out += s + "\n"
            }
        }
        let levels = DependencyOrder.levels(Dictionary(uniqueKeysWithValues: t.processes.map { ($0.name, $0.dependsOn) }))
        out += "start order: " + (levels.isEmpty ? "(nothing)" : levels.map { $0.joined(separator: " ") }.joined(separator: " ; ")) + "\n"
        return out
    }

    static func json(_ t: Topology) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        var obj: [String: Any] = ["name": t.name, "data": t.data, "log_level": t.logLevel]
        obj["root"] = t.roots.map { r -> [String: Any] in
            var d: [String: Any] = ["id": r.id, "name": r.name, "listen": r.listen.description]
            if let h = r.host { d["host"] = h }
            return d
        }
        obj["agents"] = t.agents.map { a -> [String: Any] in
            var d: [String: Any] = ["name": a.name, "plugins": a.plugins, "child_address": a.childAddress]
            if let h = a.host { d["host"] = h }
            if let l = a.listen { d["listen"] = l.description }
            if let m = a.msgq { d["msgq"] = m }
            if let h = a.http { d["http"] = h.description }
            if !a.metricsJSON.isEmpty { d["metrics"] = (try? JSONSerialization.jsonObject(with: Data(a.metricsJSON.utf8))) ?? [:] }
            d["config"] = (try? JSONSerialization.jsonObject(with: Data(a.pluginConfigJSON.utf8))) ?? [:]
            d["processes"] = a.processes.map { p in (try? JSONSerialization.jsonObject(with: enc.encode(p))) ?? [:] }
            return d
        }
        obj["start_order"] = DependencyOrder.levels(Dictionary(uniqueKeysWithValues: t.processes.map { ($0.name, $0.dependsOn) }))
        let d = (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .prettyPrinted])) ?? Data()
        return String(decoding: d, as: UTF8.self)
    }
}

/// `dagent systemd -f FILE --agent NAME | --root ID`: print a unit file.
struct SystemdCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "systemd",
        abstract: "Print the systemd unit of one agent or root replica of a topology (Type=notify).",
        discussion: """
        dagent systemd -f /etc/dagent/shop.yaml --agent a1 > /etc/systemd/system/dagent-shop-a1.service
        The unit runs `dagent run --topology FILE --agent a1`; the node tells systemd it is ready \
        (sd_notify READY=1) once it is registered in the tree. KillMode=process: when the agent \
        crashes, its processes keep running and the restarted agent adopts them; when it is \
        stopped, it stops them itself. Then, from any machine: dagent up -f FILE --via ADDR.
        """
    )

    @Option(name: [.customShort("f"), .customLong("file")], help: "The topology file (its absolute path goes into the unit).") var file: String
    @Option(help: "The agent to print the unit of.") var agent: String?
    @Option(help: "The root replica (node id) to print the unit of.") var root: UInt64?
    @Option(help: "The dagent executable the unit runs (default: this one).") var bin: String?
    @Option(help: "User= of the unit.") var user: String?

    func run() throws {
        let t = DeployTopologyFile.load(file)
        let path = DeployTopologyFile.absolute(file)
        let exe = bin ?? DeployPaths.executable
        if let agent {
            guard let u = SystemdUnits.agent(t, name: agent, binary: exe, topologyPath: path, user: user) else {
                fail("no agent '\(agent)' in \(file) (agents: \(t.agents.map(\.name).joined(separator: ", ")))", code: 2)
            }
            print(u, terminator: "")
        } else if let root {
            guard let u = SystemdUnits.root(t, id: root, binary: exe, topologyPath: path, user: user) else {
                fail("no root replica with id \(root) in \(file)", code: 2)
            }
            print(u, terminator: "")
        } else {
            fail("say which unit: --agent NAME or --root ID", code: 2)
        }
    }
}
