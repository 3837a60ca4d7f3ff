/// Fatal storage failure: the core cannot continue safely (like etcd/raft, it traps).
package func storageFailure(_ error: Error) -> Never {
    fatalError("DAgentRaft: storage read failed: \(error)")
}

/// The Raft log as seen by the core: persisted entries (read through `RaftStorage`)
/// followed by the unstable tail, plus the commit and applied indexes.
package struct RaftLog {
    package let storage: any RaftStorage
    package var unstable: Unstable
    /// Highest index known to be committed.
    package var committed: UInt64
    /// Highest index handed to the application and acknowledged via `advance`.
    package var applied: UInt64
    package let maxApplyBytes: UInt64

    package init(storage: any RaftStorage, maxApplyBytes: UInt64) throws {
        self.storage = storage
        let first = try storage.firstIndex()
        let last = try storage.lastIndex()
        unstable = Unstable(offset: last + 1)
        committed = first - 1
        applied = first - 1
        self.maxApplyBytes = maxApplyBytes
    }

    package var firstIndex: UInt64 {
        if let i = unstable.maybeFirstIndex { return i }
        do { return try storage.firstIndex() } catch { storageFailure(error) }
    }

    package var lastIndex: UInt64 {
        if let i = unstable.maybeLastIndex { return i }
        do { return try storage.lastIndex() } catch { storageFailure(error) }
    }

    /// Term of the entry at `i`, or nil if it is compacted or beyond the last index.
    package func term(_ i: UInt64) -> UInt64? {
        let dummy = firstIndex - 1
        if i < dummy || i > lastIndex { return nil }
        if let t = unstable.maybeTerm(i) { return t }
        do {
            return try storage.term(at: i)
        } catch StorageError.compacted, StorageError.unavailable {
            return nil
        } catch {
            storageFailure(error)
        }
    }

    package var lastTerm: UInt64 {
        guard let t = term(lastIndex) else { fatalError("DAgentRaft: no term for last index \(lastIndex)") }
        return t
    }

    package func matchTerm(_ i: UInt64, _ t: UInt64) -> Bool { term(i) == t }

    /// Raft §5.4.1: a candidate's log (lastIndex, lastTerm) is at least as up to date as ours.
    package func isUpToDate(lastIndex li: UInt64, term t: UInt64) -> Bool {
        let myTerm = lastTerm
        return t > myTerm || (t == myTerm && li >= lastIndex)
    }

    /// Index of the first entry in `ents` that is new or conflicts with the log, or 0.
    package func findConflict(_ ents: [Entry]) -> UInt64 {
        for e in ents where !matchTerm(e.index, e.term) {
            return e.index
        }
        return 0
    }

    /// The largest index `<= index` whose term is `<= term`, with that term (0 if unknown).
    /// Used for fast log-conflict backtracking.
    package func findConflictByTerm(index: UInt64, term: UInt64) -> (index: UInt64, term: UInt64) {
        var i = index
        while true {
            guard let t = self.term(i) else { return (i, 0) }
            if t <= term { return (i, t) }
            if i == 0 { return (0, 0) }
            i -= 1
        }
    }

    /// Appends `ents` after (`index`, `logTerm`) if that entry matches. Returns the index
    /// of the last new entry, or nil on mismatch. Does not move the commit index.
    package mutating func maybeAppend(index: UInt64, logTerm: UInt64, entries ents: [Entry]) -> UInt64? {
        guard matchTerm(index, logTerm) else { return nil }
        let lastNew = index + UInt64(ents.count)
        let ci = findConflict(ents)
        if ci != 0 {
            precondition(ci > committed, "DAgentRaft: entry \(ci) conflicts with committed entry (commit \(committed))")
            append(Array(ents[Int(ci - (index + 1))...]))
        }
        return lastNew
    }

    @discardableResult
    package mutating func append(_ ents: [Entry]) -> UInt64 {
        guard let first = ents.first else { return lastIndex }
        precondition(first.index > committed, "DAgentRaft: append at \(first.index) would overwrite committed \(committed)")
        unstable.truncateAndAppend(ents)
        return lastIndex
    }

    /// Entries from `lo` to the end, limited by `maxBytes`; nil if `lo` is compacted.
    package func entries(from lo: UInt64, maxBytes: UInt64) -> [Entry]? {
        if lo > lastIndex { return [] }
        return slice(lo, lastIndex + 1, maxBytes: maxBytes)
    }

    /// Entries in `[lo, hi)` limited by `maxBytes` (at least one); nil if `lo` is compacted.
    package func slice(_ lo: UInt64, _ hi: UInt64, maxBytes: UInt64) -> [Entry]? {
        if lo < firstIndex { return nil }
        precondition(hi <= lastIndex + 1, "DAgentRaft: slice [\(lo),\(hi)) beyond last index \(lastIndex)")
        if lo >= hi { return [] }
        var result: [Entry] = []
        if lo < unstable.offset {
            let storedHi = min(hi, unstable.offset)
            do {
                result = try storage.entries(from: lo, to: storedHi, maxBytes: maxBytes)
            } catch StorageError.compacted {
                return nil
            } catch {
                storageFailure(error)
            }
            if UInt64(result.count) < storedHi - lo { return result } // size limit hit
        }
        if hi > unstable.offset {
            result.append(contentsOf: unstable.slice(max(lo, unstable.offset), hi))
        }
        return limitSize(result, maxBytes)
    }

    package var hasNextCommittedEntries: Bool {
        unstable.snapshot == nil && committed > max(applied, firstIndex - 1)
    }

    /// Committed entries not yet applied (none while a snapshot is pending).
    package func nextCommittedEntries() -> [Entry] {
        guard hasNextCommittedEntries else { return [] }
        let lo = max(applied + 1, firstIndex)
        guard let ents = slice(lo, committed + 1, maxBytes: maxApplyBytes) else {
            fatalError("DAgentRaft: committed entries at \(lo) are compacted but not applied")
        }
        return ents
    }

    package mutating func appliedTo(_ i: UInt64) {
        guard i > applied else { return }
        precondition(i <= committed, "DAgentRaft: applied \(i) beyond commit \(committed)")
        applied = i
    }

    package mutating func stableTo(index: UInt64, term: UInt64) { unstable.stableTo(index: index, term: term) }
    package mutating func stableSnapTo(_ i: UInt64) { unstable.stableSnapTo(i) }

    /// Replaces the log with an incoming snapshot.
    package mutating func restore(_ s: Snapshot) {
        committed = s.metadata.index
        unstable.restore(s)
    }

    /// The snapshot to send to a lagging follower, or nil if temporarily unavailable.
    package func snapshot() -> Snapshot? {
        if let s = unstable.snapshot { return s }
        do {
            return try storage.snapshot()
        } catch StorageError.snapshotTemporarilyUnavailable {
            return nil
        } catch {
            storageFailure(error)
        }
    }
}

/// Keeps a prefix of `ents` whose total size is within `maxBytes` (at least one entry).
package func limitSize(_ ents: [Entry], _ maxBytes: UInt64) -> [Entry] {
    guard !ents.isEmpty else { return ents }
    var size = ents[0].byteSize
    var n = 1
    while n < ents.count {
        size += ents[n].byteSize
        if size > maxBytes { break }
        n += 1
    }
    return n == ents.count ? ents : Array(ents[..<n])
}
