/// Flow control for one follower in replicate state: the last index of each append
/// message that is in flight (sent but not yet acknowledged), oldest first.
package struct Inflights: Equatable {
    package let capacity: Int
    private(set) var indexes: [UInt64] = []

    package init(capacity: Int) { self.capacity = capacity }

    package var count: Int { indexes.count }
    package var isFull: Bool { indexes.count >= capacity }

    package mutating func add(_ lastIndex: UInt64) {
        precondition(!isFull, "DAgentRaft: inflights overflow")
        indexes.append(lastIndex)
    }

    /// Frees every in-flight message whose last index is `<= index` (acknowledged).
    package mutating func freeLE(_ index: UInt64) {
        var n = 0
        while n < indexes.count && indexes[n] <= index { n += 1 }
        if n > 0 { indexes.removeFirst(n) }
    }

    /// Frees the oldest message (used when a heartbeat proves the follower is alive but
    /// the window is full, so replication cannot stall on lost messages).
    package mutating func freeFirstOne() {
        if !indexes.isEmpty { indexes.removeFirst() }
    }

    package mutating func reset() { indexes.removeAll(keepingCapacity: true) }
}
