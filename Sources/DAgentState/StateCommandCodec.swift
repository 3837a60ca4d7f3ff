// Compact binary encoding of `StateCommand` (the payload of a Raft entry).
//
// Layout: format version byte (1), command tag byte, then the command's fields in
// declaration order using the primitives of StateBytes.swift. Tags are part of the
// replicated format: never renumber them, only add new ones.

extension StateCommand {
    /// The encoding format version written first in every command.
    public static let formatVersion: UInt8 = 1

    private enum Tag: UInt8 {
        case put = 1, delete, deleteRange, get, range, compareAndSet, txn
        case leaseGrant, leaseKeepAlive, leaseRevoke, tick
        case lock, unlock, registerName, releaseName, releaseAllFor
    }

    /// Encodes the command as the bytes of a Raft entry.
    public func encode() -> [UInt8] {
        var w = StateByteWriter()
        w.u8(StateCommand.formatVersion)
        switch self {
        case let .put(key, value, lease):
            w.u8(Tag.put.rawValue); w.blob(key); w.blob(value); w.optionalUVarint(lease)
        case let .delete(key):
            w.u8(Tag.delete.rawValue); w.blob(key)
        case let .deleteRange(prefix):
            w.u8(Tag.deleteRange.rawValue); w.blob(prefix)
        case let .get(key):
            w.u8(Tag.get.rawValue); w.blob(key)
        case let .range(prefix, limit):
            w.u8(Tag.range.rawValue); w.blob(prefix); w.int(limit)
        case let .compareAndSet(key, expected, value, lease):
            w.u8(Tag.compareAndSet.rawValue); w.blob(key)
            Self.write(expected, to: &w)
            w.blob(value); w.optionalUVarint(lease)
        case let .txn(txn):
            w.u8(Tag.txn.rawValue)
            w.uvarint(UInt64(txn.compares.count))
            for c in txn.compares { Self.write(c, to: &w) }
            for branch in [txn.success, txn.failure] {
                w.uvarint(UInt64(branch.count))
                for op in branch { Self.write(op, to: &w) }
            }
        case let .leaseGrant(id, ttlMs, now):
            w.u8(Tag.leaseGrant.rawValue); w.uvarint(id); w.uvarint(ttlMs); w.uvarint(now)
        case let .leaseKeepAlive(id, now):
            w.u8(Tag.leaseKeepAlive.rawValue); w.uvarint(id); w.uvarint(now)
        case let .leaseRevoke(id):
            w.u8(Tag.leaseRevoke.rawValue); w.uvarint(id)
        case let .tick(now):
            w.u8(Tag.tick.rawValue); w.uvarint(now)
        case let .lock(name, owner, lease):
            w.u8(Tag.lock.rawValue); w.string(name); w.string(owner); w.uvarint(lease)
        case let .unlock(name, owner):
            w.u8(Tag.unlock.rawValue); w.string(name); w.string(owner)
        case let .registerName(name, session, replica, agent):
            w.u8(Tag.registerName.rawValue); w.string(name); w.uvarint(session); w.uvarint(replica); w.string(agent)
        case let .releaseName(name, session):
            w.u8(Tag.releaseName.rawValue); w.string(name); w.uvarint(session)
        case let .releaseAllFor(owner):
            w.u8(Tag.releaseAllFor.rawValue)
            switch owner {
            case let .agent(agent): w.u8(1); w.string(agent)
            case let .replica(replica): w.u8(2); w.uvarint(replica)
            }
        }
        return w.bytes
    }

    /// Decodes bytes produced by `encode()`.
    ///
    /// Throws `StateCodecError` for anything malformed (truncated, unknown tag, bad UTF-8,
    /// oversized lengths, trailing bytes); it never traps, whatever the input.
    public static func decode(_ bytes: [UInt8]) throws -> StateCommand {
        var r = StateByteReader(bytes)
        let version = try r.u8("format version")
        guard version == formatVersion else {
            throw StateCodecError.unsupportedVersion(found: version, supported: formatVersion)
        }
        let tagOffset = r.offset
        let rawTag = try r.u8("command tag")
        guard let tag = Tag(rawValue: rawTag) else {
            throw StateCodecError.unknownTag(field: "command", tag: rawTag, offset: tagOffset)
        }
        let command: StateCommand
        switch tag {
        case .put:
            command = .put(key: try r.blob("put.key"), value: try r.blob("put.value"),
                           lease: try r.optionalUVarint("put.lease"))
        case .delete:
            command = .delete(key: try r.blob("delete.key"))
        case .deleteRange:
            command = .deleteRange(prefix: try r.blob("deleteRange.prefix"))
        case .get:
            command = .get(key: try r.blob("get.key"))
        case .range:
            command = .range(prefix: try r.blob("range.prefix"), limit: try r.int("range.limit"))
        case .compareAndSet:
            let key = try r.blob("cas.key")
            let expected = try readExpectation(&r)
            command = .compareAndSet(key: key, expected: expected, value: try r.blob("cas.value"),
                                     lease: try r.optionalUVarint("cas.lease"))
        case .txn:
            let nc = try r.count("txn.compares", minBytesEach: 2)
            var compares: [KVCompare] = []
            compares.reserveCapacity(nc)
            for _ in 0 ..< nc { compares.append(try readCompare(&r)) }
            let ns = try r.count("txn.success", minBytesEach: 2)
            var success: [KVOp] = []
            success.reserveCapacity(ns)
            for _ in 0 ..< ns { success.append(try readOp(&r)) }
            let nf = try r.count("txn.failure", minBytesEach: 2)
            var failure: [KVOp] = []
            failure.reserveCapacity(nf)
            for _ in 0 ..< nf { failure.append(try readOp(&r)) }
            command = .txn(KVTxn(compares: compares, success: success, failure: failure))
        case .leaseGrant:
            command = .leaseGrant(id: try r.uvarint("leaseGrant.id"), ttlMs: try r.uvarint("leaseGrant.ttlMs"),
                                  now: try r.uvarint("leaseGrant.now"))
        case .leaseKeepAlive:
            command = .leaseKeepAlive(id: try r.uvarint("leaseKeepAlive.id"), now: try r.uvarint("leaseKeepAlive.now"))
        case .leaseRevoke:
            command = .leaseRevoke(id: try r.uvarint("leaseRevoke.id"))
        case .tick:
            command = .tick(now: try r.uvarint("tick.now"))
        case .lock:
            command = .lock(name: try r.string("lock.name"), owner: try r.string("lock.owner"),
                            lease: try r.uvarint("lock.lease"))
        case .unlock:
            command = .unlock(name: try r.string("unlock.name"), owner: try r.string("unlock.owner"))
        case .registerName:
            command = .registerName(name: try r.string("registerName.name"),
                                    session: try r.uvarint("registerName.session"),
                                    replica: try r.uvarint("registerName.replica"),
                                    agent: try r.string("registerName.agent"))
        case .releaseName:
            command = .releaseName(name: try r.string("releaseName.name"),
                                   session: try r.uvarint("releaseName.session"))
        case .releaseAllFor:
            let at = r.offset
            switch try r.u8("releaseAllFor.kind") {
            case 1: command = .releaseAllFor(.agent(try r.string("releaseAllFor.agent")))
            case 2: command = .releaseAllFor(.replica(try r.uvarint("releaseAllFor.replica")))
            case let other: throw StateCodecError.unknownTag(field: "releaseAllFor.kind", tag: other, offset: at)
            }
        }
        try r.finish()
        return command
    }

    // MARK: - Nested pieces

    private static func write(_ e: KVExpectation, to w: inout StateByteWriter) {
        switch e {
        case let .modRevision(rev): w.u8(1); w.varint(rev)
        case let .value(v): w.u8(2); w.blob(v)
        case .absent: w.u8(3)
        }
    }

    private static func readExpectation(_ r: inout StateByteReader) throws -> KVExpectation {
        let at = r.offset
        switch try r.u8("cas.expected") {
        case 1: return .modRevision(try r.varint("cas.expected.modRevision"))
        case 2: return .value(try r.blob("cas.expected.value"))
        case 3: return .absent
        case let other: throw StateCodecError.unknownTag(field: "cas.expected", tag: other, offset: at)
        }
    }

    private static func write(_ c: KVCompare, to w: inout StateByteWriter) {
        w.blob(c.key)
        switch c.target {
        case let .value(v): w.u8(1); w.blob(v)
        case let .version(n): w.u8(2); w.varint(n)
        case let .modRevision(n): w.u8(3); w.varint(n)
        case let .createRevision(n): w.u8(4); w.varint(n)
        case .exists: w.u8(5)
        case .missing: w.u8(6)
        }
    }

    private static func readCompare(_ r: inout StateByteReader) throws -> KVCompare {
        let key = try r.blob("compare.key")
        let at = r.offset
        switch try r.u8("compare.target") {
        case 1: return KVCompare(key: key, .value(try r.blob("compare.value")))
        case 2: return KVCompare(key: key, .version(try r.varint("compare.version")))
        case 3: return KVCompare(key: key, .modRevision(try r.varint("compare.modRevision")))
        case 4: return KVCompare(key: key, .createRevision(try r.varint("compare.createRevision")))
        case 5: return KVCompare(key: key, .exists)
        case 6: return KVCompare(key: key, .missing)
        case let other: throw StateCodecError.unknownTag(field: "compare.target", tag: other, offset: at)
        }
    }

    private static func write(_ op: KVOp, to w: inout StateByteWriter) {
        switch op {
        case let .put(key, value, lease): w.u8(1); w.blob(key); w.blob(value); w.optionalUVarint(lease)
        case let .delete(key): w.u8(2); w.blob(key)
        case let .deleteRange(prefix): w.u8(3); w.blob(prefix)
        case let .get(key): w.u8(4); w.blob(key)
        case let .range(prefix, limit): w.u8(5); w.blob(prefix); w.int(limit)
        }
    }

    private static func readOp(_ r: inout StateByteReader) throws -> KVOp {
        let at = r.offset
        switch try r.u8("op") {
        case 1: return .put(key: try r.blob("op.put.key"), value: try r.blob("op.put.value"),
                            lease: try r.optionalUVarint("op.put.lease"))
        case 2: return .delete(key: try r.blob("op.delete.key"))
        case 3: return .deleteRange(prefix: try r.blob("op.deleteRange.prefix"))
        case 4: return .get(key: try r.blob("op.get.key"))
        case 5: return .range(prefix: try r.blob("op.range.prefix"), limit: try r.int("op.range.limit"))
        case let other: throw StateCodecError.unknownTag(field: "op", tag: other, offset: at)
        }
    }
}
