// Locks built on leases: lock `name` is the key `lockPrefix + name` whose value is the owner
// and which is attached to the owner's lease. It vanishes (with a delete event) on unlock,
// on lease revoke, or when the lease expires on replicated time. Watch `lockPrefix + name`
// to learn of a release.

/// Who holds a lock.
public struct KVLockInfo: Equatable, Sendable {
    /// The lock name.
    public var name: String
    /// The owner that holds it.
    public var owner: String
    /// The lease that keeps it alive.
    public var lease: UInt64?
    /// Revision at which the owner took it; grows with each new holder, so it serves as a
    /// fencing token.
    public var createRevision: Int64

    /// Creates a lock description.
    public init(name: String, owner: String, lease: UInt64?, createRevision: Int64) {
        self.name = name
        self.owner = owner
        self.lease = lease
        self.createRevision = createRevision
    }
}

extension KVStateMachine {
    /// The key that stores lock `name`.
    public static func lockKey(_ name: String) -> [UInt8] { lockPrefix + Array(name.utf8) }

    /// Who holds lock `name`, if anyone.
    public func lockHolder(_ name: String) -> KVLockInfo? {
        store.get(Self.lockKey(name)).map { lockInfo(name: name, record: $0) }
    }

    private func lockInfo(name: String, record: KVRecord) -> KVLockInfo {
        KVLockInfo(name: name, owner: String(decoding: record.value, as: UTF8.self),
                   lease: record.lease, createRevision: record.createRevision)
    }

    package mutating func applyLock(name: String, owner: String, lease: UInt64) -> StateResult {
        if let f = checkText(name, what: "lock name") ?? checkText(owner, what: "lock owner") ?? checkLease(lease) {
            return .failed(f)
        }
        let key = Self.lockKey(name)
        if let record = store.get(key) {
            let holder = lockInfo(name: name, record: record)
            guard holder.owner == owner else { return .failed(.lockHeld(holder)) }
            // Re-acquire by the same owner: nothing to do unless it moves to another lease.
            if record.lease == lease { return .ok(.locked(holder, revision: store.revision)) }
        }
        var batch = newBatch()
        putKey(key, value: Array(owner.utf8), lease: lease, in: &batch)
        commit(batch)
        return .ok(.locked(lockHolder(name)!, revision: store.revision))
    }

    package mutating func applyUnlock(name: String, owner: String) -> StateResult {
        if let f = checkText(name, what: "lock name") ?? checkText(owner, what: "lock owner") { return .failed(f) }
        let key = Self.lockKey(name)
        guard let record = store.get(key) else { return .failed(.lockNotHeld(name: name)) }
        let holder = lockInfo(name: name, record: record)
        guard holder.owner == owner else { return .failed(.notLockOwner(name: name, holder: holder.owner)) }
        var batch = newBatch()
        deleteKey(key, in: &batch)
        commit(batch)
        return .ok(.unlocked(name: name, revision: store.revision))
    }
}
