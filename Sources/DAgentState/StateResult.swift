// Results of applying a command. Every replica computes the same result for the same entry;
// the replica that proposed it hands the result back to the client.

/// The outcome of one command: a reply, or a failure that changed nothing.
///
/// A failed command never changes keys, revision or history. (Commands carrying `now` still
/// advance the replicated clock, which may expire leases, before they fail.)
public enum StateResult: Equatable, Sendable {
    /// The command succeeded.
    case ok(StateReply)
    /// The command was refused; see `StateFailure`.
    case failed(StateFailure)

    /// True for `.ok`.
    public var isOK: Bool {
        if case .ok = self { return true }
        return false
    }

    /// The reply of an `.ok` result.
    public var reply: StateReply? {
        if case let .ok(reply) = self { return reply }
        return nil
    }

    /// The failure of a `.failed` result.
    public var failure: StateFailure? {
        if case let .failed(failure) = self { return failure }
        return nil
    }
}

/// What a successful command returns. `revision` is always the store revision after the
/// command (the new revision for a write, the current one for a read or a no-op).
public enum StateReply: Equatable, Sendable {
    /// A put or a successful compare-and-set; `previous` is the record it replaced.
    case put(revision: Int64, previous: KVRecord?)
    /// A delete or delete-range; `deleted` are the removed records in key order.
    case deleted(revision: Int64, deleted: [KVRecord])
    /// A `get` that found its key.
    case record(KVRecord, revision: Int64)
    /// A `range`: records in key order; `more` when `limit` cut the answer short.
    case records([KVRecord], more: Bool, revision: Int64)
    /// A transaction: which branch ran and one response per op of that branch.
    case txn(succeeded: Bool, revision: Int64, responses: [KVOpResponse])
    /// A lease grant or keep-alive: the lease as it now stands.
    case lease(KVLease, revision: Int64)
    /// A lease revoke: the keys it deleted (in key order).
    case leaseRevoked(id: UInt64, deletedKeys: [[UInt8]], revision: Int64)
    /// A tick: the replicated clock after it and the leases it expired (in expiry order).
    case ticked(nowMs: UInt64, expiredLeases: [UInt64], revision: Int64)
    /// A lock acquired (or re-acquired by its owner).
    case locked(KVLockInfo, revision: Int64)
    /// A lock released.
    case unlocked(name: String, revision: Int64)
    /// A directory name registered; `previous` is the entry it replaced (same session).
    case registered(DirectoryEntry, previous: DirectoryEntry?)
    /// Directory names released, in name order (possibly none for `releaseAllFor`).
    case released([DirectoryEntry])
}

/// The response of one op inside a transaction branch.
public enum KVOpResponse: Equatable, Sendable {
    /// A put; the record it replaced.
    case put(previous: KVRecord?)
    /// A delete or delete-range; the removed records in key order.
    case deleted([KVRecord])
    /// A get; nil when the key is absent.
    case get(KVRecord?)
    /// A range read.
    case range([KVRecord], more: Bool)
}

/// Why a command was refused. Each case names the value at fault.
public enum StateFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// The key does not exist (`get`, `delete`).
    case keyNotFound(key: [UInt8])
    /// A compare-and-set found something else; `current` is what is there (nil: absent).
    case compareFailed(key: [UInt8], current: KVRecord?)
    /// No live lease has this id (never granted, revoked or expired).
    case leaseNotFound(id: UInt64)
    /// A lease with this id already exists.
    case leaseExists(id: UInt64)
    /// The lock is held by someone else; `holder` says who, under which lease, since when.
    case lockHeld(KVLockInfo)
    /// Nobody holds the lock.
    case lockNotHeld(name: String)
    /// The lock is held, by `holder`, not by the owner that asked to unlock it.
    case notLockOwner(name: String, holder: String)
    /// The name is held by another session.
    case nameTaken(name: String, holder: DirectoryEntry)
    /// The directory holds no such name.
    case nameNotFound(name: String)
    /// The name is held by another session than the one releasing it.
    case sessionMismatch(name: String, holder: DirectoryEntry)
    /// The key is under the reserved lock prefix; use `lock`/`unlock` instead.
    case reservedKey(key: [UInt8])
    /// A value exceeds the named `KVStateConfig` limit.
    case limitExceeded(limit: String, value: Int, max: Int)
    /// An argument is invalid (empty key, zero TTL, ...).
    case invalidArgument(String)
    /// The entry bytes do not decode as a command.
    case malformedCommand(StateCodecError)
    /// A write command was passed to `read(_:)`.
    case notARead(String)

    public var description: String {
        switch self {
        case let .keyNotFound(key):
            return "key \(describeStateBytes(key)) not found"
        case let .compareFailed(key, current):
            if let current {
                return "compare failed on key \(describeStateBytes(key)): it is at mod revision \(current.modRevision), version \(current.version); re-read and retry"
            }
            return "compare failed on key \(describeStateBytes(key)): the key does not exist; re-read and retry"
        case let .leaseNotFound(id):
            return "lease \(id) not found (never granted, revoked or expired); grant a new lease"
        case let .leaseExists(id):
            return "lease \(id) already exists; pick another id or pass 0 to have one assigned"
        case let .lockHeld(info):
            return "lock \"\(info.name)\" is held by \"\(info.owner)\" (lease \(info.lease.map(String.init) ?? "none"), since revision \(info.createRevision)); wait for its release"
        case let .lockNotHeld(name):
            return "lock \"\(name)\" is not held"
        case let .notLockOwner(name, holder):
            return "lock \"\(name)\" is held by \"\(holder)\", not by the caller"
        case let .nameTaken(name, holder):
            return "name \"\(name)\" is taken by agent \"\(holder.agent)\" on replica \(holder.replica) (session \(holder.session)); choose another name or present that session"
        case let .nameNotFound(name):
            return "name \"\(name)\" is not registered"
        case let .sessionMismatch(name, holder):
            return "name \"\(name)\" is held by session \(holder.session), not the caller's"
        case let .reservedKey(key):
            return "key \(describeStateBytes(key)) is under the reserved lock prefix \(describeStateBytes(KVStateMachine.lockPrefix)); use lock/unlock"
        case let .limitExceeded(limit, value, max):
            return "\(value) exceeds \(limit) (\(max)); raise KVStateConfig.\(limit) on every replica or send less"
        case let .invalidArgument(why):
            return "invalid argument: \(why)"
        case let .malformedCommand(error):
            return "malformed command: \(error)"
        case let .notARead(what):
            return "\(what) is a write; propose it through the log"
        }
    }
}
