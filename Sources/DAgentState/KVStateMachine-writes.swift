// Key writes: put, delete, delete-range, compare-and-set and transactions.
// Each validates everything first, then mutates; a failure never leaves partial changes.

extension KVStateMachine {
    package mutating func applyPut(key: [UInt8], value: [UInt8], lease: UInt64?) -> StateResult {
        if let f = checkKey(key) ?? checkValue(value) ?? checkLease(lease) { return .failed(f) }
        var batch = newBatch()
        let previous = putKey(key, value: value, lease: lease, in: &batch)
        commit(batch)
        return .ok(.put(revision: store.revision, previous: previous))
    }

    package mutating func applyDelete(key: [UInt8]) -> StateResult {
        if let f = checkKey(key) { return .failed(f) }
        var batch = newBatch()
        guard let previous = deleteKey(key, in: &batch) else { return .failed(.keyNotFound(key: key)) }
        commit(batch)
        return .ok(.deleted(revision: store.revision, deleted: [previous]))
    }

    package mutating func applyDeleteRange(prefix: [UInt8]) -> StateResult {
        if let f = checkPrefix(prefix) { return .failed(f) }
        var batch = newBatch()
        let deleted = deleteRange(prefix, in: &batch)
        commit(batch)
        return .ok(.deleted(revision: store.revision, deleted: deleted))
    }

    package mutating func applyCompareAndSet(key: [UInt8], expected: KVExpectation, value: [UInt8],
                                     lease: UInt64?) -> StateResult {
        if let f = checkKey(key) ?? checkValue(value) ?? checkLease(lease) { return .failed(f) }
        let current = store.get(key)
        let holds: Bool
        switch expected {
        case let .modRevision(rev): holds = (current?.modRevision ?? 0) == rev
        case let .value(bytes): holds = current?.value == bytes
        case .absent: holds = current == nil
        }
        guard holds else { return .failed(.compareFailed(key: key, current: current)) }
        var batch = newBatch()
        let previous = putKey(key, value: value, lease: lease, in: &batch)
        commit(batch)
        return .ok(.put(revision: store.revision, previous: previous))
    }

    package mutating func applyTxn(_ txn: KVTxn) -> StateResult {
        let total = txn.compares.count + txn.success.count + txn.failure.count
        if total > config.maxTxnOps {
            return .failed(.limitExceeded(limit: "maxTxnOps", value: total, max: config.maxTxnOps))
        }
        for compare in txn.compares {
            if let f = checkKey(compare.key, writable: false) { return .failed(f) }
        }
        for op in txn.success + txn.failure {
            if let f = checkStatic(op) { return .failed(f) }
        }
        let succeeded = txn.compares.allSatisfy(holds)
        let branch = succeeded ? txn.success : txn.failure
        for case let .put(_, _, lease) in branch {
            if let f = checkLease(lease) { return .failed(f) }
        }
        var batch = newBatch()
        var responses: [KVOpResponse] = []
        responses.reserveCapacity(branch.count)
        for op in branch {
            switch op {
            case let .put(key, value, lease):
                responses.append(.put(previous: putKey(key, value: value, lease: lease, in: &batch)))
            case let .delete(key):
                responses.append(.deleted(deleteKey(key, in: &batch).map { [$0] } ?? []))
            case let .deleteRange(prefix):
                responses.append(.deleted(deleteRange(prefix, in: &batch)))
            case let .get(key):
                responses.append(.get(store.get(key)))
            case let .range(prefix, limit):
                let (records, more) = store.range(prefix: prefix, limit: limit)
                responses.append(.range(records, more: more))
            }
        }
        commit(batch)
        return .ok(.txn(succeeded: succeeded, revision: store.revision, responses: responses))
    }

    // MARK: - Helpers

    /// Deletes every non-lock key under `prefix` inside a batch, in key order.
    private mutating func deleteRange(_ prefix: [UInt8], in batch: inout WriteBatch) -> [KVRecord] {
        var deleted: [KVRecord] = []
        for key in store.keys(prefix: prefix) where !Self.isReserved(key) {
            if let previous = deleteKey(key, in: &batch) { deleted.append(previous) }
        }
        return deleted
    }

    /// Checks of an op that do not depend on state (sizes, empty and reserved keys).
    private func checkStatic(_ op: KVOp) -> StateFailure? {
        switch op {
        case let .put(key, value, _): return checkKey(key) ?? checkValue(value)
        case let .delete(key): return checkKey(key)
        case let .deleteRange(prefix): return checkPrefix(prefix)
        case let .get(key): return checkKey(key, writable: false)
        case let .range(prefix, _): return checkPrefix(prefix)
        }
    }

    /// Whether a compare holds against current state (absent keys have all-zero revisions).
    private func holds(_ compare: KVCompare) -> Bool {
        let record = store.get(compare.key)
        switch compare.target {
        case let .value(bytes): return record?.value == bytes
        case let .version(n): return (record?.version ?? 0) == n
        case let .modRevision(n): return (record?.modRevision ?? 0) == n
        case let .createRevision(n): return (record?.createRevision ?? 0) == n
        case .exists: return record != nil
        case .missing: return record == nil
        }
    }
}
