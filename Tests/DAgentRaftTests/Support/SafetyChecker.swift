import DAgentRaft
@testable import DAgentRaftStorage
import DAgentTestSupport

/// A Raft safety property was violated.
struct SafetyViolation: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Checks Raft's safety properties incrementally, across all nodes and all time:
/// election safety, log matching, leader completeness, state machine safety, and
/// monotonicity of persisted hard state. Every observation is O(batch) so it can run
/// after every single step.
final class SafetyChecker {
    private struct IndexTerm: Hashable { let index: UInt64; let term: UInt64 }
    private struct LoggedEntry: Equatable { let entry: Entry; let prevTerm: UInt64 }

    private var leaderOfTerm: [UInt64: NodeID] = [:]
    /// Every (index, term) ever persisted anywhere -> entry and the term before it.
    /// Uniqueness of both implies Log Matching by induction.
    private var logged: [IndexTerm: LoggedEntry] = [:]
    /// Known-committed entries in increasing index order (sparse after snapshots):
    /// index, entry term, and an upper bound of the term in which it was committed (the
    /// observer's term when it was first seen committed, made monotonic). Leader
    /// completeness: every leader of a term >= that bound must hold the entry.
    private var committed: [(index: UInt64, term: UInt64, commitTerm: UInt64)] = []
    private var committedByIndex: [UInt64: UInt64] = [:]
    /// What was applied at each index (first application wins) and the state after it.
    private var appliedEntry: [UInt64: Entry] = [:]
    private var stateHashAt: [UInt64: UInt64] = [:]
    /// Hard state each node acknowledged as durable, and the one being written.
    private var persistedHardState: [NodeID: HardState] = [:]
    private var pendingHardState: [NodeID: HardState] = [:]
    private(set) var appliedValues: Set<String> = []
    private(set) var maxTermSeen: UInt64 = 0
    /// Highest index applied anywhere (i.e. acknowledged to some client).
    private(set) var maxAppliedIndex: UInt64 = 0

    private func fail(_ msg: String) throws -> Never { throw SafetyViolation(message: msg) }

    private func checkHardState(node: NodeID, _ hs: HardState, what: String) throws {
        guard let old = persistedHardState[node] else { return }
        if hs.term < old.term { try fail("node \(node) \(what) term went back \(old.term) -> \(hs.term)") }
        if hs.commit < old.commit { try fail("node \(node) \(what) commit went back \(old.commit) -> \(hs.commit)") }
        if hs.term == old.term && old.vote != 0 && hs.vote != old.vote {
            try fail("node \(node) changed its vote in term \(hs.term): \(old.vote) -> \(hs.vote)")
        }
    }

    /// Called with a Ready before it is persisted by `node` (`observePersisted` follows
    /// once the write returned).
    func observePersist(node: NodeID, ready rd: Ready, storage: any RaftStorage) throws {
        if let hs = rd.hardState {
            try checkHardState(node: node, hs, what: "persisted")
            pendingHardState[node] = hs
        }
        guard let first = rd.entries.first else { return }
        var prevTerm: UInt64
        if let s = rd.snapshot, s.metadata.index == first.index - 1 {
            prevTerm = s.metadata.term
        } else {
            do { prevTerm = try storage.term(at: first.index - 1) } catch {
                try fail("node \(node) persists entry \(first.index) without its predecessor (\(error))")
            }
        }
        var expectedIndex = first.index
        for e in rd.entries {
            if e.index != expectedIndex { try fail("node \(node) persists non-contiguous entries") }
            if e.term < prevTerm { try fail("node \(node) log terms decrease at \(e.index)") }
            let key = IndexTerm(index: e.index, term: e.term)
            let value = LoggedEntry(entry: e, prevTerm: prevTerm)
            if let old = logged[key] {
                if old != value {
                    try fail("log matching violated at index \(e.index) term \(e.term) on node \(node): " +
                             "\(old) vs \(value)")
                }
            } else {
                logged[key] = value
            }
            prevTerm = e.term
            expectedIndex += 1
        }
    }

    /// The write announced by `observePersist` returned: its hard state is durable.
    func observePersisted(node: NodeID) {
        if let hs = pendingHardState.removeValue(forKey: node) { persistedHardState[node] = hs }
    }

    /// `node` restarted from storage holding `hs` (an interrupted write may or may not
    /// have reached the disk, but nothing acknowledged may be missing).
    func observeRestart(node: NodeID, hardState hs: HardState) throws {
        try checkHardState(node: node, hs, what: "recovered")
        persistedHardState[node] = hs
        pendingHardState[node] = nil
    }

    func observeApply(node: NodeID, entry e: Entry, state: TestStateMachine) throws {
        if let old = appliedEntry[e.index] {
            if old != e {
                try fail("state machine safety violated at index \(e.index): node \(node) applied \(e), another node applied \(old)")
            }
        } else {
            appliedEntry[e.index] = e
        }
        try checkStateHash(node: node, index: e.index, hash: state.hash)
        maxAppliedIndex = max(maxAppliedIndex, e.index)
        if e.type == .normal { appliedValues.insert(String(decoding: e.data, as: UTF8.self)) }
    }

    func observeSnapshotApplied(node: NodeID, snapshot: Snapshot, state: TestStateMachine) throws {
        try checkStateHash(node: node, index: snapshot.metadata.index, hash: state.hash)
    }

    private func checkStateHash(node: NodeID, index: UInt64, hash: UInt64) throws {
        if let h = stateHashAt[index] {
            if h != hash { try fail("node \(node) has a different state after applying index \(index)") }
        } else {
            stateHashAt[index] = hash
        }
    }

    /// Called after every step of `node` (role/term/commit may have changed). `knownCommitted`
    /// overrides the node's commit index as the part known to be on a quorum (a pipelined
    /// leader counts its own entries before they are durable).
    func observeNode(_ id: NodeID, _ raft: RaftNode, knownCommitted: UInt64? = nil) throws {
        maxTermSeen = max(maxTermSeen, raft.term)
        // Record newly committed entries and check old ones did not change.
        let c = knownCommitted ?? raft.commitIndex
        let lastRecorded = committed.last?.index ?? 0
        if c > lastRecorded {
            var i = max(lastRecorded + 1, raft.firstIndex - 1, 1)
            let commitTerm = max(raft.term, committed.last?.commitTerm ?? 0)
            while i <= c {
                if let t = raft.logTerm(at: i) {
                    committed.append((i, t, commitTerm))
                    committedByIndex[i] = t
                }
                i += 1
            }
        } else if let t = committedByIndex[c], let mine = raft.logTerm(at: c), t != mine {
            try fail("node \(id) committed index \(c) with term \(mine) but term \(t) was committed before")
        }
        guard raft.role == .leader else { return }
        // Election safety: at most one leader per term.
        if let other = leaderOfTerm[raft.term], other != id {
            try fail("two leaders in term \(raft.term): \(other) and \(id)")
        }
        leaderOfTerm[raft.term] = id
        // Leader completeness: a leader holds every entry committed in a term <= its own
        // (checking the last such entry suffices, given log matching).
        var lo = 0
        var hi = committed.count
        while lo < hi { // first position whose commit term is > the leader's term
            let mid = (lo + hi) / 2
            if committed[mid].commitTerm <= raft.term { lo = mid + 1 } else { hi = mid }
        }
        if lo > 0 {
            let (ci, ct, _) = committed[lo - 1]
            if ci >= raft.firstIndex {
                guard let t = raft.logTerm(at: ci), t == ct else {
                    try fail("leader completeness violated: leader \(id) term \(raft.term) lacks committed entry \(ci)/\(ct)")
                }
            }
        }
    }

    var leaders: [UInt64: NodeID] { leaderOfTerm }
}
