/// Errors a `RaftStorage` reports for reads outside its range. Any other error thrown
/// by a storage read is treated as fatal by the core (like a failed disk).
public enum StorageError: Error, Sendable, Equatable {
    /// The requested index is at or below the last snapshot (compacted away).
    case compacted
    /// The requested index is beyond the last stored entry.
    case unavailable
    /// A snapshot cannot be produced right now; the leader retries later.
    case snapshotTemporarilyUnavailable
    /// The snapshot being applied is older than the stored one.
    case snapshotOutOfDate
}

/// Durable Raft state: the log, the latest snapshot and the hard state.
///
/// The core only *reads* through this protocol (plus `compact(with:)`, called from
/// `RaftNode.compact(upTo:snapshotData:)`). The application writes to it while handling
/// a `Ready` (see `save(_:)`) — `MemoryStorage` is the reference implementation and a
/// fsync'd WAL is expected to implement the same contract.
///
/// Index conventions: `firstIndex()` is the first entry still stored (snapshot index + 1);
/// `term(at: firstIndex() - 1)` must return the snapshot's term; `lastIndex()` is the last
/// stored entry (equals the snapshot index when there are no entries after it).
public protocol RaftStorage: AnyObject {
    /// The persisted hard state (all zero for a node that never ran).
    func hardState() throws -> HardState
    /// Entries in `[lo, hi)`, truncated after the first entry so that their total size
    /// stays within `maxBytes` (at least one entry is returned when `lo < hi`).
    /// Throws `.compacted` if `lo <= snapshot index`, `.unavailable` if `hi > lastIndex + 1`.
    func entries(from lo: UInt64, to hi: UInt64, maxBytes: UInt64) throws -> [Entry]
    /// Term of the entry at `index`; valid for `firstIndex() - 1 ... lastIndex()`.
    func term(at index: UInt64) throws -> UInt64
    /// Index of the first available entry.
    func firstIndex() throws -> UInt64
    /// Index of the last available entry.
    func lastIndex() throws -> UInt64
    /// The latest snapshot (index 0 if none).
    func snapshot() throws -> Snapshot

    /// Durably appends entries; entries at or after `entries[0].index` that are already
    /// stored are replaced (conflict truncation).
    func append(_ entries: [Entry]) throws
    /// Durably records the hard state.
    func setHardState(_ state: HardState) throws
    /// Durably replaces the whole log with `snapshot` (received from a leader).
    func applySnapshot(_ snapshot: Snapshot) throws
    /// Durably records `snapshot` (taken locally) and discards entries up to its index.
    func compact(with snapshot: Snapshot) throws
    /// Persists everything in `ready` that must be durable before its messages are sent:
    /// snapshot, then entries, then hard state. A WAL should make this one fsync.
    func save(_ ready: Ready) throws
}

extension RaftStorage {
    public func save(_ ready: Ready) throws {
        if let snap = ready.snapshot { try applySnapshot(snap) }
        if !ready.entries.isEmpty { try append(ready.entries) }
        if let hs = ready.hardState { try setHardState(hs) }
    }

    /// Writes the initial state of a brand-new cluster member whose cluster is `voters`:
    /// one `addNode` conf-change entry per voter at term 1 (indexes 1...n), all committed.
    /// Every founding member must be bootstrapped with the same voter list; nodes that
    /// join later start with empty storage instead. Throws if the storage is not empty.
    public func bootstrap(voters: [NodeID]) throws {
        guard try lastIndex() == 0, try hardState().isEmpty else {
            throw RaftError.corruptState("bootstrap on non-empty storage")
        }
        let ids = Membership(voters: voters).voters
        guard !ids.isEmpty else { throw RaftError.invalidConfig("bootstrap needs at least one voter") }
        var ents: [Entry] = []
        for (i, id) in ids.enumerated() {
            let cc = ConfChange(type: .addNode, nodeID: id)
            ents.append(Entry(term: 1, index: UInt64(i + 1), type: .confChange, data: cc.serialize()))
        }
        try append(ents)
        try setHardState(HardState(term: 1, vote: 0, commit: UInt64(ids.count)))
    }
}
