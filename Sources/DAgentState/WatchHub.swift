// Server-side bookkeeping of watches: which watcher wants which prefix from which revision.
// Pure: the server owns the connections and pushes what `collect(from:)` returns.
// Watchers are local to one replica and are not part of the replicated state or snapshots.

/// Tracks registered watchers and, after each apply, works out the events due to each.
///
/// ```swift
/// let id = hub.add(prefix: p, fromRevision: machine.revision + 1)   // or a resume point
/// ... machine.apply(entry: e) ...
/// for delivery in hub.collect(from: machine) { push(delivery) }
/// ```
/// Each event reaches each matching watcher exactly once, in revision order, and never
/// split across deliveries mid-revision. A watcher never gets a dump of current state: a
/// client that needs one reads a `range` first and watches from its revision + 1. A
/// watcher whose next revision has been compacted gets one `.compacted` delivery and is
/// removed (re-read, then watch again).
public struct WatchHub: Sendable {
    /// One registered watch.
    public struct Watcher: Equatable, Sendable {
        /// Id handed out by `add`.
        public var id: UInt64
        /// Key prefix watched (empty: every key).
        public var prefix: [UInt8]
        /// The first revision not yet delivered.
        public var nextRevision: Int64
    }

    /// What to push to one watcher.
    public enum Delivery: Equatable, Sendable {
        /// New events, in order; `nextRevision` is the watcher's resume point after them.
        case events(watchID: UInt64, events: [KVEvent], nextRevision: Int64)
        /// The watcher fell behind the compaction point and has been removed.
        case compacted(watchID: UInt64, compactRevision: Int64)
    }

    private var watchers: [UInt64: Watcher] = [:]
    private var nextID: UInt64 = 1
    /// Most events in one delivery (0: no limit); a revision is never split, so a delivery
    /// may exceed it to finish one. With a limit, call `collect` until it returns nothing.
    public let maxEventsPerDelivery: Int

    /// An empty hub.
    public init(maxEventsPerDelivery: Int = 0) {
        self.maxEventsPerDelivery = maxEventsPerDelivery
    }

    /// Registers a watch on `prefix` starting at `fromRevision` (use `machine.revision + 1`
    /// for "from now on", or a client's last seen revision + 1 to resume). Returns its id.
    /// Call `collect(from:)` afterwards to deliver any backlog (or `.compacted`).
    public mutating func add(prefix: [UInt8], fromRevision: Int64) -> UInt64 {
        let id = nextID
        nextID += 1
        watchers[id] = Watcher(id: id, prefix: prefix, nextRevision: max(fromRevision, 1))
        return id
    }

    /// Cancels a watch; returns false if it was not registered.
    @discardableResult
    public mutating func remove(_ id: UInt64) -> Bool { watchers.removeValue(forKey: id) != nil }

    /// The watcher `id`, if registered.
    public func watcher(_ id: UInt64) -> Watcher? { watchers[id] }

    /// Every registered watcher, by id.
    public var all: [Watcher] { watchers.values.sorted { $0.id < $1.id } }

    /// Number of registered watchers.
    public var count: Int { watchers.count }

    /// Events due to each watcher since its last delivery, ordered by watcher id, and
    /// advances every watcher past them. Watchers with nothing due are left out.
    public mutating func collect(from machine: KVStateMachine) -> [Delivery] {
        var out: [Delivery] = []
        for id in watchers.keys.sorted() {
            guard var w = watchers[id], w.nextRevision <= machine.revision else { continue }
            switch machine.events(prefix: w.prefix, fromRevision: w.nextRevision, limit: maxEventsPerDelivery) {
            case let .compacted(compactRevision):
                watchers.removeValue(forKey: id)
                out.append(.compacted(watchID: id, compactRevision: compactRevision))
            case let .events(events, next):
                w.nextRevision = next
                watchers[id] = w
                if !events.isEmpty { out.append(.events(watchID: id, events: events, nextRevision: next)) }
            }
        }
        return out
    }
}
