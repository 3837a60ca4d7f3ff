// The commands the replicated state machine understands.
//
// Keys and values are raw bytes (ordered and compared byte-wise, never by Unicode rules, so
// every replica and every Swift version agrees). Names, owners and agents are strings.
// Times are milliseconds on the leader's clock, carried inside the commands.

/// One command applied to the state machine, in log order, on every replica.
///
/// Writes go through the Raft log; `get` and `range` are reads normally served from local
/// state after a ReadIndex, but they are encodable too so a read can be sent through the
/// log as a fallback. Encode with `encode()`, decode with `StateCommand.decode(_:)`.
public enum StateCommand: Equatable, Sendable {
    /// Writes `value` at `key`, attaching the key to `lease` (or detaching it when nil).
    case put(key: [UInt8], value: [UInt8], lease: UInt64?)
    /// Deletes one key; fails with `keyNotFound` (and no event) when it is absent.
    case delete(key: [UInt8])
    /// Deletes every key starting with `prefix` in one revision (lock keys are skipped).
    case deleteRange(prefix: [UInt8])
    /// Reads one key.
    case get(key: [UInt8])
    /// Reads the keys starting with `prefix` in byte order; `limit` 0 means no limit.
    case range(prefix: [UInt8], limit: Int)
    /// Writes `value` at `key` only if the key currently matches `expected`.
    case compareAndSet(key: [UInt8], expected: KVExpectation, value: [UInt8], lease: UInt64?)
    /// Atomic transaction: one revision, all ops of one branch or none.
    case txn(KVTxn)
    /// Creates lease `id` (0 = let the state machine pick one) living `ttlMs` past `now`.
    case leaseGrant(id: UInt64, ttlMs: UInt64, now: UInt64)
    /// Pushes the lease's expiry to `now + ttl`.
    case leaseKeepAlive(id: UInt64, now: UInt64)
    /// Ends the lease now, deleting its keys (and so releasing its locks).
    case leaseRevoke(id: UInt64)
    /// Advances the replicated clock to `now` and expires every lease due by then.
    case tick(now: UInt64)
    /// Takes lock `name` for `owner`; the lock lives as long as `lease`.
    case lock(name: String, owner: String, lease: UInt64)
    /// Releases lock `name` if `owner` holds it.
    case unlock(name: String, owner: String)
    /// Registers (or, with the same session, moves) a routable name in the directory.
    case registerName(name: String, session: UInt64, replica: UInt64, agent: String)
    /// Releases a name if `session` holds it.
    case releaseName(name: String, session: UInt64)
    /// Releases every name held by an agent or hosted on a replica (a link died).
    case releaseAllFor(DirectoryOwner)

    /// The command's name, e.g. `"put"` or `"leaseGrant"` (for errors, logs and metrics).
    public var name: String {
        switch self {
        case .put: return "put"
        case .delete: return "delete"
        case .deleteRange: return "deleteRange"
        case .get: return "get"
        case .range: return "range"
        case .compareAndSet: return "compareAndSet"
        case .txn: return "txn"
        case .leaseGrant: return "leaseGrant"
        case .leaseKeepAlive: return "leaseKeepAlive"
        case .leaseRevoke: return "leaseRevoke"
        case .tick: return "tick"
        case .lock: return "lock"
        case .unlock: return "unlock"
        case .registerName: return "registerName"
        case .releaseName: return "releaseName"
        case .releaseAllFor: return "releaseAllFor"
        }
    }

    /// True for `get` and `range`, which never change state.
    public var isRead: Bool {
        switch self {
        case .get, .range: return true
        default: return false
        }
    }
}

/// What a `compareAndSet` expects to find at its key.
public enum KVExpectation: Equatable, Sendable {
    /// The key's mod revision equals this (0 means the key must be absent, as in etcd).
    case modRevision(Int64)
    /// The key exists and holds exactly these bytes.
    case value([UInt8])
    /// The key does not exist.
    case absent
}

/// One equality or existence test inside a `KVTxn`.
///
/// An absent key has version, mod revision and create revision 0 and matches no `.value`.
public struct KVCompare: Equatable, Sendable {
    /// The key tested.
    public var key: [UInt8]
    /// What the key must match.
    public var target: KVCompareTarget

    /// Creates a compare of `key` against `target`.
    public init(key: [UInt8], _ target: KVCompareTarget) {
        self.key = key
        self.target = target
    }
}

/// The property a `KVCompare` checks.
public enum KVCompareTarget: Equatable, Sendable {
    /// The key exists and its value equals these bytes.
    case value([UInt8])
    /// The key's version (number of puts since creation; 0 when absent) equals this.
    case version(Int64)
    /// The key's last-modified revision (0 when absent) equals this.
    case modRevision(Int64)
    /// The key's creation revision (0 when absent) equals this.
    case createRevision(Int64)
    /// The key exists.
    case exists
    /// The key does not exist.
    case missing
}

/// One operation inside a transaction branch. Ops run in order; later ops see earlier ones.
public enum KVOp: Equatable, Sendable {
    /// Like `StateCommand.put`.
    case put(key: [UInt8], value: [UInt8], lease: UInt64?)
    /// Deletes one key; an absent key is not an error inside a txn (it deletes nothing).
    case delete(key: [UInt8])
    /// Like `StateCommand.deleteRange`.
    case deleteRange(prefix: [UInt8])
    /// Reads one key.
    case get(key: [UInt8])
    /// Reads a prefix; `limit` 0 means no limit.
    case range(prefix: [UInt8], limit: Int)
}

/// An etcd-style transaction: if every compare holds run `success`, else run `failure`.
///
/// The whole txn is one revision (or none when the chosen branch changes nothing), and it
/// is all-or-nothing: a branch with an invalid op (unknown lease, reserved key, limit)
/// changes nothing and fails as a whole.
public struct KVTxn: Equatable, Sendable {
    /// Tests that must all hold for `success` to run.
    public var compares: [KVCompare]
    /// Ops run when every compare holds.
    public var success: [KVOp]
    /// Ops run otherwise (the "else" branch).
    public var failure: [KVOp]

    /// Creates a transaction.
    public init(compares: [KVCompare], success: [KVOp], failure: [KVOp] = []) {
        self.compares = compares
        self.success = success
        self.failure = failure
    }
}

/// Whose names `releaseAllFor` drops: every name of one agent, or every name on one replica.
public enum DirectoryOwner: Equatable, Sendable {
    /// Every name whose entry names this agent.
    case agent(String)
    /// Every name whose entry names this root replica.
    case replica(UInt64)
}
