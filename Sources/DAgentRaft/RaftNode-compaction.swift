/// Log compaction: snapshots taken by the application of its applied state.
extension RaftNode {
    /// Takes a snapshot of the applied state at `index` (<= applied index) with the given
    /// application data, stores it through `RaftStorage.compact(with:)` (which discards
    /// the log up to `index`) and returns it.
    @discardableResult
    public func compact(upTo index: UInt64, snapshotData: [UInt8]) throws -> Snapshot {
        guard index <= log.applied else {
            throw RaftError.compactBeyondApplied(index: index, applied: log.applied)
        }
        guard index >= log.firstIndex, let t = log.term(index) else {
            throw RaftError.alreadyCompacted(index: index)
        }
        let snap = Snapshot(metadata: SnapshotMetadata(index: index, term: t, membership: membership(at: index)),
                            data: snapshotData)
        try log.storage.compact(with: snap)
        // Forget history that no snapshot can refer to any more.
        if let keep = membershipHistory.lastIndex(where: { $0.index <= index }), keep > 0 {
            membershipHistory.removeFirst(keep)
        }
        return snap
    }

    /// Membership in effect at `index` (which must be <= commit).
    package func membership(at index: UInt64) -> Membership {
        membershipHistory.last(where: { $0.index <= index })?.membership ?? membershipHistory[0].membership
    }
}
