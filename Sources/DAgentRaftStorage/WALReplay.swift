import DAgentRaft

/// Rebuilds the log from WAL records (in order), before a snapshot file is chosen.
///
/// Entry records have conflict semantics (an entry replaces everything at or after its
/// index). Entries at or below `base` are unknown: compacted before the oldest remaining
/// segment, replaced by an installed snapshot, or in segments removed after a snapshot.
/// `.compacted` markers do not drop entries here, so recovery can still fall back to an
/// older snapshot file; `DiskStorage` trims the log to the snapshot it actually uses.
package struct WALReplay {
    package var hardState = HardState()
    /// Entries at or below this index are unknown.
    private(set) var base: UInt64 = 0
    /// Term of the entry at `base`, if known.
    private(set) var baseTerm: UInt64? = 0
    /// Contiguous entries `base + 1 ... lastIndex`.
    private(set) var entries: [Entry] = []
    /// The newest snapshot marker of any kind: snapshot files above it were never acknowledged.
    private(set) var newestMarker: (index: UInt64, term: UInt64) = (0, 0)
    private var sawBase = false

    package var lastIndex: UInt64 { base + UInt64(entries.count) }

    /// Term at `index` if it is known from the log (`base ... lastIndex`).
    package func term(at index: UInt64) -> UInt64? {
        if index == base { return baseTerm }
        if index > base && index <= lastIndex { return entries[Int(index - base - 1)].term }
        return nil
    }

    package mutating func apply(_ r: WALRecord) throws {
        switch r {
        case .metadata:
            break
        case let .hardState(hs):
            hardState = hs
        case let .snapshot(kind, index, term):
            if index >= newestMarker.index { newestMarker = (index, term) }
            if kind == .installed || (kind == .base && !sawBase) {
                base = index
                baseTerm = term
                entries = []
            }
            if kind == .base { sawBase = true }
        case let .entry(e):
            guard e.index > 0 else { throw DurableStorageError.inconsistent("WAL holds an entry with index 0") }
            // Raft appends at lastIndex + 1, so the largest index leaves no room: only damage writes it.
            guard e.index < .max else { throw DurableStorageError.inconsistent("WAL holds an entry with index \(e.index) (no room for a next entry)") }
            if e.index > base && e.index - base <= UInt64(entries.count) + 1 {
                entries.removeSubrange(Int(e.index - base - 1)...)
                entries.append(e)
            } else {
                // A gap (older segments were removed after a snapshot) or a rewrite below
                // the base: everything before this entry is unknown.
                base = e.index - 1
                baseTerm = nil
                entries = [e]
            }
        }
    }
}
