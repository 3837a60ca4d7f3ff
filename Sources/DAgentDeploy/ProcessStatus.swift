/// One row of `dagent status`: what a supervisor knows about one process.
public struct ProcessStatus: Sendable, Equatable, Codable {
    public var name: String
    /// The agent (or `supervise@HOST` for root replicas and agents) that runs it.
    public var agent: String
    public var state: ProcessState
    public var pid: Int32?
    public var restarts: Int
    /// Seconds since the current run started (0 when not running).
    public var uptime: Double
    /// How the last run ended ("" if it never ended).
    public var lastExit: String
    /// Names it is waiting for (state `waiting`).
    public var waitingFor: [String]
    /// Seconds until the next start (states `backoff`, `crash-loop`).
    public var nextStartIn: Double?
    /// True if it was found running when its supervisor started (not our child).
    public var adopted: Bool
    /// The captured log file.
    public var log: String
    /// The last lines of the log when it is failing (crash-loop, backoff, failed).
    public var logTail: String
    /// The fingerprint of what it runs (see `ProcessSpec.fingerprint`).
    public var fingerprint: String
    /// Its name answered in the tree during this run.
    public var registered: Bool
    /// Running and either registered or up for `min_uptime`: `up` stops waiting for it.
    public var ready: Bool

    /// True when `up` may stop waiting: ready, or it will not run without help.
    public var isSettled: Bool { state == .running ? ready : state.isSettled }

    enum CodingKeys: String, CodingKey {
        case name, agent, state, pid, restarts, uptime, lastExit = "last_exit", waitingFor = "waiting_for"
        case nextStartIn = "next_start_in", adopted, log, logTail = "log_tail", fingerprint, registered, ready
    }

    public init(name: String, agent: String, state: ProcessState, pid: Int32?, restarts: Int, uptime: Double, lastExit: String,
                waitingFor: [String], nextStartIn: Double?, adopted: Bool, log: String, logTail: String, fingerprint: String,
                registered: Bool = false, ready: Bool = false) {
        self.name = name
        self.agent = agent
        self.state = state
        self.pid = pid
        self.restarts = restarts
        self.uptime = uptime
        self.lastExit = lastExit
        self.waitingFor = waitingFor
        self.nextStartIn = nextStartIn
        self.adopted = adopted
        self.log = log
        self.logTail = logTail
        self.fingerprint = fingerprint
        self.registered = registered
        self.ready = ready
    }
}

/// Renders status rows as the table `dagent status` prints.
public enum StatusTable {
    public static func render(_ rows: [ProcessStatus]) -> String {
        var lines: [[String]] = [["PROCESS", "AGENT", "STATE", "PID", "RESTARTS", "UPTIME", "LAST EXIT"]]
        for r in rows {
            var state = r.state.rawValue
            if r.state == .waiting && !r.waitingFor.isEmpty { state += " (for \(r.waitingFor.joined(separator: ",")))" }
            if let n = r.nextStartIn, r.state == .backoff || r.state == .crashLoop, r.pid == nil { state += " (next in \(duration(n)))" }
            if r.adopted { state += " (adopted)" }
            lines.append([r.name, r.agent, state, r.pid.map(String.init) ?? "-", String(r.restarts),
                          r.pid == nil ? "-" : duration(r.uptime), r.lastExit.isEmpty ? "-" : r.lastExit])
        }
        var widths = [Int](repeating: 0, count: lines[0].count)
        for l in lines { for (i, c) in l.enumerated() { widths[i] = max(widths[i], c.count) } }
        var out = lines.map { l in
            l.enumerated().map { i, c in i == l.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count) }.joined(separator: "  ")
        }
        for r in rows where !r.logTail.isEmpty && (r.state == .crashLoop || r.state == .failed || r.state == .backoff) {
            out.append("")
            out.append("\(r.name): \(r.state.rawValue), last exit \(r.lastExit.isEmpty ? "-" : r.lastExit); the end of \(r.log):")
            out.append(contentsOf: r.logTail.split(separator: "\n", omittingEmptySubsequences: false).map { "  | " + $0 })
        }
        return out.joined(separator: "\n")
    }

    /// 0.4s, 12s, 3m05s, 2h03m.
    public static func duration(_ s: Double) -> String {
        if s < 10 { return String(Double(Int(s * 10)) / 10) + "s" }
        let t = Int(s)
        if t < 60 { return "\(t)s" }
        if t < 3600 { return "\(t / 60)m" + (t % 60 < 10 ? "0" : "") + "\(t % 60)s" }
        return "\(t / 3600)h" + ((t % 3600) / 60 < 10 ? "0" : "") + "\((t % 3600) / 60)m"
    }
}
