/// A deterministic Raft state machine for one node. It performs no I/O, reads no clock
/// and uses no randomness other than the seeded PRNG from `RaftConfig.randomSeed`.
///
/// Driving loop (single-threaded; the node is not thread-safe):
/// ```
/// every tick interval:      node.tick()
/// on network message m:     node.step(m)
/// client requests:          try node.propose(data) / try node.readIndex(context:)
/// then, while node.hasReady():
///     let rd = node.ready()
///     try storage.save(rd)             // 1. persist (fsync)
///     transport.send(rd.messages)      // 2. send
///     apply(rd.snapshot, rd.committedEntries); serve(rd.readStates)   // 3. apply
///     node.advance(rd)                 // 4. acknowledge
/// ```
/// See `Ready` for the exact ordering contract.
public final class RaftNode {
    /// This node's id.
    public let id: NodeID
    package let config: RaftConfig
    package var log: RaftLog
    package var tracker: ProgressTracker

    /// Current term.
    public package(set) var term: UInt64 = 0
    /// Vote cast in the current term (0 = none).
    public package(set) var vote: NodeID = noNode
    /// Current role.
    public package(set) var role: RaftRole = .follower
    /// Leader this node follows (0 = unknown).
    public package(set) var leader: NodeID = noNode

    /// Membership changes applied so far (index at which each took effect), used to
    /// record the right membership in locally taken snapshots.
    package var membershipHistory: [(index: UInt64, membership: Membership)] = []

    package var msgs: [Message] = []
    package var readStates: [ReadState] = []
    package var readOnly = ReadOnly()
    /// ReadIndex requests received before this leader committed an entry of its term.
    package var pendingReadIndexMessages: [Message] = []

    package var electionElapsed = 0
    package var heartbeatElapsed = 0
    package var randomizedElectionTimeout = 0
    package var leadTransferee: NodeID = noNode
    /// Index of the latest membership-change entry proposed by this leader.
    package var pendingConfIndex: UInt64 = 0
    package var rng: SplitMix64
    /// Test hook (internal): a fixed election timeout instead of a randomized one.
    package var electionTimeoutOverride: Int?

    package var prevHardState: HardState
    package var prevSoftState: SoftState
    package var readyOutstanding = false
    /// Set when a message sent before a save carried a capped commit index
    /// (`RaftNode-pipeline.swift`): the lowest such index, what every follower was told.
    package var commitCappedAt: UInt64?
    /// The commit index moved and some follower was not told (`RaftConfig.deferCommitNotices`).
    package var commitNoticeDue = false
    /// The outstanding Ready's last committed index, and whether all its committed entries
    /// lie below its `entries` (so may apply before its save: `takeCommittedBeforePersist`).
    package var readyCommitted: (last: UInt64, allDurable: Bool) = (0, true)

    /// Creates a node from the durable state in `storage` (empty storage = a node that
    /// joins an existing cluster; bootstrapped storage = a founding member; anything else
    /// = a restart). On restart the application must restore its state machine from
    /// `storage.snapshot()` (unless `config.applied` says it is already further).
    public init(config: RaftConfig, storage: any RaftStorage) throws {
        try config.validate()
        self.id = config.id
        self.config = config
        self.rng = SplitMix64(seed: config.randomSeed ^ (config.id &* 0x9E37_79B9_7F4A_7C15))
        self.log = try RaftLog(storage: storage, maxApplyBytes: config.maxCommittedSizePerReady)
        let hs = try storage.hardState()
        let snap = try storage.snapshot()
        var membership = snap.metadata.membership
        var history = [(index: snap.metadata.index, membership: membership)]
        let snapIndex = log.firstIndex - 1
        let commit = max(hs.commit, snapIndex)
        guard commit <= log.lastIndex else {
            throw RaftError.corruptState("commit \(hs.commit) is beyond last index \(log.lastIndex)")
        }
        // Replay committed membership changes after the snapshot.
        if commit > snapIndex {
            guard let ents = log.slice(snapIndex + 1, commit + 1, maxBytes: .max) else {
                throw RaftError.corruptState("committed entries missing from storage")
            }
            for e in ents where e.type == .confChange {
                guard let cc = try? ConfChange(bytes: e.data) else {
                    throw RaftError.corruptState("undecodable conf change at \(e.index)")
                }
                membership = cc.applied(to: membership)
                history.append((e.index, membership))
            }
        }
        log.committed = commit
        let applied = max(config.applied, snapIndex)
        guard applied <= commit else {
            throw RaftError.corruptState("applied \(config.applied) is beyond commit \(commit)")
        }
        log.applied = applied
        self.term = hs.term
        self.vote = hs.vote
        self.membershipHistory = history
        self.tracker = ProgressTracker(membership: membership, maxInflight: config.maxInflightMsgs)
        self.prevHardState = hs
        self.prevSoftState = SoftState(leader: noNode, role: .follower)
        becomeFollower(term: hs.term, leader: noNode)
        prevHardState = hardState
    }

    // MARK: - Introspection

    /// Current membership (as of the commit index).
    public var membership: Membership { tracker.membership }
    /// Highest committed index.
    public var commitIndex: UInt64 { log.committed }
    /// Highest applied index (acknowledged via `advance`).
    public var appliedIndex: UInt64 { log.applied }
    /// Last index in the log (including unpersisted entries).
    public var lastIndex: UInt64 { log.lastIndex }
    /// First index still in the log.
    public var firstIndex: UInt64 { log.firstIndex }
    /// Term of the entry at `index`, nil if compacted or absent.
    public func logTerm(at index: UInt64) -> UInt64? { log.term(index) }
    /// Entries in `[lo, hi)` from the in-memory view of the log, nil if compacted.
    public func logEntries(from lo: UInt64, to hi: UInt64) -> [Entry]? {
        log.slice(lo, min(hi, log.lastIndex + 1), maxBytes: .max)
    }

    package var hardState: HardState { HardState(term: term, vote: vote, commit: log.committed) }
    package var softState: SoftState { SoftState(leader: leader, role: role) }

    /// Whether this node may campaign (it is a voter).
    package var promotable: Bool { tracker.membership.contains(id) }

    /// Diagnostic snapshot of the node's state.
    public var status: RaftStatus {
        var prs: [NodeID: RaftStatus.FollowerProgress] = [:]
        if role == .leader {
            for (pid, p) in tracker.progress {
                prs[pid] = .init(match: p.match, next: p.next, state: p.state, inflight: p.inflights.count)
            }
        }
        return RaftStatus(id: id, term: term, vote: vote, role: role, leader: leader,
                          commit: log.committed, applied: log.applied, firstIndex: log.firstIndex,
                          lastIndex: log.lastIndex, membership: membership,
                          leadTransferee: leadTransferee, progress: prs)
    }

    // MARK: - Inputs

    /// Advances logical time by one tick (election / heartbeat timers).
    public func tick() {
        if role == .leader { tickHeartbeat() } else { tickElection() }
    }

    /// Starts an election now (pre-vote first if enabled). No-op on a leader or a non-voter.
    public func campaign() { hup(transfer: false) }

    /// Proposes an application command. On a follower it is forwarded to the leader.
    /// Throws `RaftError.proposalDropped` when nothing was accepted (no known leader,
    /// transfer in progress, not a member) — the caller should retry. A forwarded proposal
    /// can still be lost (leader change, network); callers need a timeout and retry.
    public func propose(_ data: [UInt8]) throws {
        try proposeLocal([Entry(type: .normal, data: data)])
    }

    /// Proposes several application commands at once, in order: one append per follower
    /// carries them all (what a loop turn's worth of requests costs one message). All or
    /// nothing: throws as `propose(_:)` does.
    public func propose(batch: [[UInt8]]) throws {
        guard !batch.isEmpty else { return }
        try proposeLocal(batch.map { Entry(type: .normal, data: $0) })
    }

    /// Proposes a single-server membership change. Must be called on the leader.
    /// Throws `.confChangePending` while another change is uncommitted or the leader has
    /// not committed an entry of its term yet.
    public func proposeConfChange(_ cc: ConfChange) throws {
        guard role == .leader else {
            if role == .follower && leader != noNode { throw RaftError.notLeader }
            throw RaftError.proposalDropped(.noLeader)
        }
        try validateConfChange(cc)
        try proposeLocal([Entry(type: .confChange, data: cc.serialize())])
    }

    /// Requests a linearizable read point. The result arrives as a `ReadState` with the same
    /// `context` in a later `Ready`. Contexts must be unique cluster-wide among outstanding
    /// requests (e.g. prefix them with the node id); with a lossy/duplicating network a
    /// request may go unanswered (retry with a new context) or be answered twice.
    /// Throws `.proposalDropped(.noLeader)` if no leader is known.
    public func readIndex(context: [UInt8]) throws {
        let m = Message(type: .readIndex, from: id, to: id, context: context)
        switch role {
        case .leader:
            handleReadIndex(m)
        case .follower:
            guard leader != noNode else { throw RaftError.proposalDropped(.noLeader) }
            send(Message(type: .readIndex, to: leader, context: context))
        case .candidate, .preCandidate:
            throw RaftError.proposalDropped(.noLeader)
        }
    }

    /// Asks the leader to hand leadership to `target` (forwarded if called on a follower).
    /// The transfer completes when `target` wins an election; it is aborted after an
    /// election timeout.
    public func transferLeadership(to target: NodeID) {
        switch role {
        case .leader:
            handleTransferLeader(target: target)
        case .follower:
            if leader != noNode { send(Message(type: .transferLeader, to: leader, index: target)) }
        case .candidate, .preCandidate:
            break
        }
    }

    /// Tells the leader that `peer` could not be reached (optional transport hint):
    /// replication to it falls back to probing.
    public func reportUnreachable(_ peer: NodeID) {
        guard role == .leader, var pr = tracker.progress[peer] else { return }
        if pr.state == .replicate { pr.becomeProbe() }
        tracker.progress[peer] = pr
    }

    /// Tells the leader whether sending the snapshot to `peer` succeeded. The transport
    /// must call this for every snapshot message, otherwise replication to `peer` stays
    /// paused in snapshot state.
    public func reportSnapshot(_ peer: NodeID, success: Bool) {
        guard role == .leader, var pr = tracker.progress[peer], pr.state == .snapshot else { return }
        if !success { pr.pendingSnapshot = 0 }
        pr.becomeProbe()
        // Wait for the follower's answer (or the next heartbeat) before probing again.
        pr.probeSent = true
        tracker.progress[peer] = pr
    }

    // MARK: - Sending

    /// Queues `m` for the next `Ready`, stamping sender and term.
    package func send(_ m: Message) {
        var m = m
        m.from = id
        switch m.type {
        case .vote, .preVote, .voteResponse, .preVoteResponse:
            precondition(m.term != 0, "DAgentRaft: vote message without term")
        case .propose, .readIndex, .transferLeader:
            m.term = 0 // forwarded local requests are term-less
        default:
            m.term = term
        }
        msgs.append(m)
    }
}
