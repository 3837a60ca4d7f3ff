import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What a supervisor asks of the node it runs in.
public protocol SupervisorDelegate: AnyObject, Sendable {
    /// Calls `done(true)` once `name` is registered in the tree (on any thread).
    func checkRegistered(_ name: String, _ done: @escaping @Sendable (Bool) -> Void)
    /// Something in `snapshot()` changed (called on the supervisor's queue).
    func supervisorChanged()
    /// A line for the node's log.
    func supervisorLog(_ message: String)
}

/// Drives one `ProcessMachine` per process with real processes: spawns them
/// with their log files, watches them exit, adopts the ones an earlier
/// incarnation left running, keeps the pids in a durable state file, rotates
/// logs. All its state lives on `queue`.
public final class Supervisor: @unchecked Sendable {
    public let queue = DispatchQueue(label: "dagent.supervisor")
    /// Where `state.json` and `logs/` live.
    public let directory: String
    /// Shown in status rows as the owner of the processes.
    public let owner: String
    /// Extra environment for every process (`DAGENT_*`, PATH with dagent's folder).
    public var baseEnvironment: [String: String]
    public weak var delegate: (any SupervisorDelegate)?
    let reapAll: Bool

    struct Entry {
        var machine: ProcessMachine
        var adopted = false
        var startTicks: UInt64?
        var startedWall: Double?
        var depCheckInFlight = false
        var lastDepCheck = -Double.infinity
        var waitingFor: [String] = []
        var removing = false
        /// Its name answered in the tree during this run.
        var registered = false
        var regCheckInFlight = false
        var lastRegCheck = -Double.infinity
    }
    var entries: [String: Entry] = [:]
    var order: [String] = []
    var timer: DispatchSourceTimer?
    var lastRotationCheck = 0.0
    var stopLevels: [[String]] = []
    var stopDone: [() -> Void] = []
    var reaperWake = DispatchSemaphore(value: 0)
    /// Set once `apply` was called (before that, adopted processes of specs
    /// we do not know yet are left alone).
    public private(set) var hasDesired = false

    /// `reapAll`: this process reaps every child, orphans included (the
    /// per-machine supervisor, a subreaper); otherwise each child is waited
    /// for by pid (an agent, whose Python plugins may have children of their own).
    public init(directory: String, owner: String, baseEnvironment: [String: String], delegate: (any SupervisorDelegate)?, reapAll: Bool = false) {
        self.directory = directory
        self.owner = owner
        self.baseEnvironment = baseEnvironment
        self.delegate = delegate
        self.reapAll = reapAll
    }

    var statePath: String { directory + "/state.json" }
    public func logPath(_ name: String) -> String { directory + "/logs/" + name + ".log" }

    // MARK: lifecycle

    /// Reads the state file: the desired processes and the pids an earlier
    /// incarnation started. Live ones (same pid and start time) are adopted;
    /// the others are started as usual. Then starts the tick timer.
    public func start() {
        queue.sync {
            if let data = FileManager.default.contents(atPath: statePath),
               let saved = try? JSONDecoder().decode(SavedState.self, from: data) {
                for spec in saved.desired {
                    var e = Entry(machine: ProcessMachine(spec: spec))
                    if let run = saved.running[spec.name], run.fingerprint == spec.fingerprint,
                       ProcStat.isAlive(pid: run.pid, startTicks: run.startTicks) {
                        let started = DeployClock.now() - max(0, DeployClock.wall() - run.startedWall)
                        e.machine.adopted(pid: run.pid, startedAt: started, restarts: run.restarts)
                        e.adopted = true
                        e.startTicks = run.startTicks
                        e.startedWall = run.startedWall
                        delegate?.supervisorLog("adopted \(spec.name) (pid \(run.pid)), left running by an earlier supervisor")
                    } else if let run = saved.running[spec.name], ProcStat.isAlive(pid: run.pid, startTicks: run.startTicks) {
                        // Still running with an old command: stop it; it restarts with the new one.
                        ProcessSpawner.signal(pid: run.pid, spec.stopSignal)
                        delegate?.supervisorLog("stopped \(spec.name) (pid \(run.pid)): it runs an outdated command")
                    }
                    entries[spec.name] = e
                    order.append(spec.name)
                }
                // Processes no longer desired but still running: stop them.
                for (name, run) in saved.running where entries[name] == nil && ProcStat.isAlive(pid: run.pid, startTicks: run.startTicks) {
                    ProcessSpawner.signal(pid: run.pid, 15)
                    delegate?.supervisorLog("stopped \(name) (pid \(run.pid)): no longer in the desired state")
                }
            }
            let t = DispatchSource.makeTimerSource(queue: queue)
            t.schedule(deadline: .now() + .milliseconds(20), repeating: .milliseconds(20), leeway: .milliseconds(5))
            t.setEventHandler { [weak self] in self?.tick() }
            t.resume()
            timer = t
            if reapAll { startReaper() }
        }
    }

    /// The desired processes: new ones start (once their dependencies are
    /// registered), changed ones (command, env, cwd) restart, removed ones stop,
    /// unchanged running ones are left alone. Ended ones (failed, exited) start again.
    public func apply(_ desired: [ProcessSpec]) {
        queue.async { self.applyOnQueue(desired) }
    }

    func applyOnQueue(_ desired: [ProcessSpec]) {
        hasDesired = true
        let now = DeployClock.now()
        let names = Set(desired.map(\.name))
        let removed = order.filter { !names.contains($0) && !(entries[$0]?.removing ?? true) }
        if !removed.isEmpty {
            let deps = Dictionary(uniqueKeysWithValues: removed.map { ($0, entries[$0]!.machine.spec.dependsOn) })
            for n in removed { entries[n]!.removing = true }
            stopInOrder(DependencyOrder.levels(deps).reversed(), then: nil)
        }
        for spec in desired {
            if var e = entries[spec.name], !e.removing {
                let changed = e.machine.spec.fingerprint != spec.fingerprint
                e.machine.spec = spec
                if changed {
                    delegate?.supervisorLog("\(spec.name): its command or environment changed; restarting it")
                    handle(spec.name, &e, e.machine.restart(now: now))
                } else if [.stopped, .exited, .failed].contains(e.machine.state) || !e.machine.wanted {
                    handle(spec.name, &e, e.machine.start(now: now))
                }
                entries[spec.name] = e
            } else if entries[spec.name]?.removing == true {
                // Removed and added back before it stopped: start it again once stopped.
                var e = entries[spec.name]!
                e.removing = false
                e.machine.spec = spec
                handle(spec.name, &e, e.machine.start(now: now))
                entries[spec.name] = e
            } else {
                entries[spec.name] = Entry(machine: ProcessMachine(spec: spec))
                order.append(spec.name)
            }
        }
        save()
        delegate?.supervisorChanged()
    }

    /// Restarts one process. False if there is no such process.
    public func restart(_ name: String) -> Bool {
        queue.sync {
            guard var e = entries[name], !e.removing else { return false }
            handle(name, &e, e.machine.restart(now: DeployClock.now()))
            entries[name] = e
            delegate?.supervisorChanged()
            return true
        }
    }

    /// Stops every process, dependents before what they depend on, then calls `done`.
    public func stopAll(_ done: @escaping () -> Void) {
        queue.async {
            let live = self.order.filter { self.entries[$0] != nil }
            let deps = Dictionary(uniqueKeysWithValues: live.map { ($0, self.entries[$0]!.machine.spec.dependsOn) })
            for n in live { self.entries[n]!.removing = true }
            self.hasDesired = true
            self.stopInOrder(DependencyOrder.levels(deps).reversed(), then: done)
        }
    }

    /// Sends SIGKILL to every process still running (after `stopAll` took too long).
    public func killAll() {
        queue.sync {
            for n in order { if let pid = entries[n]?.machine.pid { ProcessSpawner.signal(pid: pid, 9) } }
        }
    }

    /// Stops the timer (processes keep running: the next incarnation adopts them).
    public func detach() {
        queue.sync {
            timer?.cancel()
            timer = nil
        }
    }

    func stopInOrder(_ levels: [[String]], then done: (() -> Void)?) {
        stopLevels.append(contentsOf: levels.filter { !$0.isEmpty })
        if let done { stopDone.append(done) }
        advanceStops()
    }

    func advanceStops() {
        let now = DeployClock.now()
        while let level = stopLevels.first {
            var busy = false
            for n in level {
                guard var e = entries[n] else { continue }
                if e.machine.wanted { handle(n, &e, e.machine.stop(now: now)) }
                if e.machine.pid != nil { busy = true }
                entries[n] = e
            }
            if busy { return }
            stopLevels.removeFirst()
        }
        // Everything asked to stop has stopped: forget removed entries.
        let gone = order.filter { entries[$0]?.removing == true && entries[$0]?.machine.pid == nil }
        if !gone.isEmpty {
            for n in gone { entries[n] = nil }
            order.removeAll { entries[$0] == nil }
            save()
            delegate?.supervisorChanged()
        }
        let waiting = stopDone
        stopDone = []
        waiting.forEach { $0() }
    }

    // MARK: the tick

    func tick() {
        let now = DeployClock.now()
        for name in order {
            guard var e = entries[name] else { continue }
            let before = e.machine
            handle(name, &e, e.machine.tick(now: now))
            if e.adopted, let pid = e.machine.pid, let ticks = e.startTicks, !ProcStat.isAlive(pid: pid, startTicks: ticks) {
                e.adopted = false
                delegate?.supervisorLog("\(name) (adopted pid \(pid)) is gone")
                handle(name, &e, e.machine.exited(.vanished, now: now))
            }
            if e.machine.state == .waiting && e.machine.wanted && !e.removing {
                checkDependencies(name, &e, now: now)
            }
            if e.machine.pid == nil { e.registered = false } else if !e.registered { checkRegistration(name, &e, now: now) }
            if e.machine != before { delegate?.supervisorChanged() }
            entries[name] = e
        }
        if !stopLevels.isEmpty || !stopDone.isEmpty { advanceStops() }
        if now - lastRotationCheck >= 1 {
            lastRotationCheck = now
            for name in order {
                guard let spec = entries[name]?.machine.spec else { continue }
                LogFile(path: logPath(name), maxBytes: spec.logMaxBytes, keep: spec.logKeep).rotateIfNeeded()
            }
        }
    }

    func checkDependencies(_ name: String, _ e: inout Entry, now: Double) {
        let deps = e.machine.spec.dependsOn
        if deps.isEmpty {
            e.waitingFor = []
            handle(name, &e, e.machine.dependenciesReady(now: now))
            return
        }
        guard !e.depCheckInFlight, now - e.lastDepCheck >= 0.1, let delegate else { return }
        e.depCheckInFlight = true
        e.lastDepCheck = now
        let group = DispatchGroup()
        final class Missing: @unchecked Sendable {
            let lock = NSLock()
            var names: [String] = []
        }
        let missing = Missing()
        for d in deps {
            group.enter()
            delegate.checkRegistered(d) { ok in
                if !ok { missing.lock.withLock { missing.names.append(d) } }
                group.leave()
            }
        }
        group.notify(queue: queue) { [weak self] in
            guard let self, var e = self.entries[name] else { return }
            e.depCheckInFlight = false
            let still = deps.filter { missing.names.contains($0) }
            if e.waitingFor != still { self.delegate?.supervisorChanged() }
            e.waitingFor = still
            if still.isEmpty && e.machine.state == .waiting && !e.removing {
                self.handle(name, &e, e.machine.dependenciesReady(now: DeployClock.now()))
            }
            self.entries[name] = e
        }
    }

    /// Asks whether a running process registered its name (for `ready` in status).
    func checkRegistration(_ name: String, _ e: inout Entry, now: Double) {
        guard !e.regCheckInFlight, now - e.lastRegCheck >= 0.05, let delegate, let pid = e.machine.pid else { return }
        e.regCheckInFlight = true
        e.lastRegCheck = now
        delegate.checkRegistered(name) { ok in
            self.queue.async {
                guard var e = self.entries[name] else { return }
                e.regCheckInFlight = false
                if ok && e.machine.pid == pid && !e.registered {
                    e.registered = true
                    self.delegate?.supervisorChanged()
                }
                self.entries[name] = e
            }
        }
    }

    // MARK: effects

    func handle(_ name: String, _ e: inout Entry, _ effects: [SupervisorEffect]) {
        for effect in effects {
            switch effect {
            case .wake: break   // the 20 ms tick covers it
            case .signal(let sig):
                if let pid = e.machine.pid { ProcessSpawner.signal(pid: pid, sig) }
            case .spawn:
                spawn(name, &e)
            }
        }
    }

    func spawn(_ name: String, _ e: inout Entry) {
        let spec = e.machine.spec
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = nil
        for (k, v) in baseEnvironment { env[k] = v }
        env["DAGENT_NAME"] = spec.name
        env["DAGENT_DATA"] = directory + "/data/" + spec.name
        try? FileManager.default.createDirectory(atPath: directory + "/data/" + spec.name, withIntermediateDirectories: true)
        for (k, v) in spec.env { env[k] = v }
        let now = DeployClock.now()
        let log = LogFile(path: logPath(name), maxBytes: spec.logMaxBytes, keep: spec.logKeep)
        log.rotateIfNeeded()
        do {
            let pid = try ProcessSpawner.spawn(argv: spec.run.argv, env: env, cwd: spec.cwd, logPath: log.path)
            e.adopted = false
            e.startTicks = ProcStat.startTicks(pid: pid)
            e.startedWall = DeployClock.wall()
            handle(name, &e, e.machine.spawned(pid: pid, now: now))
            watch(name: name, pid: pid)
        } catch {
            delegate?.supervisorLog("\(name): \(error)")
            handle(name, &e, e.machine.exited(.spawnFailed("\(error)"), now: now))
        }
        entries[name] = e
        save()
        delegate?.supervisorChanged()
    }

    func watch(name: String, pid: Int32) {
        if reapAll {
            reaperWake.signal()
            return
        }
        let t = Thread { [weak self] in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let st = status
            guard let me = self else { return }
            me.queue.async { me.childExited(pid: pid, status: st) }
        }
        t.name = "dagent wait \(name)"
        t.start()
    }

    func startReaper() {
        let t = Thread { [weak self] in
            while let me = self {
                var status: Int32 = 0
                let pid = waitpid(-1, &status, 0)
                if pid > 0 {
                    let st = status
                    me.queue.async { me.childExited(pid: pid, status: st) }
                } else if errno == ECHILD {
                    _ = me.reaperWake.wait(timeout: .now() + .milliseconds(200))
                }
            }
        }
        t.name = "dagent reaper"
        t.start()
    }

    func childExited(pid: Int32, status: Int32) {
        guard let name = order.first(where: { entries[$0]?.machine.pid == pid }), var e = entries[name] else { return }
        let exit = ExitStatus.fromWait(status)
        if e.machine.state != .stopping { delegate?.supervisorLog("\(name) (pid \(pid)) ended: \(exit)") }
        handle(name, &e, e.machine.exited(exit, now: DeployClock.now()))
        entries[name] = e
        save()
        delegate?.supervisorChanged()
        if !stopLevels.isEmpty || !stopDone.isEmpty { advanceStops() }
    }

    // MARK: state file

    struct Running: Codable {
        var pid: Int32
        var startTicks: UInt64
        var startedWall: Double
        var fingerprint: String
        var restarts: Int
    }

    struct SavedState: Codable {
        var desired: [ProcessSpec]
        var running: [String: Running]
    }

    func save() {
        var running: [String: Running] = [:]
        var desired: [ProcessSpec] = []
        for n in order {
            guard let e = entries[n] else { continue }
            if !e.removing { desired.append(e.machine.spec) }
            if let pid = e.machine.pid, let ticks = e.startTicks {
                running[n] = Running(pid: pid, startTicks: ticks, startedWall: e.startedWall ?? DeployClock.wall(),
                                     fingerprint: e.machine.spec.fingerprint, restarts: e.machine.restarts)
            }
        }
        do {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            try DurableFile.write(try enc.encode(SavedState(desired: desired, running: running)), to: statePath)
        } catch {
            delegate?.supervisorLog("cannot save the supervisor state: \(error)")
        }
    }

    // MARK: status

    /// The processes as `dagent status` shows them, in file order.
    public func snapshot() -> [ProcessStatus] {
        queue.sync { snapshotOnQueue() }
    }

    /// `snapshot()` for code already on `queue`.
    public func snapshotOnQueue() -> [ProcessStatus] {
        let now = DeployClock.now()
        return order.compactMap { n in
            guard let e = entries[n] else { return nil }
            let m = e.machine
            let ready = m.pid != nil && m.state == .running && (e.registered || m.uptime(now: now) >= m.spec.minUptime)
            let failing = m.state == .crashLoop || m.state == .failed || (m.state == .backoff && m.lastExit != nil)
            return ProcessStatus(name: n, agent: owner, state: m.state, pid: m.pid, restarts: m.restarts,
                                 uptime: m.uptime(now: now), lastExit: m.lastExit?.description ?? "",
                                 waitingFor: m.state == .waiting ? e.waitingFor : [], nextStartIn: m.nextStartAt.map { max(0, $0 - now) },
                                 adopted: e.adopted, log: logPath(n), logTail: failing ? LogFile.tail(path: logPath(n), lines: 5) : "",
                                 fingerprint: m.spec.fingerprint, registered: e.registered, ready: ready)
        }
    }
}
