import DAgentRaft
@testable import DAgentRaftStorage
import DAgentTestSupport

/// Knobs of one randomized simulation run.
struct SimParams {
    var nodes: Int
    var chaosTicks = 250
    /// Budget after healing: a leader must exist and every new proposal must be applied on
    /// every node within this many ticks.
    var livenessTicks = 400
    var leaderDeadlineTicks = 150
    var livenessProposals = 5
    var dropRate = 0.05
    var dupRate = 0.03
    var maxDelay = 3
    var partitionRate = 0.025
    var healRate = 0.04
    var crashRate = 0.006
    var restartRate = 0.06
    /// Probability of crashing in the middle of handling one Ready.
    var readyCrashRate = 0.001
    var proposeRate = 0.35
    var readRate = 0.2
    var compactEvery: UInt64 = 15
    var electionTick = 10
    var maxSizePerMsg: UInt64 = 120
    var maxInflight = 4
    var preVote = true
    var checkQuorum = true
    /// Per-tick probability that the operator asks the leader for a membership change
    /// (add a brand-new node or remove a random voter, possibly the leader itself).
    var confChangeRate = 0.01
    /// At most this many new node ids are ever added.
    var maxJoiners = 3
    /// If set, every process uses a real `DiskStorage` in `<diskRoot>/node-<id>` (checked
    /// for durability on every restart) instead of a `MemoryStorage`.
    var diskRoot: String?
    /// Probability, at every persistence step of a `DiskStorage`, of crashing right there.
    var diskCrashRate = 0.0
    var diskSegmentSize = 2048
    /// Handle Readys as `RootReplica` does (`SimProcess.pipelined`): saves complete later,
    /// each pending one with this probability per tick, while the node keeps stepping. At
    /// 0.8 a save takes 1.25 ticks on average, an eighth of the election timeout (a real
    /// fsync takes milliseconds of a 1 s timeout); at 0.5 elections without pre-vote in 5
    /// nodes can take longer than the liveness deadline (seed 152 converged after 212 ticks).
    /// Pipelined nodes also defer their commit notices (`RaftConfig.deferCommitNotices`).
    var pipelined = false
    var saveCompleteRate = 0.8

    /// Parameters for `seed`: the cluster size is given; message size, window size and
    /// whether pre-vote / check-quorum are enabled vary with the seed so that all
    /// combinations get exercised (most runs use both, the production setting).
    static func forSeed(_ seed: UInt64, nodes: Int) -> SimParams {
        var rng = SplitMix64(seed: seed ^ 0xA5A5_5A5A)
        var p = SimParams(nodes: nodes)
        p.maxSizePerMsg = [1, 60, 120, 1000][Int(rng.next(below: 4))]
        p.maxInflight = [1, 2, 4, 16][Int(rng.next(below: 4))]
        p.preVote = rng.chance(0.75)
        p.checkQuorum = rng.chance(0.75)
        return p
    }

    var summary: String {
        "maxbytes=\(maxSizePerMsg) inflight=\(maxInflight) prevote=\(preVote) checkquorum=\(checkQuorum) pipelined=\(pipelined)"
    }
}

/// A directed network link.
struct Link: Hashable {
    let from: NodeID
    let to: NodeID
}

/// A deterministic, seeded cluster simulation: N processes, a network that partitions,
/// drops, duplicates, delays and reorders messages, crashes and restarts (only persisted
/// state survives), and a client that proposes values. Safety is checked after every step.
final class RandomCluster {
    let seed: UInt64
    let params: SimParams
    private var rng: SplitMix64
    /// Every process ever started (founding members, joiners, removed members).
    private(set) var ids: [NodeID]
    private(set) var procs: [NodeID: SimProcess] = [:]
    private var queue: [(msg: Message, at: Int)] = []
    private var now = 0
    private var blocked = Set<Link>()
    private var faults = true
    let checker = SafetyChecker()
    private(set) var trace: [String] = []
    private var nextValue = 0
    private var snapshotReports: [(msg: Message, success: Bool)] = []
    /// Outstanding ReadIndex requests: context -> highest index acknowledged to any
    /// client before the read was issued (a linearizable read must not return less).
    private var pendingReads: [[UInt8]: UInt64] = [:]
    private var nextRead = 0
    private(set) var stats: [String: Int] = [:]

    init(seed: UInt64, params: SimParams) throws {
        self.seed = seed
        self.params = params
        self.rng = SplitMix64(seed: seed)
        self.ids = (1...params.nodes).map { NodeID($0) }
        for id in ids {
            try startProcess(id, storage: try makeStorage(id, bootstrapVoters: ids))
        }
        diskCrashesArmed = true
    }

    /// Disk crashes are injected only while the simulation runs (not while a storage is
    /// created or reopened).
    private var diskCrashesArmed = false

    private func makeStorage(_ id: NodeID, bootstrapVoters voters: [NodeID]?) throws -> any RaftStorage {
        guard let root = params.diskRoot else {
            return try voters.map { try MemoryStorage(bootstrapVoters: $0) } ?? MemoryStorage()
        }
        var opts = DiskStorageOptions(segmentSize: params.diskSegmentSize, keepSnapshots: 2)
        opts.crashHook = { [unowned self] step in
            if self.diskCrashesArmed && self.faults && self.rng.chance(self.params.diskCrashRate) {
                self.note("crash \(id) inside storage at \(step)")
                self.count("crash-in-storage")
                throw InjectedCrash(step: step)
            }
        }
        let armed = diskCrashesArmed
        diskCrashesArmed = false
        defer { diskCrashesArmed = armed }
        let s = try CheckedDiskStorage.open(directory: root + "/node-\(id)", options: opts)
        if let v = voters { try s.bootstrap(voters: v) }
        return s
    }

    private func startProcess(_ id: NodeID, storage: any RaftStorage) throws {
        var cfg = RaftConfig(id: id, electionTick: params.electionTick, heartbeatTick: 1,
                             maxSizePerMsg: params.maxSizePerMsg, maxInflightMsgs: params.maxInflight,
                             preVote: params.preVote, checkQuorum: params.checkQuorum,
                             randomSeed: seed &* 31 &+ id)
        cfg.deferCommitNotices = params.pipelined   // as RootReplica runs it
        let p = SimProcess(id: id, storage: storage, config: cfg)
        p.compactEvery = params.compactEvery
        p.pipelined = params.pipelined
        if params.diskRoot != nil {
            p.reopenStorage = { [unowned self] old in
                let armed = self.diskCrashesArmed
                self.diskCrashesArmed = false
                defer { self.diskCrashesArmed = armed }
                self.count("storage-reopens")
                return try (old as! CheckedDiskStorage).reopen()
            }
        }
        try p.start(checker: checker)
        procs[id] = p
    }

    /// The operator asks some leader to add a new node or remove a voter.
    private func randomConfChange() throws {
        guard rng.chance(params.confChangeRate), let leader = currentLeader() else { return }
        let voters = leader.membership.voters
        let joiners = ids.count - params.nodes
        let canAdd = joiners < params.maxJoiners
        let wantAdd = voters.count <= 3 ? true : (voters.count >= params.nodes + 1 ? false : rng.chance(0.5))
        let cc: ConfChange
        if wantAdd && canAdd {
            let newID = NodeID(ids.count + 1)
            ids.append(newID)
            try startProcess(newID, storage: try makeStorage(newID, bootstrapVoters: nil))
            note("start joiner \(newID)")
            cc = ConfChange(type: .addNode, nodeID: newID)
        } else if voters.count > 3 {
            cc = ConfChange(type: .removeNode, nodeID: voters[Int(rng.next(below: UInt64(voters.count)))])
        } else {
            return
        }
        do {
            try leader.proposeConfChange(cc)
            note("propose \(cc.type) \(cc.nodeID) on \(leader.id)")
            count("conf-changes")
        } catch {
            count("conf-changes-refused")
        }
        try process(leader.id)
    }

    private func note(_ s: String) {
        trace.append("[t\(now)] \(s)")
        if trace.count > 600 { trace.removeFirst(200) }
    }

    private func count(_ key: String) { stats[key, default: 0] += 1 }

    // MARK: Network

    private func send(_ m: Message) {
        if faults && rng.chance(params.dropRate) {
            count("dropped")
            if m.type == .snapshot { snapshotReports.append((m, false)) }
            return
        }
        enqueue(m)
        if faults && rng.chance(params.dupRate) {
            count("duplicated")
            enqueue(m)
        }
    }

    private func enqueue(_ m: Message) {
        let delay = Int(rng.next(below: UInt64((faults ? params.maxDelay : 1) + 1)))
        queue.append((m, now + delay))
    }

    /// Verbose tracing (every delivery and state change) for replaying one seed.
    var verbose = false
    private var lastSeen: [NodeID: String] = [:]

    private func process(_ id: NodeID) throws {
        guard let p = procs[id], p.isUp else { return }
        defer {
            if verbose, let r = procs[id]?.raft {
                let st = "\(r.role) t\(r.term) v\(r.vote) lead=\(r.leader) commit=\(r.commitIndex) last=\(r.lastIndex)/\(r.logTerm(at: r.lastIndex) ?? 0)"
                if lastSeen[id] != st { note("  node \(id): \(st)"); lastSeen[id] = st }
            }
        }
        try p.processReady(checker: checker, send: { self.send($0) }, crashAt: { self.crashInReady(id, at: $0) })
        try checkReads(p)
        try flushSnapshotReports()
    }

    private func crashInReady(_ id: NodeID, at point: CrashPoint) -> Bool {
        if faults && rng.chance(params.readyCrashRate) {
            note("crash \(id) at \(point)")
            count("crash-in-ready")
            return true
        }
        return false
    }

    /// Pipelined mode: pending saves complete, each with `saveCompleteRate`.
    private func completeSaves() throws {
        for id in ids {
            guard let p = procs[id], p.isUp, p.saving != nil, rng.chance(params.saveCompleteRate) else { continue }
            count("saves-completed-later")
            try p.completeSave(checker: checker, send: { self.send($0) }, crashAt: { self.crashInReady(id, at: $0) })
            try checkReads(p)
            try flushSnapshotReports()
        }
    }

    private func checkReads(_ p: SimProcess) throws {
        for rs in p.readStates {
            // The network duplicates messages, so a read may be answered more than once;
            // every answer must still be linearizable.
            guard let minIndex = pendingReads[rs.context] else {
                throw SafetyViolation(message: "node \(p.id) got a read state for an unknown context \(rs)")
            }
            if rs.index < minIndex {
                throw SafetyViolation(message: "stale read on node \(p.id): read index \(rs.index) < \(minIndex) acknowledged before the read")
            }
            count("reads-served")
        }
        p.readStates = []
    }

    private func randomRead() throws {
        guard rng.chance(params.readRate) else { return }
        let up = ids.filter { procs[$0]!.isUp }
        guard !up.isEmpty else { return }
        let target = up[Int(rng.next(below: UInt64(up.count)))]
        let ctx = Array("r\(nextRead)".utf8)
        nextRead += 1
        do {
            try procs[target]!.raft!.readIndex(context: ctx)
            pendingReads[ctx] = checker.maxAppliedIndex
            count("reads")
        } catch RaftError.proposalDropped {
            count("reads-dropped")
        }
        try process(target)
    }

    /// The transport reports snapshot delivery results back to the sender.
    private func flushSnapshotReports() throws {
        while !snapshotReports.isEmpty {
            let (m, ok) = snapshotReports.removeFirst()
            guard let p = procs[m.from], let r = p.raft else { continue }
            r.reportSnapshot(m.to, success: ok)
            try process(m.from)
        }
    }

    private func deliverDue() throws {
        var rounds = 0
        while true {
            var due: [Message] = []
            var rest: [(msg: Message, at: Int)] = []
            for item in queue {
                if item.at <= now { due.append(item.msg) } else { rest.append(item) }
            }
            if due.isEmpty { return }
            queue = rest
            // Reorder messages that are due at the same time.
            for i in stride(from: due.count - 1, to: 0, by: -1) {
                due.swapAt(i, Int(rng.next(below: UInt64(i + 1))))
            }
            for m in due { try deliver(m) }
            rounds += 1
            if rounds > 10_000 { throw SafetyViolation(message: "message storm: delivery does not quiesce") }
        }
    }

    private func deliver(_ m: Message) throws {
        guard let p = procs[m.to], let r = p.raft else {
            if m.type == .snapshot { snapshotReports.append((m, false)) }
            try flushSnapshotReports()
            return
        }
        if blocked.contains(Link(from: m.from, to: m.to)) {
            count("partitioned")
            if m.type == .snapshot { snapshotReports.append((m, false)) }
            if m.type == .append, let s = procs[m.from]?.raft { s.reportUnreachable(m.to) }
            try flushSnapshotReports()
            return
        }
        count("delivered")
        if verbose { note("deliver \(m)") }
        if m.type == .snapshot { count("snapshots") }
        r.step(m)
        try process(m.to)
        if m.type == .snapshot { snapshotReports.append((m, true)) }
        try flushSnapshotReports()
    }

    // MARK: Faults

    private func randomPartition() {
        blocked = []
        switch rng.next(below: 4) {
        case 3: // isolate a node that believes it is leader (makes logs diverge)
            let leaders = ids.filter { procs[$0]!.raft?.role == .leader }
            guard !leaders.isEmpty else { return }
            let x = leaders[Int(rng.next(below: UInt64(leaders.count)))]
            for o in ids where o != x {
                blocked.insert(Link(from: x, to: o))
                blocked.insert(Link(from: o, to: x))
            }
            note("isolate leader \(x)")
        case 0: // split into two sides
            var sideA: [NodeID] = []
            var sideB: [NodeID] = []
            for id in ids { if rng.chance(0.5) { sideA.append(id) } else { sideB.append(id) } }
            if sideA.isEmpty || sideB.isEmpty { return }
            for a in sideA { for b in sideB {
                blocked.insert(Link(from: a, to: b))
                blocked.insert(Link(from: b, to: a))
            } }
            note("partition \(sideA) | \(sideB)")
        case 1: // isolate one node
            let x = ids[Int(rng.next(below: UInt64(ids.count)))]
            for o in ids where o != x {
                blocked.insert(Link(from: x, to: o))
                blocked.insert(Link(from: o, to: x))
            }
            note("isolate \(x)")
        default: // partial connectivity, possibly asymmetric
            let k = 1 + Int(rng.next(below: UInt64(ids.count)))
            for _ in 0..<k {
                let a = ids[Int(rng.next(below: UInt64(ids.count)))]
                let b = ids[Int(rng.next(below: UInt64(ids.count)))]
                if a != b { blocked.insert(Link(from: a, to: b)) }
            }
            note("cut links \(blocked.map { "\($0.from)->\($0.to)" }.sorted())")
        }
        count("partitions")
    }

    private func chaos() throws {
        if rng.chance(params.partitionRate) {
            randomPartition()
        } else if !blocked.isEmpty && rng.chance(params.healRate) {
            blocked = []
            note("heal partition")
        }
        if rng.chance(params.crashRate) {
            let up = ids.filter { procs[$0]!.isUp }
            if !up.isEmpty {
                let x = up[Int(rng.next(below: UInt64(up.count)))]
                procs[x]!.crash()
                note("crash \(x)")
                count("crashes")
            }
        }
        for id in ids where !procs[id]!.isUp && rng.chance(params.restartRate) {
            try restart(id)
        }
    }

    private func restart(_ id: NodeID) throws {
        try procs[id]!.start(checker: checker)
        note("restart \(id)")
        count("restarts")
        try process(id)
    }

    // MARK: Client

    private func currentLeader() -> RaftNode? {
        var best: RaftNode?
        for id in ids {
            if let r = procs[id]!.raft, r.role == .leader, r.term >= (best?.term ?? 0) { best = r }
        }
        return best
    }

    private func propose(_ value: String, on id: NodeID) throws {
        guard let r = procs[id]?.raft else { return }
        do {
            try r.propose(Array(value.utf8))
            count("proposals")
        } catch RaftError.proposalDropped {
            count("proposals-dropped")
        }
        try process(id)
    }

    private func randomProposal() throws {
        guard rng.chance(params.proposeRate) else { return }
        let up = ids.filter { procs[$0]!.isUp }
        guard !up.isEmpty else { return }
        var target = up[Int(rng.next(below: UInt64(up.count)))]
        // Usually talk to some node that believes it leads (possibly a stale leader).
        let leaders = up.filter { procs[$0]!.raft?.role == .leader }
        if !leaders.isEmpty && rng.chance(0.7) { target = leaders[Int(rng.next(below: UInt64(leaders.count)))] }
        for _ in 0...rng.next(below: 3) {
            let v = "s\(seed)-c\(nextValue)"
            nextValue += 1
            try propose(v, on: target)
        }
    }

    private func tickAll() throws {
        for id in ids {
            guard let r = procs[id]!.raft else { continue }
            r.tick()
            try process(id)
        }
    }

    private func step() throws {
        now += 1
        try tickAll()
        if params.pipelined { try completeSaves() }
        try deliverDue()
    }

    // MARK: Run

    /// Runs the chaos phase, heals everything, then checks liveness and convergence.
    func run() throws {
        for _ in 0..<params.chaosTicks {
            try chaos()
            try randomProposal()
            try randomRead()
            try randomConfChange()
            try step()
        }
        // Heal: no more faults; restart every crashed process.
        faults = false
        blocked = []
        note("HEAL ALL")
        for id in ids where !procs[id]!.isUp { try restart(id) }
        let healedAt = now
        let values = (0..<params.livenessProposals).map { "s\(seed)-live\($0)" }
        var lastTry: [String: Int] = [:]
        var leaderAt: Int?
        while now - healedAt < params.livenessTicks {
            try step()
            guard let leader = currentLeader() else {
                if now - healedAt > params.leaderDeadlineTicks {
                    throw SafetyViolation(message: "liveness: no leader within \(params.leaderDeadlineTicks) ticks after healing")
                }
                continue
            }
            if leaderAt == nil { leaderAt = now }
            for v in values where !checker.appliedValues.contains(v) {
                if let t = lastTry[v], now - t < 3 * params.electionTick { continue }
                lastTry[v] = now
                try propose(v, on: leader.id)
            }
            if converged(with: values) {
                stats["ticks-to-leader"] = (leaderAt ?? now) - healedAt
                stats["ticks-to-converge"] = now - healedAt
                if members() != (1...params.nodes).map({ NodeID($0) }) { count("runs-with-changed-membership") }
                try checkFinalState()
                return
            }
        }
        let status = ids.map { id -> String in
            guard let r = procs[id]!.raft else { return "\(id): down" }
            return "\(id): \(r.role) t\(r.term) lead=\(r.leader) commit=\(r.commitIndex) applied=\(r.appliedIndex) last=\(r.lastIndex) voters=\(r.membership)"
        }
        throw SafetyViolation(message: "liveness: proposals not applied everywhere within \(params.livenessTicks) ticks after healing (leader at \(leaderAt.map { $0 - healedAt } ?? -1))\n  " + status.joined(separator: "\n  "))
    }

    /// Current members according to the highest-term leader.
    private func members() -> [NodeID] {
        currentLeader()?.membership.voters ?? ids
    }

    private func converged(with values: [String]) -> Bool {
        let mem = members()
        // Every member has applied the leader's whole log (nothing in flight).
        guard let leader = currentLeader(), mem.allSatisfy({ procs[$0]?.raft?.appliedIndex == leader.lastIndex }) else {
            return false
        }
        let sms = mem.map { procs[$0]!.sm }
        guard let first = sms.first else { return false }
        guard sms.allSatisfy({ $0 == first }) else { return false }
        let have = Set(first.values)
        return values.allSatisfy { have.contains($0) }
    }

    /// Every value that was ever applied (and so acknowledged to a client) is present on
    /// every node, in the same order everywhere.
    private func checkFinalState() throws {
        let sms = members().map { procs[$0]!.sm }
        let have = Set(sms[0].values)
        for v in checker.appliedValues where !have.contains(v) {
            throw SafetyViolation(message: "acknowledged value \(v) was lost")
        }
    }
}
