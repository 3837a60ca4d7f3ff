/// What an agent runs for one process of the topology file, and how it
/// supervises it. Codable: this is what the root group's store holds as the
/// agent's desired state (`deploy/TREE/agents/AGENT`).
public struct ProcessSpec: Sendable, Equatable, Codable {
    /// Unique in the whole tree; also the name the process is expected to
    /// register when others `depends_on` it.
    public var name: String
    /// The agent that runs it.
    public var agent: String
    public var run: Command
    /// Extra environment (on top of the agent's and the `DAGENT_*` variables).
    public var env: [String: String]
    /// Working directory (absolute; the topology file's folder by default).
    public var cwd: String
    /// Names that must be registered in the tree before it starts.
    public var dependsOn: [String]
    public var restart: RestartPolicy
    public var backoff: Backoff
    /// A run shorter than this (seconds) is a quick exit; a longer one resets the backoff.
    public var minUptime: Double
    /// Quick exits in a row after which the process is shown as `crash-loop`.
    public var crashLoopAfter: Int
    /// Restarts after which it is given up (`failed`); 0 for never.
    public var maxRestarts: Int
    /// Signal sent to stop it (then SIGKILL after `stopTimeout`).
    public var stopSignal: Int32
    public var stopTimeout: Double
    /// Log file size (bytes) above which it is rotated (`logs.max_bytes`).
    public var logMaxBytes: Int
    /// Rotated log files kept (`logs.keep`).
    public var logKeep: Int
    /// Line of its entry in the topology file (not part of the desired state).
    public var line: Int = 0

    enum CodingKeys: String, CodingKey {
        case name, agent, run, env, cwd, dependsOn = "depends_on", restart, backoff
        case minUptime = "min_uptime", crashLoopAfter = "crash_loop_after", maxRestarts = "max_restarts"
        case stopSignal = "stop_signal", stopTimeout = "stop_timeout", logMaxBytes = "log_max_bytes", logKeep = "log_keep"
    }

    /// The defaults a process entry starts from (and `defaults:` overrides).
    public static func defaults(name: String, agent: String, cwd: String) -> ProcessSpec {
        ProcessSpec(name: name, agent: agent, run: .shell(""), env: [:], cwd: cwd, dependsOn: [],
                    restart: .always, backoff: Backoff(initial: 0.5, max: 30), minUptime: 1, crashLoopAfter: 3,
                    maxRestarts: 0, stopSignal: 15, stopTimeout: 10, logMaxBytes: 10 * 1024 * 1024, logKeep: 3)
    }

    /// A digest of everything that makes the process what it is: a process
    /// whose fingerprint changed is restarted by `up`, the others are left alone.
    public var fingerprint: String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ s: String) {
            for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            h = (h ^ 0xff) &* 0x100_0000_01b3
        }
        switch run {
        case .shell(let s): mix("sh"); mix(s)
        case .argv(let a): mix("argv"); a.forEach(mix)
        }
        for (k, v) in env.sorted(by: { $0.key < $1.key }) { mix(k); mix(v) }
        mix(cwd)
        mix(agent)
        return String(h, radix: 16)
    }
}

/// The command of a process: a shell line (run by `/bin/sh -c`) or an argv list.
public enum Command: Sendable, Equatable, Codable, CustomStringConvertible {
    case shell(String)
    case argv([String])

    public var description: String {
        switch self {
        case .shell(let s): return s
        case .argv(let a): return a.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { self = .shell(s) } else { self = .argv(try c.decode([String].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .shell(let s): try c.encode(s)
        case .argv(let a): try c.encode(a)
        }
    }

    /// The argv to execute: a shell line that is a plain command is exec'd by
    /// the shell (so the supervised pid is the program's own).
    public var argv: [String] {
        switch self {
        case .argv(let a): return a
        case .shell(let s):
            // `exec` is safe unless the line holds several commands.
            let special = Set(";&|()`\n")
            let firstWord = s.split(separator: " ", maxSplits: 1).first ?? ""
            let plain = !s.contains { special.contains($0) } && !firstWord.contains("=")
                && !["if", "for", "while", "case", "exec", "{"].contains(String(firstWord))
            return ["/bin/sh", "-c", plain ? "exec " + s : s]
        }
    }
}

/// When a process that ended is started again.
public enum RestartPolicy: String, Sendable, Equatable, Codable, CaseIterable {
    /// Whatever the exit.
    case always
    /// Only after a non-zero exit or a signal.
    case onFailure = "on-failure"
    /// Never.
    case never = "no"
}

/// Restart delays: the first restart after a run of at least `min_uptime` is
/// immediate; each quick exit in a row doubles the delay from `initial`, up to `max`.
public struct Backoff: Sendable, Equatable, Codable {
    public var initial: Double
    public var max: Double
    public init(initial: Double, max: Double) {
        self.initial = initial
        self.max = max
    }

    /// The delay before the next start after `quickExits` quick exits in a row.
    public func delay(afterQuickExits quickExits: Int) -> Double {
        guard quickExits > 0 else { return 0 }
        var d = initial
        var n = 1
        while n < quickExits && d < max {
            d *= 2
            n += 1
        }
        return Swift.min(d, max)
    }
}

/// Signal names a topology may use for `stop_signal`.
public enum SignalName {
    public static let table: [(String, Int32)] = [
        ("TERM", 15), ("INT", 2), ("HUP", 1), ("QUIT", 3), ("KILL", 9), ("USR1", 10), ("USR2", 12),
    ]
    public static func number(_ name: String) -> Int32? {
        let n = name.uppercased().hasPrefix("SIG") ? String(name.uppercased().dropFirst(3)) : name.uppercased()
        return table.first { $0.0 == n }?.1
    }
    public static func name(_ number: Int32) -> String {
        table.first { $0.1 == number }.map { "SIG" + $0.0 } ?? "signal \(number)"
    }
}
