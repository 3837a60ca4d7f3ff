// The key space: latest value of every key with its revisions, kept in byte order.
//
// Only the newest version of each key is stored (no multi-version reads); past changes live
// in `KVHistory` for watches. Mutation goes through `KVStateMachine`, which keeps leases
// and history in step.

/// One key with its value and bookkeeping, as etcd's `KeyValue`.
public struct KVRecord: Equatable, Sendable {
    /// The key.
    public var key: [UInt8]
    /// The current value.
    public var value: [UInt8]
    /// Revision of the put that created the key (since its last delete).
    public var createRevision: Int64
    /// Revision of the last put to the key.
    public var modRevision: Int64
    /// Number of puts since creation (1 after the first put).
    public var version: Int64
    /// The lease the key is attached to; the key is deleted when that lease ends.
    public var lease: UInt64?

    /// Creates a record.
    public init(key: [UInt8], value: [UInt8], createRevision: Int64, modRevision: Int64,
                version: Int64, lease: UInt64?) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.lease = lease
    }
}

/// The key space of the state machine: key → `KVRecord`, plus the global revision.
///
/// Reads are public; writes are made by `KVStateMachine` only. Keys are ordered byte-wise.
public struct KVStore: Sendable {
    /// The revision of the last write (0 for an empty, never-written store). Each write
    /// command or transaction that changes at least one key advances it by exactly one.
    public package(set) var revision: Int64 = 0
    private var records: [[UInt8]: KVRecord] = [:]
    private var sortedKeys = SortedKeyIndex()

    package init() {}

    /// Number of keys.
    public var count: Int { sortedKeys.count }

    /// The record at `key`, if any.
    public func get(_ key: [UInt8]) -> KVRecord? { records[key] }

    /// Records whose key starts with `prefix`, in byte order, at most `limit` of them
    /// (`limit` ≤ 0 means all); `more` tells whether further keys matched.
    public func range(prefix: [UInt8], limit: Int = 0) -> (records: [KVRecord], more: Bool) {
        var out: [KVRecord] = []
        var more = false
        sortedKeys.forEach(from: prefix) { key in
            guard key.starts(with: prefix) else { return false }
            if limit > 0, out.count == limit {
                more = true
                return false
            }
            out.append(records[key]!)
            return true
        }
        return (out, more)
    }

    /// Keys starting with `prefix`, in byte order.
    public func keys(prefix: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        sortedKeys.forEach(from: prefix) { key in
            guard key.starts(with: prefix) else { return false }
            out.append(key)
            return true
        }
        return out
    }

    /// Every record in key order (what a snapshot writes).
    public var allRecords: [KVRecord] {
        var out: [KVRecord] = []
        out.reserveCapacity(sortedKeys.count)
        sortedKeys.forEach(from: []) { key in
            out.append(records[key]!)
            return true
        }
        return out
    }

    // MARK: - Mutation (KVStateMachine only)

    /// Writes `value` at revision `rev`; returns the previous record.
    @discardableResult
    package mutating func put(key: [UInt8], value: [UInt8], lease: UInt64?, revision rev: Int64) -> KVRecord? {
        if let prev = records[key] {
            records[key] = KVRecord(key: key, value: value, createRevision: prev.createRevision,
                                    modRevision: rev, version: prev.version + 1, lease: lease)
            return prev
        }
        records[key] = KVRecord(key: key, value: value, createRevision: rev, modRevision: rev,
                                version: 1, lease: lease)
        sortedKeys.insert(key)
        return nil
    }

    /// Removes `key`; returns the removed record.
    @discardableResult
    package mutating func remove(_ key: [UInt8]) -> KVRecord? {
        guard let prev = records.removeValue(forKey: key) else { return nil }
        sortedKeys.remove(key)
        return prev
    }

    /// Inserts a whole record as-is (snapshot restore; keys arrive in ascending order).
    package mutating func load(_ record: KVRecord) {
        records[record.key] = record
        sortedKeys.append(record.key)
    }

    /// Byte order of keys: `a.lexicographicallyPrecedes(b)`, without the generic iterator
    /// (this runs log2(count) times for every new key).
    @inline(__always)
    static func precedes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                let n = Swift.min(pa.count, pb.count)
                var i = 0
                while i < n {
                    if pa[i] != pb[i] { return pa[i] < pb[i] }
                    i += 1
                }
                return pa.count < pb.count
            }
        }
    }
}
