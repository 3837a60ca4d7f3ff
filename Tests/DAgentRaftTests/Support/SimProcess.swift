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
        readStates = []
        storageStale = true
    }

    /// Handles every pending Ready in the required order: persist, send, apply, advance.
    func processReady(checker: SafetyChecker?, send: (Message) -> Void,
                      crashAt: (CrashPoint) -> Bool = { _ in false }) throws {
        while let r = raft, r.hasReady() {
            let rd = r.ready()
            if crashAt(.beforePersist) { crash(); return }
            try checker?.observePersist(node: id, ready: rd, storage: storage)
            do {
                try storage.save(rd)
            } catch is InjectedCrash {
                crash(); return
            }
            checker?.observePersisted(node: id)
            if crashAt(.afterPersist) { crash(); return }
            for m in rd.messages { send(m) }
            if crashAt(.afterSend) { crash(); return }
            if let snap = rd.snapshot, !snap.isEmpty {
                sm = TestStateMachine(snapshot: snap)
                try checker?.observeSnapshotApplied(node: id, snapshot: snap, state: sm)
            }
            for e in rd.committedEntries {
                guard e.index == sm.appliedIndex + 1 else {
                    throw SafetyViolation(message: "node \(id) applies \(e.index) after \(sm.appliedIndex)")
                }
                sm.apply(e)
                try checker?.observeApply(node: id, entry: e, state: sm)
            }
            readStates += rd.readStates
            r.advance(rd)
            if let every = compactEvery, sm.appliedIndex >= r.firstIndex + every {
                do {
                    try r.compact(upTo: sm.appliedIndex, snapshotData: sm.snapshotData())
                } catch is InjectedCrash {
                    crash(); return
                }
            }
        }
        if let r = raft { try checker?.observeNode(id, r) }
    }

    /// Compacts the log up to the applied index (scenario command).
    func compactNow() throws {
        guard let r = raft else { return }
        try r.compact(upTo: sm.appliedIndex, snapshotData: sm.snapshotData())
    }
}
