import DAgentRaft
@testable import DAgentRaftStorage
import DAgentTestSupport

/// Where a simulated process may crash while handling a Ready.
enum CrashPoint: CaseIterable {
    case beforePersist, afterPersist, afterSend
}

/// A simulated server process: durable storage (a `MemoryStorage` "disk", or a real
/// `DiskStorage` that is reopened from its directory after a crash) plus volatile state
/// (the `RaftNode`, the state machine, collected read states). `crash()` drops the volatile
/// part; `start()` rebuilds it from the disk only. A storage write that throws
/// `InjectedCrash` crashes the process in the middle of persisting.
final class SimProcess {
    let id: NodeID
    private(set) var storage: any RaftStorage
    /// For disk-backed processes: reopens the storage from disk after a crash.
    var reopenStorage: ((any RaftStorage) throws -> any RaftStorage)?
    private var storageStale = false
    var baseConfig: RaftConfig
    private(set) var raft: RaftNode?
    private(set) var sm = TestStateMachine()
    var readStates: [ReadState] = []
    private(set) var incarnation = 0
    /// Compact the log whenever this many applied entries are above the snapshot.
    var compactEvery: UInt64?
    /// Handle Readys as `RootReplica` does (`processPipelined`): a Ready that must be synced
    /// is saved later (`completeSave`), while the node goes on stepping messages; a leader
    /// sends before its save, and during it; durable committed entries apply at once.
    var pipelined = false
    /// The Ready whose save is under way (pipelined mode), with what was done before it.
    private(set) var saving: (rd: Ready, sentFirst: Bool, appliedBefore: Int)?

    init(id: NodeID, storage: any RaftStorage, config: RaftConfig) {
        self.id = id
        self.storage = storage
        self.baseConfig = config
    }

    var isUp: Bool { raft != nil }

    func start(checker: SafetyChecker? = nil) throws {
        if storageStale, let reopen = reopenStorage {
            storage = try reopen(storage)
            storageStale = false
        }
        try checker?.observeRestart(node: id, hardState: try storage.hardState())
        var cfg = baseConfig
        cfg.randomSeed = baseConfig.randomSeed &+ UInt64(incarnation) &* 0x1000_0001
        incarnation += 1
        sm = TestStateMachine(snapshot: try storage.snapshot())
        raft = try RaftNode(config: cfg, storage: storage)
    }

    func crash() {
        raft = nil
        saving = nil
        readStates = []
        storageStale = true
    }

    /// Handles every pending Ready in the required order: persist, send, apply, advance.
    func processReady(checker: SafetyChecker?, send: (Message) -> Void,
                      crashAt: (CrashPoint) -> Bool = { _ in false }) throws {
        if pipelined { return try processPipelined(checker: checker, send: send, crashAt: crashAt) }
        while let r = raft, r.hasReady() {
            guard try finish(r.ready(), sentFirst: false, appliedBefore: 0, checker: checker, send: send, crashAt: crashAt) else { return }
        }
        if let r = raft { try checker?.observeNode(id, r) }
    }

    // MARK: pipelined (RootReplica's order)

    /// The commit index the checker may record: a leader counts its own entries before
    /// they are durable, so only the part its storage holds is known to be on a quorum.
    private func knownCommitted(_ r: RaftNode) -> UInt64 {
        guard r.role == .leader else { return r.commitIndex }
        return min(r.commitIndex, (try? storage.lastIndex()) ?? 0)
    }

    /// Takes Readys as `RootReplica.processReady` does: while a save is under way only a
    /// leader's messages go out (`takeMessagesBeforePersist`) and entries committed meanwhile
    /// that are durable here apply (`takeCommittedBeforePersist`); a new Ready sends a leader's
    /// messages first (`messagesBeforePersist(of:)`), applies the committed entries that are
    /// durable here (`committedBeforePersist`), and leaves its save to `completeSave`.
    func processPipelined(checker: SafetyChecker?, send: (Message) -> Void,
                          crashAt: (CrashPoint) -> Bool) throws {
        if let r = raft, let s = saving {
            if s.sentFirst { for m in r.takeMessagesBeforePersist() { send(m) } }
            try apply(r.takeCommittedBeforePersist()[...], checker: checker)
            try checker?.observeNode(id, r, knownCommitted: knownCommitted(r))
            return
        }
        while let r = raft, saving == nil, r.hasReady() {
            let rd = r.ready()
            let sentFirst = r.role == .leader && (rd.hardState.map { $0.vote == id || $0.vote == 0 } ?? true)
            if sentFirst { for m in r.messagesBeforePersist(of: rd) { send(m) } }
            let early = rd.committedBeforePersist
            try apply(rd.committedEntries.prefix(early), checker: checker)
            if !rd.entries.isEmpty || rd.snapshot != nil || rd.hardState != nil {
                saving = (rd, sentFirst, early)
                break
            }
            guard try finish(rd, sentFirst: sentFirst, appliedBefore: early, checker: checker, send: send, crashAt: crashAt) else { return }
        }
        if let r = raft, r.hasDeferredCommitNotice, r.commitIndex % 2 == 0 {
            // RootReplica tells the followers at once, or when its timer fires: here one
            // commit in two is told at once, the others ride on the next append or heartbeat.
            r.sendCommitNotices()
            return try processPipelined(checker: checker, send: send, crashAt: crashAt)
        }
        if let r = raft { try checker?.observeNode(id, r, knownCommitted: knownCommitted(r)) }
    }

    /// The save of the pending Ready completes (pipelined mode): persist, send what waited,
    /// apply the rest, advance; then go on with the next Ready.
    func completeSave(checker: SafetyChecker?, send: (Message) -> Void,
                      crashAt: (CrashPoint) -> Bool = { _ in false }) throws {
        guard raft != nil, let s = saving else { return }
        saving = nil
        guard try finish(s.rd, sentFirst: s.sentFirst, appliedBefore: s.appliedBefore, checker: checker,
                         send: send, crashAt: crashAt) else { return }
        try processPipelined(checker: checker, send: send, crashAt: crashAt)
    }

    private func apply(_ entries: ArraySlice<Entry>, checker: SafetyChecker?) throws {
        for e in entries {
            guard e.index == sm.appliedIndex + 1 else {
                throw SafetyViolation(message: "node \(id) applies \(e.index) after \(sm.appliedIndex)")
            }
            sm.apply(e)
            try checker?.observeApply(node: id, entry: e, state: sm)
        }
    }

    /// Persists `rd` and finishes it; false if the process crashed on the way.
    private func finish(_ rd: Ready, sentFirst: Bool, appliedBefore: Int, checker: SafetyChecker?,
                        send: (Message) -> Void, crashAt: (CrashPoint) -> Bool) throws -> Bool {
        guard let r = raft else { return false }
        if crashAt(.beforePersist) { crash(); return false }
        try checker?.observePersist(node: id, ready: rd, storage: storage)
        do {
            try storage.save(rd)
        } catch is InjectedCrash {
            crash(); return false
        }
        checker?.observePersisted(node: id)
        if crashAt(.afterPersist) { crash(); return false }
        if !sentFirst { for m in rd.messages { send(m) } }
        if crashAt(.afterSend) { crash(); return false }
        if let snap = rd.snapshot, !snap.isEmpty {
            sm = TestStateMachine(snapshot: snap)
            try checker?.observeSnapshotApplied(node: id, snapshot: snap, state: sm)
        }
        try apply(rd.committedEntries.dropFirst(appliedBefore), checker: checker)
        readStates += rd.readStates
        r.advance(rd)
        if let every = compactEvery, sm.appliedIndex >= r.firstIndex + every {
            do {
                try r.compact(upTo: sm.appliedIndex, snapshotData: sm.snapshotData())
            } catch is InjectedCrash {
                crash(); return false
            }
        }
        return true
    }

    /// Compacts the log up to the applied index (scenario command).
    func compactNow() throws {
        guard let r = raft else { return }
        try r.compact(upTo: sm.appliedIndex, snapshotData: sm.snapshotData())
    }
}
