import Foundation

/// Message types of the `@state` service (reserved range).
public enum StateTypes {
    /// A request to the group; payload is a JSON `StateRequestBody`.
    public static let request: UInt32 = 0xFFFF_0100
    /// A watch delivery pushed to a client; payload is a JSON `StateWatchEvent`.
    public static let watchEvent: UInt32 = 0xFFFF_0101
    /// A backup chunk request (`StateRequestBody` with `backup` and `offset`); the reply
    /// payload is the raw bytes of the chunk (an error is a JSON `StateAnswer`).
    public static let backupChunk: UInt32 = 0xFFFF_0102
    /// The reserved name the root group serves.
    public static let serviceName = "@state"
}

/// The one JSON encoding of `@state`: keys in snake_case, absent fields omitted,
/// keys sorted (so answers are byte-stable). Both sides use these coders.
public enum StateCoding {
    /// The encoder every `@state` document is written with.
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys]
        return e
    }

    /// The decoder every `@state` document is read with.
    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }

    /// Encodes `value`; a failure (which Codable structs of plain fields cannot produce)
    /// becomes an error answer rather than a trap.
    public static func encode<T: Encodable>(_ value: T) -> Data {
        (try? encoder().encode(value)) ?? Data("{\"error\":\"cannot encode the answer\",\"ok\":false}".utf8)
    }
}

/// One `@state` request. `op` says which; each op reads only its own fields:
///
/// ```json
/// {"op":"put","key":"k","value":"v","lease":7}        {"op":"get","key":"k"}
/// {"op":"del","key":"k"}   {"op":"delprefix","prefix":"p"}   {"op":"range","prefix":"p","limit":10}
/// {"op":"cas","key":"k","value":"new","expect_value":"old" | "expect_mod":5 | "expect_absent":true}
/// {"op":"txn","compare":[{"key":"k","value":"v"}],"success":[{"op":"put","key":"k","value":"w"}],"failure":[{"op":"get","key":"k"}]}
/// {"op":"lease_grant","ttl_ms":5000}  {"op":"lease_keepalive","id":7}  {"op":"lease_revoke","id":7}
/// {"op":"lock","name":"n","owner":"me","lease":7}     {"op":"unlock","name":"n","owner":"me"}
/// {"op":"watch","prefix":"p","from":12,"id":1}        {"op":"unwatch","id":1}
/// {"op":"status"}   {"op":"backup"} → {"backup":{...}}   then chunks (`StateTypes.backupChunk`)
/// {"op":"member_list"}  {"op":"member_add","node":4,"address":"tcp://h:p"}  {"op":"member_remove","node":4}
/// {"op":"transfer","node":2}
/// ```
/// `stream` (default 1) picks the Raft stream of a multi-stream group. Keys and values are UTF-8 text.
public struct StateRequestBody: Codable, Equatable, Sendable {
    public var op: String
    public var key: String?
    public var value: String?
    public var prefix: String?
    public var limit: Int?
    public var lease: UInt64?
    public var expectValue: String?
    public var expectMod: Int64?
    public var expectAbsent: Bool?
    public var compare: [StateCompareJSON]?
    public var success: [StateOpJSON]?
    public var failure: [StateOpJSON]?
    public var ttlMs: UInt64?
    public var id: UInt64?
    public var name: String?
    public var owner: String?
    public var from: Int64?
    public var stream: UInt64?
    /// backup chunks: the backup id and the byte offset asked for.
    public var backup: UInt64?
    public var offset: UInt64?
    /// membership and leadership transfer: the member and its address.
    public var node: UInt64?
    public var address: String?

    public init(op: String) { self.op = op }
}

/// One compare of a transaction: `key` and exactly one target.
public struct StateCompareJSON: Codable, Equatable, Sendable {
    public var key: String
    public var value: String?
    public var version: Int64?
    public var modRevision: Int64?
    public var createRevision: Int64?
    public var exists: Bool?
    public var missing: Bool?

    public init(key: String) { self.key = key }
}

/// One op of a transaction branch: `put`, `del`, `delprefix`, `get` or `range`.
public struct StateOpJSON: Codable, Equatable, Sendable {
    public var op: String
    public var key: String?
    public var value: String?
    public var prefix: String?
    public var limit: Int?
    public var lease: UInt64?

    public init(op: String) { self.op = op }
}

/// A key as `@state` shows it.
public struct StateRecordJSON: Codable, Equatable, Sendable {
    public var key: String
    public var value: String
    public var createRevision: Int64
    public var modRevision: Int64
    public var version: Int64
    public var lease: UInt64?
}

/// A lease as `@state` shows it.
public struct StateLeaseJSON: Codable, Equatable, Sendable {
    public var id: UInt64
    public var ttlMs: UInt64?
    public var expiresAtMs: UInt64?
}

/// A lock holder; `token` is the fencing token (the lock's create revision, which grows
/// with every new holder).
public struct StateLockJSON: Codable, Equatable, Sendable {
    public var name: String
    public var owner: String
    public var lease: UInt64
    public var token: Int64
}

/// The response of one op of a transaction branch.
public struct StateOpResponseJSON: Codable, Equatable, Sendable {
    public var op: String
    public var previous: StateRecordJSON?
    public var deleted: [StateRecordJSON]?
    public var record: StateRecordJSON?
    public var records: [StateRecordJSON]?
    public var more: Bool?
}

/// A Raft member as `member_list` and `status` show it.
public struct StateMemberJSON: Codable, Equatable, Sendable {
    public var node: UInt64
    public var address: String
    public var voter: Bool
    public var connected: Bool?
    public var match: UInt64?
}

/// What `{"op":"backup"}` answers: fetch `size` bytes in chunks of at most `chunk_bytes`
/// with `StateTypes.backupChunk`, then check `checksum` (`crc32c:` + 8 hex digits); ask
/// once more at `offset == size` to release the image on the replica.
public struct StateBackupJSON: Codable, Equatable, Sendable {
    public var id: UInt64
    public var size: UInt64
    public var chunkBytes: UInt64
    public var checksum: String
    public var revision: Int64
    public var index: UInt64
}

/// One answer of `@state`. `ok` is always present; on failure `error` says why and `retry`
/// marks a transient one (no leader yet). Every other field belongs to some op.
public struct StateAnswer: Codable, Equatable, Sendable {
    public var ok: Bool
    public var error: String?
    public var retry: Bool?
    /// The failure's kind (`key_not_found`, `compare_failed`, `lock_held`, ...) for clients.
    public var code: String?
    public var revision: Int64?
    public var previous: StateRecordJSON?
    public var record: StateRecordJSON?
    public var records: [StateRecordJSON]?
    public var more: Bool?
    public var deleted: [StateRecordJSON]?
    public var succeeded: Bool?
    public var responses: [StateOpResponseJSON]?
    public var lease: StateLeaseJSON?
    public var deletedKeys: [String]?
    public var nowMs: UInt64?
    public var expiredLeases: [UInt64]?
    public var lock: StateLockJSON?
    public var unlocked: String?
    public var registered: String?
    public var released: [String]?
    /// watch
    public var watch: UInt64?
    public var from: Int64?
    /// status
    public var nodeId: UInt64?
    public var name: String?
    public var stream: UInt64?
    public var streams: [UInt64]?
    public var role: String?
    public var term: UInt64?
    public var leader: UInt64?
    public var commit: UInt64?
    public var applied: UInt64?
    public var members: [UInt64]?
    public var peersConnected: [UInt64]?
    public var snapshotIndex: UInt64?
    /// member_list
    public var memberList: [StateMemberJSON]?
    /// backup
    public var backup: StateBackupJSON?

    public init(ok: Bool) { self.ok = ok }

    /// A failure answer.
    public static func failure(_ error: String, code: String? = nil, retry: Bool = false) -> StateAnswer {
        var a = StateAnswer(ok: false)
        a.error = error
        a.code = code
        if retry { a.retry = true }
        return a
    }
}

/// A watch delivery: events (with the revision to resume from), or the news that the
/// watch fell behind compaction (`compacted`, with `oldest`, the oldest revision a new
/// watch can start from).
public struct StateWatchEvent: Codable, Equatable, Sendable {
    public var watch: UInt64
    public var nextRevision: Int64?
    public var events: [StateEventJSON]?
    public var compacted: Int64?
    public var oldest: Int64?
}

/// One change delivered to a watcher.
public struct StateEventJSON: Codable, Equatable, Sendable {
    public var type: String
    public var key: String
    public var value: String
    public var revision: Int64
    public var version: Int64
    public var createRevision: Int64?
    public var lease: UInt64?
    public var prevValue: String?
}

/// A malformed `@state` request.
public struct StateProtocolError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
