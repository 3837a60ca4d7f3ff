// Leases: TTLs on replicated time. A lease ends when a command carrying `now` (tick, grant,
// keep-alive) moves the replicated clock to or past its expiry, or when it is revoked; its
// keys are then deleted (with delete events), which is also how locks vanish.

/// A granted lease.
public struct KVLease: Equatable, Sendable {
    /// The lease id (never 0).
    public var id: UInt64
    /// Time to live in milliseconds, renewed by each keep-alive.
    public var ttlMs: UInt64
    /// Replicated time (ms) at which the lease ends unless kept alive.
    public var expiresAtMs: UInt64

    /// Creates a lease description.
    public init(id: UInt64, ttlMs: UInt64, expiresAtMs: UInt64) {
        self.id = id
        self.ttlMs = ttlMs
        self.expiresAtMs = expiresAtMs
    }
}

/// The live leases and the keys attached to each.
public struct KVLeaseTable: Sendable {
    private var leases: [UInt64: KVLease] = [:]
    private var keysByLease: [UInt64: Set<[UInt8]>] = [:]
    /// The id the next `leaseGrant` with id 0 tries first.
    public package(set) var nextID: UInt64 = 1

    package init() {}

    /// Number of live leases.
    public var count: Int { leases.count }

    /// The lease `id`, if live.
    public func lease(_ id: UInt64) -> KVLease? { leases[id] }

    /// Keys attached to lease `id`, in byte order.
    public func keys(of id: UInt64) -> [[UInt8]] {
        (keysByLease[id] ?? []).sorted { $0.lexicographicallyPrecedes($1) }
    }

    /// Every live lease ordered by id (what a snapshot writes).
    public var all: [KVLease] { leases.values.sorted { $0.id < $1.id } }

    /// Leases due at `now`, ordered by (expiry, id): the order they are expired in.
    package func due(at now: UInt64) -> [KVLease] {
        leases.values.filter { $0.expiresAtMs <= now }.sorted {
            ($0.expiresAtMs, $0.id) < ($1.expiresAtMs, $1.id)
        }
    }

    /// A free id for an automatic grant, or nil when ids are exhausted.
    package func freeID() -> UInt64? {
        var candidate = max(nextID, 1)
        while leases[candidate] != nil {
            if candidate == .max { return nil }
            candidate += 1
        }
        return candidate
    }

    package mutating func insert(_ lease: KVLease) {
        leases[lease.id] = lease
        if lease.id >= nextID { nextID = lease.id == .max ? .max : lease.id + 1 }
    }

    package mutating func update(_ lease: KVLease) { leases[lease.id] = lease }

    package mutating func remove(_ id: UInt64) {
        leases.removeValue(forKey: id)
        keysByLease.removeValue(forKey: id)
    }

    package mutating func attach(_ key: [UInt8], to id: UInt64) { keysByLease[id, default: []].insert(key) }

    package mutating func detach(_ key: [UInt8], from id: UInt64) {
        keysByLease[id]?.remove(key)
        if keysByLease[id]?.isEmpty == true { keysByLease.removeValue(forKey: id) }
    }
}

extension KVStateMachine {
    package mutating func applyLeaseGrant(id: UInt64, ttlMs: UInt64, now: UInt64) -> StateResult {
        guard ttlMs > 0 else { return .failed(.invalidArgument("lease ttlMs must be > 0")) }
        // Time moves first (it came in with the command), so a due lease with the same id
        // has ended before the id is checked.
        advanceClock(to: now)
        let chosen: UInt64
        if id != 0 {
            guard leases.lease(id) == nil else { return .failed(.leaseExists(id: id)) }
            chosen = id
        } else if let free = leases.freeID() {
            chosen = free
        } else {
            return .failed(.invalidArgument("no free lease id left"))
        }
        let lease = KVLease(id: chosen, ttlMs: ttlMs, expiresAtMs: clockMs.addingSaturating(ttlMs))
        leases.insert(lease)
        return .ok(.lease(lease, revision: store.revision))
    }

    package mutating func applyLeaseKeepAlive(id: UInt64, now: UInt64) -> StateResult {
        advanceClock(to: now)
        guard var lease = leases.lease(id) else { return .failed(.leaseNotFound(id: id)) }
        lease.expiresAtMs = max(lease.expiresAtMs, clockMs.addingSaturating(lease.ttlMs))
        leases.update(lease)
        return .ok(.lease(lease, revision: store.revision))
    }

    package mutating func applyLeaseRevoke(id: UInt64) -> StateResult {
        guard leases.lease(id) != nil else { return .failed(.leaseNotFound(id: id)) }
        let deleted = endLease(id)
        return .ok(.leaseRevoked(id: id, deletedKeys: deleted, revision: store.revision))
    }

    package mutating func applyTick(now: UInt64) -> StateResult {
        let expired = advanceClock(to: now)
        return .ok(.ticked(nowMs: clockMs, expiredLeases: expired, revision: store.revision))
    }

    /// Moves the replicated clock forward (never back) and ends every lease now due,
    /// each in its own revision, in (expiry, id) order. Returns the expired ids.
    @discardableResult
    package mutating func advanceClock(to now: UInt64) -> [UInt64] {
        if now > clockMs { clockMs = now }
        let due = leases.due(at: clockMs)
        for lease in due { endLease(lease.id) }
        return due.map(\.id)
    }

    /// Removes lease `id` and deletes its keys in one revision (none if it had no keys).
    @discardableResult
    package mutating func endLease(_ id: UInt64) -> [[UInt8]] {
        let keys = leases.keys(of: id)
        leases.remove(id)
        guard !keys.isEmpty else { return [] }
        var batch = WriteBatch(revision: store.revision + 1)
        for key in keys { deleteKey(key, in: &batch) }
        commit(batch)
        return keys
    }
}

extension UInt64 {
    /// `self + other`, clamped at `UInt64.max` instead of trapping.
    package func addingSaturating(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}
