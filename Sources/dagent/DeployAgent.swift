import DAgentDeploy
import DAgentRoot
import DAgentWire
import DAgentCLI
import DAgentNode
import DAgentRouting
import Foundation

/// Blocking calls to the root group's `@state` (never on the node's event loop).
enum DeployState {
    /// One JSON request to `@state`, retried while the group has no leader.
    /// Returns the answer object, or throws with the last reason.
    static func call(_ node: Node, _ request: [String: Any], timeout: Double) throws -> [String: Any] {
        let body = try JSONSerialization.data(withJSONObject: request)
        let deadline = Date().addingTimeInterval(timeout)
        var last = "no answer"
        while Date() < deadline {
            do {
                let reply = try node.request(to: StateTypes.serviceName, type: StateTypes.request, payload: body,
                                             timeout: max(0.2, min(2, deadline.timeIntervalSinceNow))).wait()
                guard let obj = try JSONSerialization.jsonObject(with: reply.payload) as? [String: Any] else {
                    throw DeployIOError("@state answered something that is not JSON")
                }
                if obj["retry"] as? Bool == true {
                    last = obj["error"] as? String ?? "no leader yet"
                    usleep(100_000)
                    continue
                }
                return obj
            } catch let e as DAgentError {
                last = "\(e)"
                usleep(100_000)
            }
        }
        throw DeployIOError("the root group's store did not answer within \(timeout)s: \(last)")
    }

    /// The value under `key`, nil if absent.
    static func get(_ node: Node, _ key: String, timeout: Double) throws -> String? {
        let r = try call(node, ["op": "get", "key": key], timeout: timeout)
        if r["ok"] as? Bool == false {
            let error = r["error"] as? String ?? ""
            if error.contains("not found") || error.contains("no such") || error.contains("missing") { return nil }
            throw DeployIOError("get \(key): \(error)")
        }
        return (r["record"] as? [String: Any])?["value"] as? String
    }

    static func put(_ node: Node, _ key: String, _ value: String, timeout: Double) throws {
        let r = try call(node, ["op": "put", "key": key, "value": value], timeout: timeout)
        if r["ok"] as? Bool != true { throw DeployIOError("put \(key): \(r["error"] ?? "refused")") }
    }
}

/// The supervisor of an agent started from a topology (`dagent run
/// --topology FILE --agent NAME`): reads its desired state from the root
/// group's store, supervises its processes, answers `dagent status`,
/// `restart`, `logs`, and reports to the store.
final class DeployAgentService: SupervisorDelegate, @unchecked Sendable {
    let node: Node
    let tree: String
    let supervisor: Supervisor
    let work = DispatchQueue(label: "dagent.deploy.agent")
    let lock = NSLock()
    var reportScheduled = false
    var lastDesiredJSON: String?
    var refreshTimer: DispatchSourceTimer?
    var stopped = false
    /// The process rows of this agent's `dagent tree` reply (DeployAgent-tree.swift).
    let treeRows: DeployTreeRows
    var treeTimer: DispatchSourceTimer?

    init(node: Node, tree: String, dataDir: String, childAddress: String) {
        self.node = node
        self.tree = tree
        treeRows = DeployTreeRows(tree: tree)
        let exe = DeployPaths.executable
        var env: [String: String] = [
            "DAGENT_TREE": tree, "DAGENT_AGENT": node.config.name, "DAGENT_VIA": childAddress, "DAGENT_BIN": exe,
        ]
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        env["PATH"] = (exe as NSString).deletingLastPathComponent + ":" + path
        supervisor = Supervisor(directory: dataDir + "/supervisor", owner: node.config.name, baseEnvironment: env, delegate: nil)
        supervisor.delegate = self
    }

    /// Adopts what an earlier incarnation left running, takes over the node's
    /// admin requests, and starts reading the desired state.
    func start() {
        supervisor.start()
        node.handleRequests(ofType: DeployProtocol.adminType) { [weak self] e in
            guard let self else { return }
            self.work.async { self.handleAdmin(e) }
        }
        let t = DispatchSource.makeTimerSource(queue: work)
        t.schedule(deadline: .now() + .milliseconds(200), repeating: .seconds(5), leeway: .milliseconds(500))
        t.setEventHandler { [weak self] in self?.refresh(timeout: 2) }
        t.resume()
        refreshTimer = t
        installTreeRows()
    }

    /// Stops every process (dependents first) and waits for them, at most `timeout`.
    func stop(timeout: Double) {
        lock.withLock { stopped = true }
        refreshTimer?.cancel()
        treeTimer?.cancel()
        let done = DispatchSemaphore(value: 0)
        supervisor.stopAll { done.signal() }
        if done.wait(timeout: .now() + timeout) == .timedOut {
            node.logger.warning("deploy: processes still running after \(timeout)s; killing them")
            supervisor.killAll()
        }
    }

    /// Reads the desired state and applies it when it changed. On `work`.
    @discardableResult
    func refresh(timeout: Double) -> String? {
        if lock.withLock({ stopped }) { return "stopping" }
        do {
            let text = try DeployState.get(node, DeployProtocol.desiredKey(tree: tree, agent: node.config.name), timeout: timeout) ?? "{\"processes\":[]}"
            guard text != lastDesiredJSON else { return nil }
            let desired = try JSONDecoder().decode(DesiredState.self, from: Data(text.utf8))
            lastDesiredJSON = text
            node.logger.notice("deploy: desired state of '\(node.config.name)': \(desired.processes.count) process(es)")
            supervisor.apply(desired.processes)
            return nil
        } catch {
            node.logger.debug("deploy: cannot read the desired state yet: \(error)")
            return "\(error)"
        }
    }

    func report() -> AgentReport {
        AgentReport(agent: node.config.name, tree: tree, hasDesired: supervisor.hasDesired, processes: supervisor.snapshot(),
                    reportedAt: Date().timeIntervalSince1970)
    }

    func handleAdmin(_ e: Dagent_Envelope) {
        guard let req = try? JSONSerialization.jsonObject(with: e.payload) as? [String: Any], let op = req["op"] as? String else {
            node.replyError(to: e, reason: "deploy admin: expected a JSON object with \"op\"")
            return
        }
        func answer(_ obj: Any) {
            if let d = try? JSONSerialization.data(withJSONObject: obj) { node.reply(to: e, payload: d) }
        }
        switch op {
        case "status":
            if let d = try? JSONEncoder().encode(report()) { node.reply(to: e, payload: d) }
        case "reconcile":
            if let problem = refresh(timeout: 5) {
                answer(["ok": false, "error": problem])
            } else {
                _ = supervisor.snapshot()   // the apply above is queued before this
                answer(["ok": true])
            }
        case "restart":
            let name = req["name"] as? String ?? ""
            let ok: [String: Any] = ["ok": true]
            let no: [String: Any] = ["ok": false, "error": "agent '\(node.config.name)' runs no process '\(name)'"]
            answer(supervisor.restart(name) ? ok : no)
        case "logs":
            let name = req["name"] as? String ?? ""
            let lines = req["tail"] as? Int ?? 100
            guard supervisor.snapshot().contains(where: { $0.name == name }) else {
                answer(["ok": false, "error": "agent '\(node.config.name)' runs no process '\(name)'"])
                return
            }
            answer(["ok": true, "text": LogFile.tail(path: supervisor.logPath(name), lines: lines), "path": supervisor.logPath(name)])
        default:
            node.replyError(to: e, reason: "deploy admin: unknown op '\(op)' (status, reconcile, restart, logs)")
        }
    }

    // MARK: SupervisorDelegate

    func checkRegistered(_ name: String, _ done: @escaping @Sendable (Bool) -> Void) {
        node.request(to: name, type: WireConstants.pingType, payload: Data(), timeout: 1).whenComplete { r in
            if case .success = r { done(true) } else { done(false) }
        }
    }

    func supervisorChanged() {
        let schedule = lock.withLock { () -> Bool in
            if reportScheduled || stopped { return false }
            reportScheduled = true
            return true
        }
        work.async { [weak self] in self?.refreshTreeRows() }
        guard schedule else { return }
        work.asyncAfter(deadline: .now() + 1) { [weak self] in
            guard let self else { return }
            self.lock.withLock { self.reportScheduled = false }
            guard let d = try? JSONEncoder().encode(self.report()) else { return }
            try? DeployState.put(self.node, DeployProtocol.statusKey(tree: self.tree, agent: self.node.config.name),
                                 String(decoding: d, as: UTF8.self), timeout: 2)
        }
    }

    func supervisorLog(_ message: String) {
        node.logger.notice("deploy: \(message)")
    }
}

/// Where the running `dagent` executable is (children and units use it).
enum DeployPaths {
    static var executable: String {
        if let p = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return p }
        return CommandLine.arguments[0]
    }
}
