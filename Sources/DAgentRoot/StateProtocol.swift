import DAgentRaft
import Foundation
import DAgentRaftStorage
import DAgentState

/// Message types of the `@state` service (reserved range).
public enum StateTypes {
    /// A request to the group; payload is a JSON `StateRequest`.
    public static let request: UInt32 = 0xFFFF_0100
    /// A watch delivery pushed to a client; payload is JSON.
    public static let watchEvent: UInt32 = 0xFFFF_0101
    /// The reserved name the root group serves.
    public static let serviceName = "@state"
}

/// A request to the root group, as JSON:
///
/// ```json
/// {"op":"put","key":"k","value":"v","lease":7}        {"op":"get","key":"k"}
/// {"op":"del","key":"k"}   {"op":"delprefix","prefix":"p"}   {"op":"range","prefix":"p","limit":10}
/// {"op":"cas","key":"k","value":"new","expect_value":"old" | "expect_mod":5 | "expect_absent":true}
/// {"op":"lease_grant","ttl_ms":5000}  {"op":"lease_keepalive","id":7}  {"op":"lease_revoke","id":7}
/// {"op":"lock","name":"n","owner":"me","lease":7}     {"op":"unlock","name":"n","owner":"me"}
/// {"op":"watch","prefix":"p","from":12,"id":1}        {"op":"unwatch","id":1}
/// {"op":"status"}   {"op":"backup"}
/// ```
/// Keys and values are UTF-8 text.
public enum StateRequest: Equatable {
    case write(StateCommand)
    case read(StateCommand)
    case watch(prefix: [UInt8], from: Int64, clientID: UInt64)
    case unwatch(clientID: UInt64)
    case status
    case backup

    public static func parse(_ data: Data, nowMs: UInt64) throws -> StateRequest {
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw StateProtocolError("request is not a JSON object")
        }
        guard let op = obj["op"] as? String else { throw StateProtocolError("request has no \"op\"") }
        func str(_ k: String) throws -> [UInt8] {
            guard let s = obj[k] as? String else { throw StateProtocolError("\(op): \"\(k)\" (a string) is required") }
            return Array(s.utf8)
        }
        func int(_ k: String) throws -> Int64? { try StateRequest.integer(obj[k], key: k, op: op) }
        func uint(_ k: String) throws -> UInt64 {
            guard let v = try int(k), v >= 0 else { throw StateProtocolError("\(op): \"\(k)\" (a non-negative integer) is required") }
            return UInt64(v)
        }
        func optionalUInt(_ k: String) throws -> UInt64? {
            guard let v = try int(k) else { return nil }
            guard v >= 0 else { throw StateProtocolError("\(op): \"\(k)\" must be a non-negative integer (got \(v))") }
            return UInt64(v)
        }
        let lease = try optionalUInt("lease").flatMap { $0 > 0 ? $0 : nil }
        switch op {
        case "put": return .write(.put(key: try str("key"), value: try str("value"), lease: lease))
        case "get": return .read(.get(key: try str("key")))
        case "range": return .read(.range(prefix: try str("prefix"), limit: Int(try optionalUInt("limit") ?? 0)))
        case "del": return .write(.delete(key: try str("key")))
        case "delprefix": return .write(.deleteRange(prefix: try str("prefix")))
        case "cas":
            let expected: KVExpectation
            if let v = obj["expect_value"] as? String {
                expected = .value(Array(v.utf8))
            } else if let m = try int("expect_mod") {
                expected = .modRevision(m)
            } else if obj["expect_absent"] as? Bool == true {
                expected = .absent
            } else {
                throw StateProtocolError("cas: one of expect_value, expect_mod, expect_absent is required")
            }
            return .write(.compareAndSet(key: try str("key"), expected: expected, value: try str("value"), lease: lease))
        case "lease_grant":
            let ttl = try uint("ttl_ms")
            guard ttl <= StateRequest.maxTTLMs else {
                throw StateProtocolError("lease_grant: \"ttl_ms\" \(ttl) exceeds the maximum \(StateRequest.maxTTLMs) (one year)")
            }
            return .write(.leaseGrant(id: try optionalUInt("id") ?? 0, ttlMs: ttl, now: nowMs))
        case "lease_keepalive": return .write(.leaseKeepAlive(id: try uint("id"), now: nowMs))
        case "lease_revoke": return .write(.leaseRevoke(id: try uint("id")))
        case "lock":
            guard let name = obj["name"] as? String, let owner = obj["owner"] as? String else {
                throw StateProtocolError("lock: \"name\" and \"owner\" are required")
            }
            return .write(.lock(name: name, owner: owner, lease: try uint("lease")))
        case "unlock":
            guard let name = obj["name"] as? String, let owner = obj["owner"] as? String else {
                throw StateProtocolError("unlock: \"name\" and \"owner\" are required")
            }
            return .write(.unlock(name: name, owner: owner))
        case "watch": return .watch(prefix: try str("prefix"), from: try int("from") ?? 0, clientID: try uint("id"))
        case "unwatch": return .unwatch(clientID: try uint("id"))
        case "status": return .status
        case "backup": return .backup
        default: throw StateProtocolError("unknown op \"\(op)\"; see `dagent state --help`")
        }
    }
}

extension StateRequest {
    /// The longest lease: one year in milliseconds (keeps `now + ttl` far from overflow).
    public static let maxTTLMs: UInt64 = 366 * 24 * 3600 * 1000

    /// A JSON integer, strictly: a number with no fraction that fits in Int64.
    /// Anything else (a string, 1.5, 1e30) is refused with the key's
    /// name; nothing here can trap.
    static func integer(_ value: Any?, key: String, op: String) throws -> Int64? {
        guard let value, !(value is NSNull) else { return nil }
        if let i = value as? Int { return Int64(i) }
        if let i = value as? Int64 { return i }
        if let u = value as? UInt64 {
            guard u <= UInt64(Int64.max) else { throw StateProtocolError("\(op): \"\(key)\" \(u) is out of range") }
            return Int64(u)
        }
        if let d = value as? Double {
            guard d.isFinite, d == d.rounded(), d >= -9.2e18, d <= 9.2e18 else {
                throw StateProtocolError("\(op): \"\(key)\" must be an integer (got \(d))")
            }
            return Int64(d)
        }
        if let n = value as? NSNumber {
            let d = n.doubleValue
            guard d.isFinite, d == d.rounded(), d >= -9.2e18, d <= 9.2e18 else {
                throw StateProtocolError("\(op): \"\(key)\" must be an integer (got \(n))")
            }
            return n.int64Value
        }
        throw StateProtocolError("\(op): \"\(key)\" must be an integer (got \(type(of: value)))")
    }
}

/// A malformed `@state` request.
public struct StateProtocolError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Renders results and events as JSON (what `@state` answers).
public enum StateJSON {
    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    static func record(_ r: KVRecord) -> [String: Any] {
        var d: [String: Any] = ["key": text(r.key), "value": text(r.value), "create_revision": r.createRevision,
                                "mod_revision": r.modRevision, "version": r.version]
        if let lease = r.lease { d["lease"] = lease }
        return d
    }

    public static func object(_ result: StateResult) -> [String: Any] {
        switch result {
        case .failed(let failure):
            return ["ok": false, "error": "\(failure)"]
        case .ok(let reply):
            var d: [String: Any] = ["ok": true]
            switch reply {
            case let .put(revision, previous):
                d["revision"] = revision
                if let previous { d["previous"] = record(previous) }
            case let .deleted(revision, deleted):
                d["revision"] = revision
                d["deleted"] = deleted.map(record)
            case let .record(r, revision):
                d["revision"] = revision
                d["record"] = record(r)
            case let .records(records, more, revision):
                d["revision"] = revision
                d["records"] = records.map(record)
                d["more"] = more
            case let .txn(succeeded, revision, _):
                d["revision"] = revision
                d["succeeded"] = succeeded
            case let .lease(lease, revision):
                d["revision"] = revision
                d["lease"] = ["id": lease.id, "ttl_ms": lease.ttlMs, "expires_at_ms": lease.expiresAtMs]
            case let .leaseRevoked(id, keys, revision):
                d["revision"] = revision
                d["lease"] = id
                d["deleted_keys"] = keys.map(text)
            case let .ticked(nowMs, expired, revision):
                d["revision"] = revision
                d["now_ms"] = nowMs
                d["expired_leases"] = expired
            case let .locked(info, revision):
                d["revision"] = revision
                d["lock"] = ["name": info.name, "owner": info.owner, "lease": info.lease ?? 0]
            case let .unlocked(name, revision):
                d["revision"] = revision
                d["unlocked"] = name
            case let .registered(entry, _):
                d["registered"] = "\(entry)"
            case let .released(entries):
                d["released"] = entries.map { "\($0)" }
            }
            return d
        }
    }

    public static func events(_ events: [KVEvent], watchID: UInt64, next: Int64) -> [String: Any] {
        ["watch": watchID, "next_revision": next, "events": events.map { e -> [String: Any] in
            ["type": e.kind == .put ? "put" : "delete", "key": text(e.key), "value": text(e.value),
             "revision": e.revision, "version": e.version]
        }]
    }

    public static func encode(_ obj: [String: Any]) -> Data {
        (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data("{\"ok\":false,\"error\":\"encoding\"}".utf8)
    }
}
