import ArgumentParser
import CDAgentProc
import DAgentCLI
import DAgentDeploy
import Foundation

/// `dagent supervise -f FILE`: the small per-machine supervisor of the root
/// replicas and agents of a topology (what systemd does in production).
/// `dagent up` starts it detached; SIGHUP re-reads the file; SIGTERM stops
/// the agents, then the roots, and exits.
struct SuperviseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "supervise",
        abstract: "Run and restart this machine's root replicas and agents of a topology (started by `dagent up`).",
        discussion: """
        Runs in the foreground and logs to stderr; `dagent up` starts it detached, with its log in \
        DATA/supervise/supervise.log. Each node runs as `dagent run --topology FILE --agent NAME`
        (or --root ID) with its output in DATA/supervise/logs/NAME.log, and is restarted with \
        backoff when it ends. It is the reaper of orphaned processes (a subreaper), so the \
        processes of a crashed agent are still watched until the restarted agent adopts them. \
        SIGHUP: re-read the file (started, changed and removed nodes). SIGTERM/SIGINT: stop the \
        agents (they stop their processes), then the root replicas, and exit.
        """
    )

    @OptionGroup var options: DeployOptions

    final class Delegate: SupervisorDelegate, @unchecked Sendable {
        let statusFile: String
        let tree: String
        weak var supervisor: Supervisor?
        var scheduled = false
        init(statusFile: String, tree: String) {
            self.statusFile = statusFile
            self.tree = tree
        }
        func checkRegistered(_ name: String, _ done: @escaping @Sendable (Bool) -> Void) { done(true) }
        func supervisorChanged() {
            guard !scheduled, let s = supervisor else { return }
            scheduled = true
            s.queue.asyncAfter(deadline: .now() + .milliseconds(50)) { [weak self] in
                guard let self, let s = self.supervisor else { return }
                self.scheduled = false
                let report = AgentReport(agent: "supervise", tree: self.tree, hasDesired: true, processes: s.snapshotOnQueue())
                if let d = try? JSONEncoder().encode(report) { try? DurableFile.write(d, to: self.statusFile) }
            }
        }
        func supervisorLog(_ message: String) {
            FileHandle.standardError.write(Data("supervise: \(message)\n".utf8))
        }
    }

    func run() throws {
        let t = options.load()
        let path = options.topologyPath
        if let other = LocalSupervise.runningPid(t), other != getpid() {
            fail("tree '\(t.name)' is already supervised on this machine by pid \(other)")
        }
        try FileManager.default.createDirectory(atPath: t.superviseDir, withIntermediateDirectories: true)
        try DurableFile.write(Data("\(getpid())\n".utf8), to: LocalSupervise.pidFile(t))
        let rc = dagent_proc_set_subreaper()
        if rc != 0 { FileHandle.standardError.write(Data("supervise: cannot become a subreaper (errno \(rc)); orphans go to init\n".utf8)) }
        let delegate = Delegate(statusFile: LocalSupervise.statusFile(t), tree: t.name)
        let sup = Supervisor(directory: t.superviseDir, owner: "supervise", baseEnvironment: [:], delegate: delegate, reapAll: true)
        delegate.supervisor = sup
        sup.start()
        let nodes = LocalSupervise.nodes(t, path: path, host: options.host)
        sup.apply(nodes)
        FileHandle.standardError.write(Data("supervise: tree '\(t.name)': \(nodes.map(\.name).joined(separator: ", "))\n".utf8))
        let done = DispatchSemaphore(value: 0)
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                FileHandle.standardError.write(Data("supervise: stopping the agents, then the root replicas\n".utf8))
                sup.stopAll { done.signal() }
            }
            s.resume()
            sources.append(s)
        }
        signal(SIGHUP, SIG_IGN)
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        hup.setEventHandler {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8),
                  let t2 = try? TopologyParser.parse(yaml: text, source: path, baseDirectory: (path as NSString).deletingLastPathComponent) else {
                FileHandle.standardError.write(Data("supervise: SIGHUP: \(path) does not parse; keeping the running nodes\n".utf8))
                return
            }
            let nodes = LocalSupervise.nodes(t2, path: path, host: options.host)
            FileHandle.standardError.write(Data("supervise: SIGHUP: re-read \(path): \(nodes.map(\.name).joined(separator: ", "))\n".utf8))
            sup.apply(nodes)
        }
        hup.resume()
        sources.append(hup)
        done.wait()
        try? FileManager.default.removeItem(atPath: LocalSupervise.pidFile(t))
        try? FileManager.default.removeItem(atPath: LocalSupervise.statusFile(t))
        _ = sources
        FileHandle.standardError.write(Data("supervise: stopped\n".utf8))
        Foundation.exit(0)
    }
}

