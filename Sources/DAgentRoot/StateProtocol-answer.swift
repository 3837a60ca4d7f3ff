import Foundation
import DAgentState

/// Renders state-machine results and events as `@state` documents.
extension StateAnswer {
    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    static func record(_ r: KVRecord) -> StateRecordJSON {
        StateRecordJSON(key: text(r.key), value: text(r.value), createRevision: r.createRevision,
                        modRevision: r.modRevision, version: r.version, lease: r.lease)
    }

    /// A short machine-readable name of a failure (`code` of the answer).
    public static func code(_ failure: StateFailure) -> String {
        switch failure {
        case .keyNotFound: return "key_not_found"
        case .compareFailed: return "compare_failed"
        case .leaseNotFound: return "lease_not_found"
        case .leaseExists: return "lease_exists"
        case .lockHeld: return "lock_held"
        case .lockNotHeld: return "lock_not_held"
        case .notLockOwner: return "not_lock_owner"
        case .nameTaken: return "name_taken"
        case .nameNotFound: return "name_not_found"
        case .sessionMismatch: return "session_mismatch"
        case .reservedKey: return "reserved_key"
        case .limitExceeded: return "limit_exceeded"
        case .invalidArgument: return "invalid_argument"
        case .malformedCommand: return "malformed_command"
        case .notARead: return "not_a_read"
        }
    }

    /// The answer for one command's result.
    public init(_ result: StateResult) {
        switch result {
        case .failed(let failure):
            self = .failure("\(failure)", code: Self.code(failure))
            if case let .lockHeld(info) = failure {
                lock = StateLockJSON(name: info.name, owner: info.owner, lease: info.lease ?? 0, token: info.createRevision)
            }
        case .ok(let reply):
            self.init(ok: true)
            switch reply {
            case let .put(revision, previous):
                self.revision = revision
                self.previous = previous.map(Self.record)
            case let .deleted(revision, deleted):
                self.revision = revision
                self.deleted = deleted.map(Self.record)
            case let .record(r, revision):
                self.revision = revision
                self.record = Self.record(r)
            case let .records(records, more, revision):
                self.revision = revision
                self.records = records.map(Self.record)
                self.more = more
            case let .txn(succeeded, revision, responses):
                self.revision = revision
                self.succeeded = succeeded
                self.responses = responses.map(Self.opResponse)
            case let .lease(lease, revision):
                self.revision = revision
                self.lease = StateLeaseJSON(id: lease.id, ttlMs: lease.ttlMs, expiresAtMs: lease.expiresAtMs)
            case let .leaseRevoked(id, keys, revision):
                self.revision = revision
                self.lease = StateLeaseJSON(id: id)
                self.deletedKeys = keys.map(Self.text)
            case let .ticked(nowMs, expired, revision):
                self.revision = revision
                self.nowMs = nowMs
                self.expiredLeases = expired
            case let .locked(info, revision):
                self.revision = revision
                self.lock = StateLockJSON(name: info.name, owner: info.owner, lease: info.lease ?? 0, token: info.createRevision)
            case let .unlocked(name, revision):
                self.revision = revision
                self.unlocked = name
            case let .registered(entry, _):
                self.registered = "\(entry)"
            case let .released(entries):
                self.released = entries.map { "\($0)" }
            }
        }
    }

    static func opResponse(_ r: KVOpResponse) -> StateOpResponseJSON {
        var o = StateOpResponseJSON(op: "")
        switch r {
        case let .put(previous):
            o.op = "put"
            o.previous = previous.map(record)
        case let .deleted(records):
            o.op = "del"
            o.deleted = records.map(record)
        case let .get(rec):
            o.op = "get"
            o.record = rec.map(record)
        case let .range(records, more):
            o.op = "range"
            o.records = records.map(record)
            o.more = more
        }
        return o
    }
}

extension StateWatchEvent {
    /// A delivery of events to client watch `watchID`.
    public init(events: [KVEvent], watchID: UInt64, next: Int64) {
        self.init(watch: watchID, nextRevision: next, events: events.map { e in
            StateEventJSON(type: e.kind == .put ? "put" : "delete", key: StateAnswer.text(e.key), value: StateAnswer.text(e.value),
                           revision: e.revision, version: e.version,
                           createRevision: e.kind == .put ? e.createRevision : nil, lease: e.lease,
                           prevValue: e.prevValue.map(StateAnswer.text))
        }, compacted: nil, oldest: nil)
    }

    /// The news that watch `watchID` fell behind compaction at `compactRevision`.
    public init(compactedWatch watchID: UInt64, compactRevision: Int64) {
        self.init(watch: watchID, nextRevision: nil, events: nil, compacted: compactRevision, oldest: compactRevision + 1)
    }
}
