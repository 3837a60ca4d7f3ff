import Synchronization

/// In-memory `RaftStorage`. Used by tests and simulations as the "disk": everything
/// written to it survives a simulated crash of the `RaftNode` that uses it.
/// Thread-safe (guarded by a lock) so it can be inspected from another thread.
public final class MemoryStorage: RaftStorage, @unchecked Sendable {
    private let lock = Mutex(())
    private var hs = HardState()
    private var snap = Snapshot()
    /// `ents[0]` is a dummy entry at the snapshot index carrying the snapshot term.
    private var ents: [Entry] = [Entry()]

    public init() {}

    /// Creates storage bootstrapped for a founding member of a cluster of `voters`.
    public convenience init(bootstrapVoters voters: [NodeID]) throws {
        self.init()
        try bootstrap(voters: voters)
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        try lock.withLock { _ in try body() }
    }

    private var offset: UInt64 { ents[0].index }
    private var lastIdx: UInt64 { ents[0].index + UInt64(ents.count) - 1 }

    public func hardState() throws -> HardState { locked { hs } }

    public func entries(from lo: UInt64, to hi: UInt64, maxBytes: UInt64) throws -> [Entry] {
        try locked {
            if lo <= offset { throw StorageError.compacted }
            if hi > lastIdx + 1 { throw StorageError.unavailable }
            if lo >= hi { return [] }
            let slice = ents[Int(lo - offset)..<Int(hi - offset)]
            var out: [Entry] = []
            var size: UInt64 = 0
            for e in slice {
                size += e.byteSize
                if !out.isEmpty && size > maxBytes { break }
                out.append(e)
            }
            return out
        }
    }

    public func term(at index: UInt64) throws -> UInt64 {
        try locked {
            if index < offset { throw StorageError.compacted }
            if index > lastIdx { throw StorageError.unavailable }
            return ents[Int(index - offset)].term
        }
    }

    public func firstIndex() throws -> UInt64 { locked { offset + 1 } }
    public func lastIndex() throws -> UInt64 { locked { lastIdx } }
    public func snapshot() throws -> Snapshot { locked { snap } }

    public func append(_ entries: [Entry]) throws {
        guard let first = entries.first else { return }
        try locked {
            // Skip entries already covered by the snapshot.
            let firstNew = offset + 1
            if first.index + UInt64(entries.count) - 1 < firstNew { return }
            var toAdd = entries[...]
            if first.index < firstNew { toAdd = entries[Int(firstNew - first.index)...] }
            guard let start = toAdd.first?.index else { return }
            if start > lastIdx + 1 {
                throw StorageError.unavailable // gap: caller bug
            }
            let keep = Int(start - offset)
            ents.removeSubrange(keep...)
            ents.append(contentsOf: toAdd)
        }
    }

    public func setHardState(_ state: HardState) throws { locked { hs = state } }

    public func applySnapshot(_ snapshot: Snapshot) throws {
        try locked {
            if snapshot.metadata.index <= snap.metadata.index && !snap.isEmpty {
                throw StorageError.snapshotOutOfDate
            }
            snap = snapshot
            ents = [Entry(term: snapshot.metadata.term, index: snapshot.metadata.index)]
        }
    }

    public func compact(with snapshot: Snapshot) throws {
        try locked {
            let idx = snapshot.metadata.index
            if idx <= offset { throw StorageError.snapshotOutOfDate }
            if idx > lastIdx { throw StorageError.unavailable }
            let t = ents[Int(idx - offset)].term
            precondition(t == snapshot.metadata.term, "snapshot term does not match log")
            ents.removeSubrange(0..<Int(idx - offset))
            ents[0] = Entry(term: t, index: idx)
            snap = snapshot
        }
    }

    /// All stored entries after the snapshot (test helper).
    public func allEntries() -> [Entry] { locked { Array(ents.dropFirst()) } }
}
