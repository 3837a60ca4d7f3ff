// The replicated state machine: the entry point a server calls for every committed entry,
// and the read side it serves reads and watches from.

/// The deterministic state machine behind dagent's replicated state: a key-value store with
/// revisions, compare-and-set, transactions, leases and locks (modelled on etcd's MVCC
/// store, latest version only), a change history for watches, and the name directory.
///
/// It is pure: no I/O, no clocks, no randomness, no dictionary-order dependence. Time comes
/// in commands (`tick`, `leaseGrant`, `leaseKeepAlive` carry the leader's `now`). Applying
/// the same committed entries in the same order on every replica yields identical state,
/// identical results and byte-identical `snapshot()`s.
///
/// Server loop (per committed normal entry, in log order):
/// ```swift
/// let result = machine.apply(entry: entry.data)   // never traps; bad bytes → .failed
/// hub.collect(from: machine)                      // push these deliveries to watchers
/// // hand `result` to the client waiting on that entry, if it was proposed here
/// ```
/// Reads after a ReadIndex: `get(_:)`, `range(prefix:limit:)`, `read(_:)`,
/// `directory.lookup(_:)`, `lockHolder(_:)`, `leases.lease(_:)`; `revision` is the header
/// revision. Snapshots: `snapshot()` / `restore(_:)`.
public struct KVStateMachine: Sendable {
    /// Keys under this prefix are locks: written only by `lock`/`unlock` and lease expiry,
    /// refused for `put`/`delete`/txn writes, skipped by `deleteRange`. Readable and watchable.
    public static let lockPrefix: [UInt8] = Array("_lock/".utf8)

    /// The limits in force (must be identical on every replica).
    public let config: KVStateConfig
    /// The key space and the global revision.
    public package(set) var store: KVStore
    /// Retained change events and the compaction point.
    public package(set) var history: KVHistory
    /// Live leases and their keys.
    public package(set) var leases: KVLeaseTable
    /// The name directory.
    public package(set) var directory: DirectoryTable
    /// The replicated clock: the largest `now` (ms) any applied command carried.
    public package(set) var clockMs: UInt64 = 0

    /// An empty state machine at revision 0.
    public init(config: KVStateConfig = KVStateConfig()) {
        self.config = config
        self.store = KVStore()
        self.history = KVHistory(retention: config.historyRetention)
        self.leases = KVLeaseTable()
        self.directory = DirectoryTable()
    }

    /// The store revision (the revision of the last write; 0 when nothing was written).
    public var revision: Int64 { store.revision }

    // MARK: - Apply

    /// Decodes a committed entry and applies it. Undecodable bytes change nothing and give
    /// `.failed(.malformedCommand)` on every replica alike.
    public mutating func apply(entry bytes: [UInt8]) -> StateResult {
        let command: StateCommand
        do {
            command = try StateCommand.decode(bytes)
        } catch let error as StateCodecError {
            return .failed(.malformedCommand(error))
        } catch {
            return .failed(.invalidArgument("undecodable entry"))
        }
        return apply(command)
    }

    /// Applies one command (in log order) and returns its result.
    public mutating func apply(_ command: StateCommand) -> StateResult {
        switch command {
        case .get, .range:
            return read(command)
        case let .put(key, value, lease):
            return applyPut(key: key, value: value, lease: lease)
        case let .delete(key):
            return applyDelete(key: key)
        case let .deleteRange(prefix):
            return applyDeleteRange(prefix: prefix)
        case let .compareAndSet(key, expected, value, lease):
            return applyCompareAndSet(key: key, expected: expected, value: value, lease: lease)
        case let .txn(txn):
            return applyTxn(txn)
        case let .leaseGrant(id, ttlMs, now):
            return applyLeaseGrant(id: id, ttlMs: ttlMs, now: now)
        case let .leaseKeepAlive(id, now):
            return applyLeaseKeepAlive(id: id, now: now)
        case let .leaseRevoke(id):
            return applyLeaseRevoke(id: id)
        case let .tick(now):
            return applyTick(now: now)
        case let .lock(name, owner, lease):
            return applyLock(name: name, owner: owner, lease: lease)
        case let .unlock(name, owner):
            return applyUnlock(name: name, owner: owner)
        case let .registerName(name, session, replica, agent):
            return applyRegisterName(name: name, session: session, replica: replica, agent: agent)
        case let .releaseName(name, session):
            return applyReleaseName(name: name, session: session)
        case let .releaseAllFor(owner):
            return applyReleaseAll(for: owner)
        }
    }

    // MARK: - Reads

    /// Serves a `get` or `range` command from local state (no log entry needed once the
    /// replica has applied up to a ReadIndex). Writes give `.failed(.notARead)`.
    public func read(_ command: StateCommand) -> StateResult {
        switch command {
        case let .get(key):
            guard let record = store.get(key) else { return .failed(.keyNotFound(key: key)) }
            return .ok(.record(record, revision: store.revision))
        case let .range(prefix, limit):
            let (records, more) = store.range(prefix: prefix, limit: limit)
            return .ok(.records(records, more: more, revision: store.revision))
        default:
            return .failed(.notARead(command.name))
        }
    }

    /// The record at `key`, if any.
    public func get(_ key: [UInt8]) -> KVRecord? { store.get(key) }

    /// Records under `prefix` in key order, at most `limit` (≤ 0: all).
    public func range(prefix: [UInt8], limit: Int = 0) -> (records: [KVRecord], more: Bool) {
        store.range(prefix: prefix, limit: limit)
    }

    /// Change events for keys under `prefix` from `fromRevision` on (see `KVHistory.events`).
    /// Resume a watch from the last revision seen + 1; `.compacted` means the history no
    /// longer reaches back that far.
    public func events(prefix: [UInt8], fromRevision: Int64, limit: Int = 0) -> KVWatchResult {
        history.events(prefix: prefix, fromRevision: fromRevision, upTo: store.revision, limit: limit)
    }

    // MARK: - Write plumbing

    /// The changes of one write command: all share one revision, committed together.
    package struct WriteBatch {
        let revision: Int64
        var events: [KVEvent] = []
    }

    /// Puts a key inside a batch, keeping lease attachments and events in step.
    @discardableResult
    package mutating func putKey(_ key: [UInt8], value: [UInt8], lease: UInt64?, in batch: inout WriteBatch) -> KVRecord? {
        let previous = store.put(key: key, value: value, lease: lease, revision: batch.revision)
        if let old = previous?.lease, old != lease { leases.detach(key, from: old) }
        if let lease { leases.attach(key, to: lease) }
        let record = store.get(key)!
        batch.events.append(KVEvent(kind: .put, key: key, value: value, revision: batch.revision,
                                    createRevision: record.createRevision, version: record.version,
                                    lease: lease, prevValue: previous?.value))
        return previous
    }

    /// Deletes a key inside a batch; nil (and no event) when it is absent.
    @discardableResult
    package mutating func deleteKey(_ key: [UInt8], in batch: inout WriteBatch) -> KVRecord? {
        guard let previous = store.remove(key) else { return nil }
        if let lease = previous.lease { leases.detach(key, from: lease) }
        batch.events.append(KVEvent(kind: .delete, key: key, value: [], revision: batch.revision,
                                    createRevision: 0, version: 0, lease: nil, prevValue: previous.value))
        return previous
    }

    /// Makes a batch visible: one new revision and its events, or nothing for an empty batch.
    package mutating func commit(_ batch: WriteBatch) {
        guard !batch.events.isEmpty else { return }
        store.revision = batch.revision
        history.append(batch.events)
    }

    /// A fresh batch for the next revision.
    package func newBatch() -> WriteBatch { WriteBatch(revision: store.revision + 1) }

    // MARK: - Validation

    package static func isReserved(_ key: [UInt8]) -> Bool { key.starts(with: lockPrefix) }

    package func checkKey(_ key: [UInt8], writable: Bool = true) -> StateFailure? {
        if key.isEmpty { return .invalidArgument("key must not be empty") }
        if key.count > config.maxKeyBytes {
            return .limitExceeded(limit: "maxKeyBytes", value: key.count, max: config.maxKeyBytes)
        }
        if writable, Self.isReserved(key) { return .reservedKey(key: key) }
        return nil
    }

    package func checkValue(_ value: [UInt8]) -> StateFailure? {
        if value.count > config.maxValueBytes {
            return .limitExceeded(limit: "maxValueBytes", value: value.count, max: config.maxValueBytes)
        }
        return nil
    }

    package func checkPrefix(_ prefix: [UInt8]) -> StateFailure? {
        if prefix.count > config.maxKeyBytes {
            return .limitExceeded(limit: "maxKeyBytes", value: prefix.count, max: config.maxKeyBytes)
        }
        return nil
    }

    package func checkLease(_ lease: UInt64?) -> StateFailure? {
        if let lease, leases.lease(lease) == nil { return .leaseNotFound(id: lease) }
        return nil
    }

    /// Checks a short text argument (lock name, owner, directory name, agent).
    package func checkText(_ text: String, what: String) -> StateFailure? {
        let n = text.utf8.count
        if n == 0 { return .invalidArgument("\(what) must not be empty") }
        if n > config.maxKeyBytes { return .limitExceeded(limit: "maxKeyBytes", value: n, max: config.maxKeyBytes) }
        return nil
    }
}
