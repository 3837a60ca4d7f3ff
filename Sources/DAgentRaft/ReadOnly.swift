/// Pending ReadIndex requests on the leader, waiting for a heartbeat round to confirm
/// leadership. Requests are keyed by their context and answered in FIFO order.
package struct ReadOnly {
    package struct Status {
        var request: Message
        var index: UInt64
        var acks: Set<NodeID>
    }

    private(set) var pending: [[UInt8]: Status] = [:]
    private(set) var queue: [[UInt8]] = []

    package var lastPendingContext: [UInt8]? { queue.last }

    package mutating func addRequest(index: UInt64, request m: Message) {
        if pending[m.context] != nil { return }
        pending[m.context] = Status(request: m, index: index, acks: [])
        queue.append(m.context)
    }

    /// Records a heartbeat ack for `context`; returns the acks so far, or nil if unknown.
    package mutating func recvAck(from id: NodeID, context: [UInt8]) -> Set<NodeID>? {
        guard pending[context] != nil else { return nil }
        pending[context]!.acks.insert(id)
        return pending[context]!.acks
    }

    /// Removes and returns every request up to and including `context`
    /// (a quorum ack for a later request also confirms earlier ones).
    package mutating func advance(through context: [UInt8]) -> [Status] {
        guard let pos = queue.firstIndex(of: context) else { return [] }
        var out: [Status] = []
        for ctx in queue[...pos] {
            if let s = pending.removeValue(forKey: ctx) { out.append(s) }
        }
        queue.removeFirst(pos + 1)
        return out
    }

    package mutating func reset() {
        pending = [:]
        queue = []
    }
}
