import ArgumentParser
import DAgentCLI
import DAgentDeploy
import Foundation

/// `dagent up -f FILE`: bring up, or update, the tree of a topology file.
struct UpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Bring up, or update, what a topology file describes; returns once every process runs or failed with a reason.",
        discussion: """
        On this machine `up` starts (or, when it runs, tells to re-read the file) the per-machine \
        supervisor `dagent supervise`, which runs the root replicas and agents whose host: is this \
        machine. Then it stores each agent's processes in the root group's store and tells the agent, \
        and waits until each process is running (or in crash-loop / failed, with the reason). \
        Idempotent: a second `up` after an edit restarts only the processes whose command, env or \
        cwd changed, starts the added ones and stops the removed ones. \
        With --via ADDR the agents are already running (under systemd, on their machines): `up` \
        starts nothing locally and hands each agent its processes through the tree. \
        Exit status: 0 all running, 1 a process failed or did not settle within --timeout, 2 a bad file.
        """
    )

    @OptionGroup var options: DeployOptions
    @Option(help: "Seconds to wait for the tree and its processes.") var timeout: Double = 60
    @Flag(help: "Print the final status as JSON.") var json = false

    func run() throws {
        let t = options.load()
        let deadline = Date().addingTimeInterval(timeout)
        let started = Date()
        if options.via == nil {
            try DeployUp.ensureSupervise(t, path: options.topologyPath, host: options.host, deadline: deadline)
        }
        let client: DeployClient
        do { client = try DeployClient.join(t, via: options.via, timeout: max(1, deadline.timeIntervalSinceNow), logLevel: options.logLevel) } catch { fail("\(error)") }
        progress("up", "joined the tree as \(client.node.config.name); handing the agents their processes")
        for a in t.agents {
            do { try client.handOver(a.name, a.processes, deadline: deadline) } catch { fail("\(error)") }
        }
        let rows = DeployUp.waitSettled(client, agents: t.agents.map(\.name), deadline: deadline, verb: "up")
        client.close()
        let all = (LocalSupervise.report(t)?.processes ?? []) + rows
        DeployStatusPrinter.print(all, json: json)
        let bad = rows.filter { $0.state != .running }
        progress("up", bad.isEmpty ? "\(rows.count) process(es) running after \(String(format: "%.2f", Date().timeIntervalSince(started)))s"
                                   : "not running: \(bad.map { "\($0.name) (\($0.state.rawValue)\($0.lastExit.isEmpty ? "" : ", " + $0.lastExit))" }.joined(separator: ", "))")
        Foundation.exit(bad.isEmpty ? 0 : 1)
    }
}

/// `dagent down -f FILE`: stop everything, dependents first.
struct DownCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Stop every process of a topology in reverse dependency order, then this machine's agents and root replicas.",
        discussion: """
        Processes are stopped level by level across all agents (what depends on a name stops before \
        it), each with its stop_signal and, after stop_timeout, SIGKILL. Their desired state is \
        removed from the root group's store. Then the per-machine supervisor stops the agents (which \
        remove their message queues and name tables) and the root replicas. With --via, only the \
        processes are stopped; the agents keep running.
        """
    )

    @OptionGroup var options: DeployOptions
    @Option(help: "Seconds to wait.") var timeout: Double = 60

    func run() throws {
        let t = options.load()
        let deadline = Date().addingTimeInterval(timeout)
        let local = options.via == nil ? LocalSupervise.runningPid(t) : nil
        var stopped = 0
        if options.via != nil || local != nil {
            do {
                let client = try DeployClient.join(t, via: options.via, timeout: min(10, max(1, deadline.timeIntervalSinceNow)), logLevel: options.logLevel)
                stopped = DeployUp.stopProcesses(client, t, deadline: deadline)
                _ = try? DeployState.call(client.node, ["op": "delprefix", "prefix": DeployProtocol.treePrefix(t.name)], timeout: 5)
                client.close()
            } catch {
                progress("down", "\(error); the agents stop their processes themselves as they stop")
            }
        }
        if let pid = local {
            progress("down", "stopping this machine's agents and root replicas (supervise pid \(pid))")
            kill(pid, SIGTERM)
            while kill(pid, 0) == 0 && ProcStat.startTicks(pid: pid) != nil && Date() < deadline { usleep(20_000) }
            if ProcStat.startTicks(pid: pid) != nil { fail("supervise (pid \(pid)) did not stop within \(timeout)s") }
        } else if options.via == nil {
            progress("down", "tree '\(t.name)' is not running on this machine")
        }
        progress("down", "stopped \(stopped) process(es)\(local != nil ? " and this machine's nodes" : "")")
    }
}

enum DeployUp {
    /// Starts `dagent supervise` for this tree, or tells the running one to re-read the file;
    /// then waits until its nodes run.
    static func ensureSupervise(_ t: Topology, path: String, host: String?, deadline: Date) throws {
        let nodes = LocalSupervise.nodes(t, path: path, host: host)
        if let pid = LocalSupervise.runningPid(t) {
            progress("up", "supervise (pid \(pid)) is running: re-reading \(path)")
            kill(pid, SIGHUP)
        } else if !nodes.isEmpty {
            try FileManager.default.createDirectory(atPath: t.superviseDir, withIntermediateDirectories: true)
            var argv = [DeployPaths.executable, "supervise", "-f", path]
            if let host { argv += ["--host", host] }
            let pid = try ProcessSpawner.spawn(argv: argv, env: ProcessInfo.processInfo.environment.filter { $0.key != "NOTIFY_SOCKET" },
                                               cwd: "/", logPath: t.superviseDir + "/supervise.log", newSession: true)
            progress("up", "started supervise (pid \(pid)) for \(nodes.map(\.name).joined(separator: ", ")); its log: \(t.superviseDir)/supervise.log")
        }
        // Wait for its nodes to run (the new set, after a SIGHUP).
        let want = Set(nodes.map(\.name))
        var shown = ""
        while Date() < deadline {
            if let r = LocalSupervise.report(t) {
                let byName = Dictionary(r.processes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
                let running = want.filter { byName[$0]?.state == .running }
                let line = "nodes running: \(running.sorted().joined(separator: " "))"
                if line != shown && !running.isEmpty { progress("up", line); shown = line }
                if running.count == want.count && Set(byName.keys) == want { return }
            }
            usleep(20_000)
        }
        if !want.isEmpty { throw DeployIOError("this machine's nodes did not all start within the timeout; see \(t.superviseDir)/supervise.log") }
    }

    /// Polls the agents until every process is settled; prints state changes.
    static func waitSettled(_ client: DeployClient, agents: [String], deadline: Date, verb: String) -> [ProcessStatus] {
        var last: [String: String] = [:]
        var rows: [ProcessStatus] = []
        while true {
            let reports = client.reports(agents, timeout: 2)
            rows = []
            var settled = true
            for a in agents {
                switch reports[a] {
                case .success(let r)?:
                    if !r.hasDesired { settled = false }
                    rows += r.processes
                    settled = settled && r.processes.allSatisfy { $0.isSettled }
                default:
                    settled = false
                }
            }
            for r in rows {
                let s = r.state.rawValue + (r.pid.map { " (pid \($0))" } ?? "") + (r.registered ? ", registered" : "") + (r.state == .waiting && !r.waitingFor.isEmpty ? " for \(r.waitingFor.joined(separator: ","))" : "")
                if last[r.name] != s {
                    progress(verb, "\(r.name) on \(r.agent): \(s)")
                    last[r.name] = s
                }
            }
            if settled || Date() >= deadline { return rows }
            usleep(50_000)
        }
    }

    /// Removes every process from its agent, dependents first; returns how many were stopped.
    static func stopProcesses(_ client: DeployClient, _ t: Topology, deadline: Date) -> Int {
        let all = t.processes
        // Whatever the agents run now (an older file may have had more).
        var current: [String: [ProcessSpec]] = [:]
        for a in t.agents { current[a.name] = a.processes }
        let deps = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0.dependsOn) })
        var count = 0
        for level in DependencyOrder.levels(deps).reversed() {
            let names = Set(level)
            let touched = t.agents.filter { a in a.processes.contains { names.contains($0.name) } }
            for a in touched {
                current[a.name] = current[a.name]!.filter { !names.contains($0.name) }
                do { try client.handOver(a.name, current[a.name]!, deadline: deadline) } catch { progress("down", "\(error)") }
            }
            // Wait until they are gone.
            while Date() < deadline {
                let reports = client.reports(touched.map(\.name), timeout: 2)
                let left = reports.values.compactMap { try? $0.get() }.flatMap(\.processes).filter { names.contains($0.name) }
                if left.isEmpty { break }
                usleep(30_000)
            }
            progress("down", "stopped \(level.sorted().joined(separator: ", "))")
            count += level.count
        }
        // Processes an older file gave the agents (not in this file): stop them too.
        for a in t.agents {
            if case .success(let r)? = client.reports([a.name], timeout: 2)[a.name], !r.processes.isEmpty {
                try? client.handOver(a.name, [], deadline: deadline)
                count += r.processes.count
            }
        }
        return count
    }
}

enum DeployStatusPrinter {
    static func print(_ rows: [ProcessStatus], json: Bool) {
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys, .prettyPrinted]
            let d = (try? enc.encode(rows)) ?? Data("[]".utf8)
            FileHandle.standardOutput.write(d + Data("\n".utf8))
        } else {
            FileHandle.standardOutput.write(Data((StatusTable.render(rows) + "\n").utf8))
        }
    }
}
