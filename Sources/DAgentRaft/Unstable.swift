/// Log entries (and possibly an incoming snapshot) that exist in memory but have not yet
/// been acknowledged as persisted via `RaftNode.advance(_:)`.
/// `entries[i]` has index `offset + i`.
package struct Unstable {
    package var snapshot: Snapshot?
    package var entries: [Entry] = []
    package var offset: UInt64

    package init(offset: UInt64) { self.offset = offset }

    /// First log index if a pending snapshot defines it.
    package var maybeFirstIndex: UInt64? { snapshot.map { $0.metadata.index + 1 } }

    /// Last log index if the unstable part defines it.
    package var maybeLastIndex: UInt64? {
        if !entries.isEmpty { return offset + UInt64(entries.count) - 1 }
        return snapshot?.metadata.index
    }

    package func maybeTerm(_ i: UInt64) -> UInt64? {
        if i < offset {
            if let s = snapshot, s.metadata.index == i { return s.metadata.term }
            return nil
        }
        guard let last = maybeLastIndex, i <= last else { return nil }
        if entries.isEmpty { return nil }
        return entries[Int(i - offset)].term
    }

    /// Entries up to `i` (with term `t`) are now durable.
    package mutating func stableTo(index i: UInt64, term t: UInt64) {
        guard let gt = maybeTerm(i), gt == t, i >= offset else { return }
        entries.removeFirst(Int(i + 1 - offset))
        offset = i + 1
    }

    package mutating func stableSnapTo(_ i: UInt64) {
        if let s = snapshot, s.metadata.index == i { snapshot = nil }
    }

    package mutating func restore(_ s: Snapshot) {
        offset = s.metadata.index + 1
        entries = []
        snapshot = s
    }

    package mutating func truncateAndAppend(_ ents: [Entry]) {
        guard let after = ents.first?.index else { return }
        if after == offset + UInt64(entries.count) {
            entries.append(contentsOf: ents)
        } else if after <= offset {
            // Replace everything from `after` on (the storage copy will be
            // overwritten when these entries are persisted).
            offset = after
            entries = ents
        } else {
            entries = Array(entries[0..<Int(after - offset)]) + ents
        }
    }

    /// Entries in `[lo, hi)`; the range must lie within the unstable entries.
    package func slice(_ lo: UInt64, _ hi: UInt64) -> ArraySlice<Entry> {
        precondition(lo >= offset && hi <= offset + UInt64(entries.count) && lo <= hi,
                     "unstable slice [\(lo),\(hi)) out of bounds (offset \(offset), \(entries.count) entries)")
        return entries[Int(lo - offset)..<Int(hi - offset)]
    }
}
