import DAgentWire

/// The `dagent_process_*` series of a deployed agent, from the processes in
/// its tree snapshot (`TreeReply.processes`, see docs/deploy.md):
///
/// - `dagent_process_up{process}` 1 while it runs, else 0;
/// - `dagent_process_state{process,state}` 1 for its current state, 0 for the others (a state set);
/// - `dagent_process_restarts_total{process}` times its supervisor started it again;
/// - `dagent_process_uptime_seconds{process}` seconds of the current run (0 when it does not run).
///
/// The series of a process that is no longer supervised are removed.
extension NodeMetrics {
    /// The states a supervised process can be in (DAgentDeploy's `ProcessState`).
    static let processStates = ["waiting", "running", "backoff", "crash-loop", "stopping", "stopped", "exited", "failed"]

    static let processHelp: [(String, String)] = [
        ("dagent_process_up", "1 while a supervised process runs, else 0"),
        ("dagent_process_state", "1 for the state a supervised process is in, 0 for the others"),
        ("dagent_process_restarts_total", "Times the supervisor started a process again"),
        ("dagent_process_uptime_seconds", "Seconds of a supervised process's current run (0 when it does not run)"),
    ]

    /// Under `syncLock`.
    func applyProcesses(_ t: Dagent_TreeReply) {
        var seen = Set<String>()
        for p in t.processes where !p.name.isEmpty {
            seen.insert(p.name)
            let process = [("process", p.name)]
            let running = p.state == "running" && p.pid != 0
            gauge("dagent_process_up", process).record(running ? 1 : 0)
            gauge("dagent_process_uptime_seconds", process).record(running ? p.uptime : 0)
            advance("dagent_process_restarts_total", process, to: UInt64(p.restarts))
            var states = Self.processStates
            if !states.contains(p.state) { states.append(p.state) }
            for s in states {
                gauge("dagent_process_state", [("process", p.name), ("state", s)]).record(s == p.state ? 1 : 0)
            }
        }
        let gone = processNames.subtracting(seen)
        processNames = seen
        guard !gone.isEmpty else { return }
        registry.removeSeries { family, values in
            guard family.name.hasPrefix("dagent_process_"), let i = family.labelNames.firstIndex(of: "process"), i < values.count else { return false }
            return gone.contains(values[i])
        }
        func isGone(_ key: String) -> Bool {
            guard key.hasPrefix("dagent_process_"), let r = key.range(of: "|process=") else { return false }
            let rest = key[r.upperBound...]
            let value = rest.range(of: "|").map { String(rest[..<$0.lowerBound]) } ?? String(rest)
            return gone.contains(value)
        }
        counters = counters.filter { !isGone($0.key) }
        gauges = gauges.filter { !isGone($0.key) }
        last = last.filter { !isGone($0.key) }
    }
}
