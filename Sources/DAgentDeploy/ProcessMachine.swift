/// What a supervised process is doing, as `dagent status` shows it.
public enum ProcessState: String, Sendable, Equatable, Codable {
    /// Not started yet: a name it depends on is not registered.
    case waiting
    /// Started; no exit seen.
    case running
    /// Ended; it will be started again at `nextStartAt`.
    case backoff
    /// Ended quickly `crash_loop_after` times in a row; still restarted with
    /// growing delays, shown as crash-loop until a run lasts `min_uptime`.
    case crashLoop = "crash-loop"
    /// Asked to stop; waiting for it to exit (SIGKILL after `stop_timeout`).
    case stopping
    /// Stopped on request.
    case stopped
    /// Ended and its restart policy says not to start it again.
    case exited
    /// Given up: `max_restarts` reached, or ended with a failure under `restart: no`.
    case failed

    /// True when `up` may stop waiting for it: it runs, or it will not without help.
    public var isSettled: Bool {
        switch self {
        case .running, .crashLoop, .exited, .failed, .stopped: return true
        case .waiting, .backoff, .stopping: return false
        }
    }
}

/// How a process ended.
public enum ExitStatus: Sendable, Equatable, Codable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)
    /// The program could not be started (bad path, cwd, ...).
    case spawnFailed(String)
    /// An adopted process (not our child) disappeared; its status is unknown.
    case vanished

    public var isSuccess: Bool { if case .exited(0) = self { return true } else { return false } }

    public var description: String {
        switch self {
        case .exited(let c): return "exit \(c)"
        case .signaled(let s): return "killed by \(SignalName.name(s))"
        case .spawnFailed(let why): return "could not start: \(why)"
        case .vanished: return "gone (adopted; exit status unknown)"
        }
    }

    /// Decodes a `waitpid` status word.
    public static func fromWait(_ status: Int32) -> ExitStatus {
        let sig = status & 0x7f
        if sig == 0 { return .exited((status >> 8) & 0xff) }
        return .signaled(sig)
    }
}

/// What the driver must do for a process after an input to its machine.
public enum SupervisorEffect: Sendable, Equatable {
    /// Start the program now (then call `spawned` or `exited(.spawnFailed)`).
    case spawn
    /// Send this signal to its process group.
    case signal(Int32)
    /// Call `tick` again at (or after) this time.
    case wake(at: Double)
}

/// The supervision of one process as a deterministic state machine: inputs
/// are events with the time they happened (seconds on a monotonic clock), the
/// output is what to do. No clock, no process, no I/O: the driver
/// (`Supervisor`) spawns, signals and waits, and feeds the results back.
public struct ProcessMachine: Sendable, Equatable {
    public var spec: ProcessSpec
    public private(set) var state: ProcessState = .waiting
    public private(set) var pid: Int32?
    /// When the current run started.
    public private(set) var startedAt: Double?
    /// Starts after the first one.
    public private(set) var restarts = 0
    /// Quick exits in a row (runs shorter than `min_uptime`).
    public private(set) var quickExits = 0
    public private(set) var lastExit: ExitStatus?
    public private(set) var lastExitAt: Double?
    /// When the next start is due (backoff, crash-loop).
    public private(set) var nextStartAt: Double?
    /// Whether the process should run (false after `stop`).
    public private(set) var wanted = true
    var everStarted = false
    var restartWhenStopped = false
    var killAt: Double?

    public init(spec: ProcessSpec) { self.spec = spec }

    /// The current backoff delay that led to `nextStartAt` (for display).
    public var currentDelay: Double { spec.backoff.delay(afterQuickExits: quickExits) }

    /// Its dependencies are registered: start it if it is waiting to.
    public mutating func dependenciesReady(now: Double) -> [SupervisorEffect] {
        guard wanted, state == .waiting else { return [] }
        return [.spawn]
    }

    /// The driver started it as `pid`.
    public mutating func spawned(pid: Int32, now: Double) -> [SupervisorEffect] {
        self.pid = pid
        startedAt = now
        if everStarted { restarts += 1 }
        everStarted = true
        nextStartAt = nil
        state = quickExits >= spec.crashLoopAfter ? .crashLoop : .running
        if !wanted {   // stopped while it was being started
            return stopEffects(now: now)
        }
        return quickExits > 0 ? [.wake(at: now + spec.minUptime)] : []
    }

    /// It was already running when this agent started (an earlier agent
    /// process started it at `startedAt`): watch it instead of starting another.
    public mutating func adopted(pid: Int32, startedAt: Double, restarts: Int) {
        self.pid = pid
        self.startedAt = startedAt
        self.restarts = restarts
        everStarted = true
        state = .running
    }

    /// It ended (or could not be started).
    public mutating func exited(_ status: ExitStatus, now: Double) -> [SupervisorEffect] {
        let ranFor = startedAt.map { now - $0 } ?? 0
        pid = nil
        startedAt = nil
        lastExit = status
        lastExitAt = now
        killAt = nil
        if !wanted || state == .stopping {
            if restartWhenStopped && wanted {
                restartWhenStopped = false
                state = .waiting
                return [.wake(at: now)]
            }
            state = .stopped
            return []
        }
        if ranFor >= spec.minUptime { quickExits = 0 } else { quickExits += 1 }
        let again: Bool
        switch spec.restart {
        case .always: again = true
        case .onFailure: again = !status.isSuccess
        case .never: again = false
        }
        if !again {
            state = status.isSuccess ? .exited : .failed
            return []
        }
        if spec.maxRestarts > 0 && restarts >= spec.maxRestarts {
            state = .failed
            return []
        }
        let delay = spec.backoff.delay(afterQuickExits: quickExits)
        if delay <= 0 {
            state = .backoff
            nextStartAt = now
            return [.spawn]
        }
        state = quickExits >= spec.crashLoopAfter ? .crashLoop : .backoff
        nextStartAt = now + delay
        return [.wake(at: now + delay)]
    }

    /// Time passed: start it when its delay is over, mark a long enough run
    /// as healthy again, escalate a stop to SIGKILL.
    public mutating func tick(now: Double) -> [SupervisorEffect] {
        if state == .stopping, let k = killAt, now >= k, pid != nil {
            killAt = nil
            return [.signal(9)]
        }
        if pid != nil, let s = startedAt, now - s >= spec.minUptime, quickExits > 0 {
            quickExits = 0
            if state == .crashLoop { state = .running }
            return []
        }
        if pid == nil, wanted, let due = nextStartAt, now >= due, state == .backoff || state == .crashLoop {
            nextStartAt = nil
            return [.spawn]
        }
        if pid == nil, wanted, let due = nextStartAt, state == .backoff || state == .crashLoop {
            return [.wake(at: due)]
        }
        return []
    }

    /// Stop it (`dagent down`, a removed process, agent shutdown).
    public mutating func stop(now: Double) -> [SupervisorEffect] {
        wanted = false
        restartWhenStopped = false
        nextStartAt = nil
        return stopEffects(now: now)
    }

    /// Stop it and start it again (`dagent restart`, a changed command or env).
    public mutating func restart(now: Double) -> [SupervisorEffect] {
        wanted = true
        quickExits = 0
        if pid == nil {
            nextStartAt = nil
            state = .waiting
            return [.wake(at: now)]
        }
        restartWhenStopped = true
        return stopEffects(now: now)
    }

    /// Run it again after a stop, or after it gave up (`exited`, `failed`).
    public mutating func start(now: Double) -> [SupervisorEffect] {
        wanted = true
        guard pid == nil else {
            if state == .stopping { restartWhenStopped = true }
            return []
        }
        if state == .stopped || state == .exited || state == .failed {
            state = .waiting
            quickExits = 0
        }
        return [.wake(at: now)]
    }

    mutating func stopEffects(now: Double) -> [SupervisorEffect] {
        guard pid != nil else {
            state = .stopped
            return []
        }
        if state == .stopping { return [] }
        state = .stopping
        killAt = now + spec.stopTimeout
        return [.signal(spec.stopSignal), .wake(at: now + spec.stopTimeout)]
    }

    /// Seconds it has been running (0 when it is not).
    public func uptime(now: Double) -> Double { startedAt.map { max(0, now - $0) } ?? 0 }
}
