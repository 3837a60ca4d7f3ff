@testable import DAgentRaft
@testable import DAgentRaftStorage
import DAgentTestSupport

/// A fully scripted cluster for scenario tests: FIFO message queue, explicit ticks and
/// deliveries, link-level partitions, crash/restart. Election timeouts are fixed per node
/// (`electionTick + id - 1`, so lower ids time out first) unless overridden, making
/// scripts deterministic. Safety invariants are checked after every step.
final class ScenarioCluster {
    var template = RaftConfig(id: 1)
    var autoCompact: UInt64?
    private(set) var procs: [NodeID: SimProcess] = [:]
    private(set) var queue: [Message] = []
    var blocked = Set<Link>()
    let checker = SafetyChecker()
    private(set) var counters: [String: Int] = [:]
    var timeouts: [NodeID: Int] = [:]
    var trace: [String] = []

    var ids: [NodeID] { procs.keys.sorted() }

    func proc(_ id: NodeID) throws -> SimProcess {
        guard let p = procs[id] else { throw ScenarioFailure("no node \(id)") }
        return p
    }

    func raft(_ id: NodeID) throws -> RaftNode {
        guard let r = try proc(id).raft else { throw ScenarioFailure("node \(id) is down") }
        return r
    }

    private func config(for id: NodeID) -> RaftConfig {
        var c = template
        c.id = id
        c.randomSeed = id
        return c
    }

    /// Founding members bootstrapped with voters 1...n.
    func bootstrap(count n: Int) throws {
        let voters = (1...n).map { NodeID($0) }
        for id in voters {
            try addProcess(id: id, storage: try MemoryStorage(bootstrapVoters: voters))
        }
    }

    /// A new, empty process that can be added to the cluster with a conf change.
    func addProcess(id: NodeID, storage: MemoryStorage = MemoryStorage()) throws {
        guard procs[id] == nil else { throw ScenarioFailure("node \(id) exists") }
        let p = SimProcess(id: id, storage: storage, config: config(for: id))
        p.compactEvery = autoCompact
        procs[id] = p
        try start(id)
    }

    func start(_ id: NodeID) throws {
        let p = try proc(id)
        try p.start(checker: checker)
        p.raft!.setElectionTimeoutForTesting(timeouts[id] ?? (template.electionTick + Int(id) - 1))
        try process(id)
    }

    func crash(_ id: NodeID) throws {
        try proc(id).crash()
        // The process dies before anything it queued leaves the machine.
        queue.removeAll { $0.from == id || $0.to == id }
    }

    func process(_ id: NodeID) throws {
        let p = try proc(id)
        try p.processReady(checker: checker, send: { self.queue.append($0) })
    }

    func tick(_ id: NodeID) throws {
        try raft(id).tick()
        try process(id)
    }

    private func bump(_ key: String) { counters[key, default: 0] += 1 }

    func resetCounters() { counters = [:] }

    func counter(_ key: String) -> Int { counters[key] ?? 0 }

    /// Delivers the messages queued right now (not the ones they trigger).
    /// Returns how many were taken off the queue.
    @discardableResult
    func deliverRound() throws -> Int {
        let batch = queue
        queue = []
        for m in batch { try deliver(m) }
        return batch.count
    }

    /// Delivers until the queue is empty.
    func deliverAll(maxRounds: Int = 1000) throws {
        var rounds = 0
        while !queue.isEmpty {
            try deliverRound()
            rounds += 1
            if rounds > maxRounds { throw ScenarioFailure("messages did not quiesce after \(maxRounds) rounds") }
        }
    }

    private func deliver(_ m: Message) throws {
        let sender = procs[m.from]?.raft
        guard let p = procs[m.to], let r = p.raft, !blocked.contains(Link(from: m.from, to: m.to)) else {
            bump("dropped")
            // Transport feedback to the sender.
            if m.type == .snapshot { sender?.reportSnapshot(m.to, success: false) }
            if m.type == .append { sender?.reportUnreachable(m.to) }
            if sender != nil { try process(m.from) }
            return
        }
        trace.append(m.description)
        if trace.count > 300 { trace.removeFirst(100) }
        bump(m.type.description)
        if m.reject { bump(m.type.description + "-reject") }
        r.step(m)
        try process(m.to)
        if m.type == .snapshot, let s = procs[m.from]?.raft {
            s.reportSnapshot(m.to, success: true)
            try process(m.from)
        }
    }
}

/// A scenario step failed.
struct ScenarioFailure: Error, CustomStringConvertible {
    let description: String
    init(_ s: String) { description = s }
}
