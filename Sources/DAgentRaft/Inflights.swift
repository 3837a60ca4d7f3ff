/// Flow control for one follower in replicate state: the last index of each append
/// message that is in flight (sent but not yet acknowledged), oldest first.
struct Inflights: Equatable {
    let capacity: Int
    private(set) var indexes: [UInt64] = []

    init(capacity: Int) { self.capacity = capacity }

    var count: Int { indexes.count }
    var isFull: Bool { indexes.count >= capacity }

    mutating func add(_ lastIndex: UInt64) {
        precondition(!isFull, "DAgentRaft: inflights overflow")
        indexes.append(lastIndex)
    }

    /// Frees every in-flight message whose last index is `<= index` (acknowledged).
    mutating func freeLE(_ index: UInt64) {
        var n = 0
        while n < indexes.count && indexes[n] <= index { n += 1 }
        if n > 0 { indexes.removeFirst(n) }
    }

    /// Frees the oldest message (used when a heartbeat proves the follower is alive but
    /// the window is full, so replication cannot stall on lost messages).
    mutating func freeFirstOne() {
        if !indexes.isEmpty { indexes.removeFirst() }
    }

    mutating func reset() { indexes.removeAll(keepingCapacity: true) }
}
