import Foundation
import DAgentState

/// A parsed `@state` request, as the replica serves it.
public enum StateRequest: Equatable {
    case write(StateCommand)
    case read(StateCommand)
    case watch(prefix: [UInt8], from: Int64, clientID: UInt64)
    case unwatch(clientID: UInt64)
    case status
    case backup
    case memberList
    case memberAdd(node: UInt64, address: String)
    case memberRemove(node: UInt64)
    case transfer(node: UInt64)

    /// Parses a JSON request body; every malformed request throws `StateProtocolError`
    /// naming the op and the field (it never traps).
    public static func parse(_ data: Data, nowMs: UInt64, servingStream: UInt64 = 1) throws -> StateRequest {
        let body: StateRequestBody
        do {
            body = try StateCoding.decoder().decode(StateRequestBody.self, from: data)
        } catch DecodingError.keyNotFound(let key, _) where key.stringValue == "op" {
            throw StateProtocolError("request has no \"op\"")
        } catch DecodingError.typeMismatch(_, let context) where context.codingPath.isEmpty {
            throw StateProtocolError("request is not a JSON object of @state")
        } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw StateProtocolError("field \"\(path)\" has the wrong type (\(context.debugDescription))")
        } catch {
            throw StateProtocolError("request is not a JSON object of @state")
        }
        if let stream = body.stream, stream != servingStream {
            throw StateProtocolError("stream \(stream) is not served here: this group serves stream \(servingStream) (one stream per process for now)")
        }
        return try parse(body, nowMs: nowMs)
    }

    /// Maps a decoded body to a request.
    public static func parse(_ body: StateRequestBody, nowMs: UInt64) throws -> StateRequest {
        let op = body.op
        func need<T>(_ v: T?, _ k: String, _ what: String) throws -> T {
            guard let v else { throw StateProtocolError("\(op): \"\(k)\" (\(what)) is required") }
            return v
        }
        func bytes(_ v: String?, _ k: String) throws -> [UInt8] { Array(try need(v, k, "a string").utf8) }
        let lease = body.lease.flatMap { $0 > 0 ? $0 : nil }
        switch op {
        case "put": return .write(.put(key: try bytes(body.key, "key"), value: try bytes(body.value, "value"), lease: lease))
        case "get": return .read(.get(key: try bytes(body.key, "key")))
        case "range": return .read(.range(prefix: try bytes(body.prefix, "prefix"), limit: max(0, body.limit ?? 0)))
        case "del": return .write(.delete(key: try bytes(body.key, "key")))
        case "delprefix": return .write(.deleteRange(prefix: try bytes(body.prefix, "prefix")))
        case "cas":
            let expected: KVExpectation
            if let v = body.expectValue {
                expected = .value(Array(v.utf8))
            } else if let m = body.expectMod {
                expected = .modRevision(m)
            } else if body.expectAbsent == true {
                expected = .absent
            } else {
                throw StateProtocolError("cas: one of expect_value, expect_mod, expect_absent is required")
            }
            return .write(.compareAndSet(key: try bytes(body.key, "key"), expected: expected,
                                         value: try bytes(body.value, "value"), lease: lease))
        case "txn":
            let txn = KVTxn(compares: try (body.compare ?? []).enumerated().map { try compare($0.element, index: $0.offset) },
                            success: try (body.success ?? []).enumerated().map { try txnOp($0.element, branch: "success", index: $0.offset) },
                            failure: try (body.failure ?? []).enumerated().map { try txnOp($0.element, branch: "failure", index: $0.offset) })
            return .write(.txn(txn))
        case "lease_grant":
            let ttl = try need(body.ttlMs, "ttl_ms", "a positive number of milliseconds")
            guard ttl > 0 else { throw StateProtocolError("lease_grant: \"ttl_ms\" must be > 0 (got 0)") }
            return .write(.leaseGrant(id: body.id ?? 0, ttlMs: ttl, now: nowMs))
        case "lease_keepalive": return .write(.leaseKeepAlive(id: try need(body.id, "id", "a lease id"), now: nowMs))
        case "lease_revoke": return .write(.leaseRevoke(id: try need(body.id, "id", "a lease id")))
        case "lock":
            return .write(.lock(name: try need(body.name, "name", "a string"), owner: try need(body.owner, "owner", "a string"),
                                lease: try need(body.lease, "lease", "a lease id")))
        case "unlock":
            return .write(.unlock(name: try need(body.name, "name", "a string"), owner: try need(body.owner, "owner", "a string")))
        case "watch": return .watch(prefix: try bytes(body.prefix, "prefix"), from: body.from ?? 0, clientID: try need(body.id, "id", "a watch id"))
        case "unwatch": return .unwatch(clientID: try need(body.id, "id", "a watch id"))
        case "status": return .status
        case "backup": return .backup
        case "member_list": return .memberList
        case "member_add":
            let node = try need(body.node, "node", "a node id > 0")
            guard node > 0 else { throw StateProtocolError("member_add: \"node\" must be > 0") }
            let address = try need(body.address, "address", "tcp://HOST:PORT")
            guard address.hasPrefix("tcp://"), address.split(separator: ":").count == 3 else {
                throw StateProtocolError("member_add: \"address\" must be tcp://HOST:PORT (got \"\(address)\")")
            }
            return .memberAdd(node: node, address: address)
        case "member_remove": return .memberRemove(node: try need(body.node, "node", "a node id"))
        case "transfer": return .transfer(node: try need(body.node, "node", "a node id"))
        default: throw StateProtocolError("unknown op \"\(op)\"; see `dagent state --help`")
        }
    }

    static func compare(_ c: StateCompareJSON, index: Int) throws -> KVCompare {
        var targets: [KVCompareTarget] = []
        if let v = c.value { targets.append(.value(Array(v.utf8))) }
        if let v = c.version { targets.append(.version(v)) }
        if let v = c.modRevision { targets.append(.modRevision(v)) }
        if let v = c.createRevision { targets.append(.createRevision(v)) }
        if let e = c.exists { targets.append(e ? .exists : .missing) }
        if let m = c.missing { targets.append(m ? .missing : .exists) }
        guard targets.count == 1 else {
            throw StateProtocolError("txn: compare[\(index)] on \"\(c.key)\" needs exactly one of value, version, mod_revision, create_revision, exists, missing (got \(targets.count))")
        }
        return KVCompare(key: Array(c.key.utf8), targets[0])
    }

    static func txnOp(_ o: StateOpJSON, branch: String, index: Int) throws -> KVOp {
        func need(_ v: String?, _ k: String) throws -> [UInt8] {
            guard let v else { throw StateProtocolError("txn: \(branch)[\(index)] \(o.op) needs \"\(k)\"") }
            return Array(v.utf8)
        }
        switch o.op {
        case "put": return .put(key: try need(o.key, "key"), value: try need(o.value, "value"), lease: o.lease.flatMap { $0 > 0 ? $0 : nil })
        case "del": return .delete(key: try need(o.key, "key"))
        case "delprefix": return .deleteRange(prefix: try need(o.prefix, "prefix"))
        case "get": return .get(key: try need(o.key, "key"))
        case "range": return .range(prefix: try need(o.prefix, "prefix"), limit: max(0, o.limit ?? 0))
        default: throw StateProtocolError("txn: \(branch)[\(index)] has unknown op \"\(o.op)\" (put, del, delprefix, get, range)")
        }
    }
}
