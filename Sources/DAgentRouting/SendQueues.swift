import DAgentWire

/// Per-destination bounded queues that hold envelopes while their route is
/// not ready (the parent is not connected or this node is not registered yet).
///
/// Bounded twice: `send_queue_length` messages per destination and
/// `max_queued_destinations` destinations. A full queue is reported to the
/// caller, never silently dropped.
///
/// With `journaling` on (a `durable` node), every change is also recorded in
/// `journal` — each message gets a sequence number when it enters, and leaves
/// by that number — for the driver to write ahead (`QueueLogRecord`).
public struct SendQueues: Sendable {
    package struct Item: Sendable {
        var envelope: Dagent_Envelope
        var enqueuedNs: UInt64
        var seq: UInt64
    }

    /// One change of the queues, for a write-ahead log.
    public enum JournalEntry: Equatable, Sendable {
        case queued(seq: UInt64, envelope: Dagent_Envelope)
        case left(seq: UInt64)
    }

    /// Record changes in `journal` (off by default).
    public var journaling = false
    /// Sequence number of the next message queued (set above a replayed log's numbers).
    public var nextSeq: UInt64 = 1
    /// Changes since the last `takeJournal()`, in order.
    public private(set) var journal: [JournalEntry] = []

    public let perDestinationLimit: Int
    public let destinationLimit: Int
    private var queues: [String: [Item]] = [:]
    private var order: [String] = []   // destinations in first-enqueue order
    public private(set) var totalCount = 0

    public init(perDestinationLimit: Int, destinationLimit: Int) {
        self.perDestinationLimit = perDestinationLimit
        self.destinationLimit = destinationLimit
    }

    public enum EnqueueError: Error, Equatable {
        case destinationFull(limit: Int)
        case tooManyDestinations(limit: Int)
    }

    public var isEmpty: Bool { totalCount == 0 }

    public mutating func enqueue(_ envelope: Dagent_Envelope, nowNs: UInt64) throws(EnqueueError) {
        let dst = envelope.dst
        if let queue = queues[dst] {
            guard queue.count < perDestinationLimit else { throw .destinationFull(limit: perDestinationLimit) }
            queues[dst]!.append(Item(envelope: envelope, enqueuedNs: nowNs, seq: nextSeq))
        } else {
            guard queues.count < destinationLimit else { throw .tooManyDestinations(limit: destinationLimit) }
            queues[dst] = [Item(envelope: envelope, enqueuedNs: nowNs, seq: nextSeq)]
            order.append(dst)
        }
        if journaling { journal.append(.queued(seq: nextSeq, envelope: envelope)) }
        nextSeq &+= 1
        totalCount += 1
    }

    /// Takes the changes recorded since the last call.
    public mutating func takeJournal() -> [JournalEntry] {
        defer { journal.removeAll(keepingCapacity: true) }
        return journal
    }

    /// Takes everything, destinations in first-enqueue order, FIFO within each.
    public mutating func drainAll() -> [Dagent_Envelope] {
        var out: [Dagent_Envelope] = []
        out.reserveCapacity(totalCount)
        for dst in order {
            out.append(contentsOf: queues[dst]!.map(\.envelope))
            if journaling { journal.append(contentsOf: queues[dst]!.map { .left(seq: $0.seq) }) }
        }
        queues = [:]
        order = []
        totalCount = 0
        return out
    }

    /// Removes and returns envelopes queued for longer than `timeoutNs`.
    public mutating func expire(nowNs: UInt64, timeoutNs: UInt64) -> [Dagent_Envelope] {
        var expired: [Dagent_Envelope] = []
        for dst in order {
            let queue = queues[dst]!
            let keep = queue.filter { nowNs &- $0.enqueuedNs < timeoutNs }
            if keep.count != queue.count {
                let gone = queue.filter { nowNs &- $0.enqueuedNs >= timeoutNs }
                expired.append(contentsOf: gone.map(\.envelope))
                if journaling { journal.append(contentsOf: gone.map { .left(seq: $0.seq) }) }
                queues[dst] = keep
            }
        }
        if !expired.isEmpty {
            order.removeAll { queues[$0]!.isEmpty }
            queues = queues.filter { !$0.value.isEmpty }
            totalCount -= expired.count
        }
        return expired
    }

    /// Destination → queued count, for `dagent tree`.
    public func depths() -> [(String, Int)] { order.map { ($0, queues[$0]!.count) } }

    /// Every queued envelope without removing it (for the durable dump).
    public func snapshot() -> [Dagent_Envelope] { order.flatMap { queues[$0]!.map(\.envelope) } }
}
