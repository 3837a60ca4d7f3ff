// Retained change events for watches: a bounded queue of events in revision order.
//
// Eviction removes whole revisions only, so a revision is either fully present or below the
// compaction point; a watch that resumes inside the retained window sees every event of
// every revision exactly once.

/// What changed.
public enum KVEventKind: UInt8, Equatable, Sendable {
    /// A key was created or overwritten.
    case put = 1
    /// A key was deleted (explicitly, by range, or because its lease ended).
    case delete = 2
}

/// One change to one key, as delivered to watchers.
public struct KVEvent: Equatable, Sendable {
    /// Put or delete.
    public var kind: KVEventKind
    /// The key that changed.
    public var key: [UInt8]
    /// The new value (empty for a delete).
    public var value: [UInt8]
    /// The revision of the write; every event of one transaction shares it.
    public var revision: Int64
    /// The key's create revision after a put (0 for a delete).
    public var createRevision: Int64
    /// The key's version after a put (0 for a delete).
    public var version: Int64
    /// The lease the key is attached to after a put (nil for a delete).
    public var lease: UInt64?
    /// The value before the change, when the key existed.
    public var prevValue: [UInt8]?

    /// Creates an event.
    public init(kind: KVEventKind, key: [UInt8], value: [UInt8], revision: Int64,
                createRevision: Int64, version: Int64, lease: UInt64?, prevValue: [UInt8]?) {
        self.kind = kind
        self.key = key
        self.value = value
        self.revision = revision
        self.createRevision = createRevision
        self.version = version
        self.lease = lease
        self.prevValue = prevValue
    }
}

/// The answer to a history query.
public enum KVWatchResult: Equatable, Sendable {
    /// The matching events from the requested revision on, in order, and the revision to
    /// ask from next time (one past the last revision covered).
    case events([KVEvent], nextRevision: Int64)
    /// The requested revision is at or below `compactRevision`: events were dropped and
    /// the watcher must re-read state and resume from `compactRevision + 1` or later.
    case compacted(compactRevision: Int64)
}

/// Bounded, ordered history of change events (a ring buffer with a compaction point).
public struct KVHistory: Sendable {
    /// Events at or below this revision may be missing; queries from there fail with
    /// `.compacted`. 0 while nothing was ever evicted.
    public private(set) var compactRevision: Int64 = 0
    /// Most events retained (see `KVStateConfig.historyRetention`).
    public let retention: Int
    private var storage: [KVEvent] = []
    private var head = 0

    package init(retention: Int) { self.retention = max(0, retention) }

    /// Number of retained events.
    public var count: Int { storage.count - head }

    /// Every retained event, oldest first (what a snapshot writes).
    public var retained: ArraySlice<KVEvent> { storage[head...] }

    /// Events for keys starting with `prefix` with revision ≥ `fromRevision`, in order.
    ///
    /// `upTo` is the current store revision (the answer's `nextRevision` is one past it when
    /// everything was returned). With `limit` > 0 the answer stops at the first revision
    /// boundary after `limit` events, so a revision is never split across answers.
    public func events(prefix: [UInt8], fromRevision: Int64, upTo current: Int64,
                       limit: Int = 0) -> KVWatchResult {
        let from = max(fromRevision, 1)
        if from <= compactRevision { return .compacted(compactRevision: compactRevision) }
        var out: [KVEvent] = []
        var i = firstIndex(atOrAfter: from)
        while i < storage.count {
            let e = storage[i]
            if limit > 0, out.count >= limit, let last = out.last, e.revision != last.revision {
                return .events(out, nextRevision: last.revision + 1)
            }
            if e.key.starts(with: prefix) { out.append(e) }
            i += 1
        }
        return .events(out, nextRevision: max(from, current + 1))
    }

    /// Appends the events of one revision and evicts the oldest revisions beyond retention.
    package mutating func append(_ events: [KVEvent]) {
        storage.append(contentsOf: events)
        evict()
    }

    /// Loads retained events and the compaction point from a snapshot.
    /// Bytes an event takes in a snapshot, roughly (key, value, previous value and fixed fields).
    public static func snapshotBytes(_ e: KVEvent) -> Int { e.key.count + e.value.count + (e.prevValue?.count ?? 0) + 48 }

    /// What a snapshot carries under a budget of `maxBytes`: the newest whole revisions
    /// whose events fit, and the compaction point below them (a revision is either carried
    /// completely or at or below the point, so a watch resumed from a restored replica gets
    /// every event of a revision or `.compacted`).
    public func snapshotWindow(maxBytes: Int) -> (events: ArraySlice<KVEvent>, compactRevision: Int64) {
        var start = storage.count
        var bytes = 0
        while start > head {
            // The revision ending at `start - 1`, taken whole or not at all.
            let rev = storage[start - 1].revision
            var first = start - 1
            var revBytes = Self.snapshotBytes(storage[first])
            while first > head, storage[first - 1].revision == rev {
                first -= 1
                revBytes += Self.snapshotBytes(storage[first])
            }
            guard bytes + revBytes <= maxBytes else { break }
            bytes += revBytes
            start = first
        }
        if start == head { return (storage[head...], compactRevision) }
        return (storage[start...], storage[start - 1].revision)
    }

    package mutating func load(events: [KVEvent], compactRevision: Int64) {
        storage = events
        head = 0
        self.compactRevision = compactRevision
        evict()
    }

    private mutating func evict() {
        guard count > retention else { return }
        while count > retention {
            compactRevision = storage[head].revision
            // Drop the whole revision so none is left half-present.
            while head < storage.count, storage[head].revision == compactRevision { head += 1 }
        }
        if head >= 4096, head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
    }

    /// Index of the first retained event with revision ≥ `rev` (binary search).
    private func firstIndex(atOrAfter rev: Int64) -> Int {
        var lo = head, hi = storage.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if storage[mid].revision < rev { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}
