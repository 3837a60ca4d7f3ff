/// Errors thrown when decoding malformed wire bytes. Decoding never traps.
public enum WireError: Error, Sendable, Equatable {
    /// Input ended in the middle of a field.
    case truncated
    /// A varint was longer than 10 bytes or overflowed 64 bits.
    case varintOverflow
    /// Unknown message type byte.
    case invalidMessageType(UInt8)
    /// Unknown entry type byte.
    case invalidEntryType(UInt8)
    /// Unknown conf change type byte.
    case invalidConfChangeType(UInt8)
    /// Unknown format version.
    case unsupportedVersion(UInt8)
    /// Bytes left over after a complete value.
    case trailingBytes(Int)
    /// A length or count field is larger than the remaining input.
    case invalidLength(UInt64)
    /// Reserved flag bits were set.
    case invalidFlags(UInt8)
}

/// Appends primitive values in the wire format (LEB128 varints, length-prefixed bytes).
package struct ByteWriter {
    package var bytes: [UInt8] = []
    package init() {}

    package mutating func u8(_ v: UInt8) { bytes.append(v) }

    package mutating func uvarint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    package mutating func blob(_ b: [UInt8]) {
        uvarint(UInt64(b.count))
        bytes.append(contentsOf: b)
    }
}

/// Reads primitive values with bounds checks; every failure is a thrown `WireError`.
package struct ByteReader {
    package let bytes: [UInt8]
    package var pos = 0

    package init(_ bytes: [UInt8]) { self.bytes = bytes }

    package var remaining: Int { bytes.count - pos }

    package mutating func u8() throws -> UInt8 {
        guard pos < bytes.count else { throw WireError.truncated }
        defer { pos += 1 }
        return bytes[pos]
    }

    package mutating func uvarint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        for i in 0..<10 {
            let b = try u8()
            if i == 9 && b > 1 { throw WireError.varintOverflow }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
        }
        throw WireError.varintOverflow
    }

    /// A length/count that must fit in the remaining input (each item >= `minItemSize`).
    package mutating func count(minItemSize: Int = 1) throws -> Int {
        let n = try uvarint()
        guard n <= UInt64(remaining / max(minItemSize, 1)) else { throw WireError.invalidLength(n) }
        return Int(n)
    }

    package mutating func blob() throws -> [UInt8] {
        let n = try count()
        defer { pos += n }
        return Array(bytes[pos..<(pos + n)])
    }

    package func finish() throws {
        if remaining != 0 { throw WireError.trailingBytes(remaining) }
    }
}

/// Current version byte prefixed to every serialized `Message`.
package let wireVersion: UInt8 = 1

extension Entry {
    /// Compact binary encoding: term, index (varints), type (byte), data (length-prefixed).
    public func serialize() -> [UInt8] {
        var w = ByteWriter()
        encode(into: &w)
        return w.bytes
    }

    /// Decodes an entry produced by `serialize()`. Throws `WireError` on malformed input.
    public init(bytes: [UInt8]) throws {
        var r = ByteReader(bytes)
        try self.init(from: &r)
        try r.finish()
    }

    package func encode(into w: inout ByteWriter) {
        w.uvarint(term)
        w.uvarint(index)
        w.u8(type.rawValue)
        w.blob(data)
    }

    package init(from r: inout ByteReader) throws {
        let term = try r.uvarint()
        let index = try r.uvarint()
        let t = try r.u8()
        guard let type = EntryType(rawValue: t) else { throw WireError.invalidEntryType(t) }
        let data = try r.blob()
        self.init(term: term, index: index, type: type, data: data)
    }
}

extension ConfChange {
    /// Compact binary encoding used as the data of `.confChange` entries.
    public func serialize() -> [UInt8] {
        var w = ByteWriter()
        w.u8(type.rawValue)
        w.uvarint(nodeID)
        w.blob(context)
        return w.bytes
    }

    /// Decodes a conf change. Throws `WireError` on malformed input.
    public init(bytes: [UInt8]) throws {
        var r = ByteReader(bytes)
        let t = try r.u8()
        guard let type = ConfChangeType(rawValue: t) else { throw WireError.invalidConfChangeType(t) }
        let node = try r.uvarint()
        let ctx = try r.blob()
        try r.finish()
        self.init(type: type, nodeID: node, context: ctx)
    }
}

extension Snapshot {
    package func encode(into w: inout ByteWriter) {
        w.uvarint(metadata.index)
        w.uvarint(metadata.term)
        w.uvarint(UInt64(metadata.membership.voters.count))
        for v in metadata.membership.voters { w.uvarint(v) }
        w.blob(data)
    }

    package init(from r: inout ByteReader) throws {
        let index = try r.uvarint()
        let term = try r.uvarint()
        let n = try r.count()
        var voters: [NodeID] = []
        voters.reserveCapacity(n)
        for _ in 0..<n { voters.append(try r.uvarint()) }
        let data = try r.blob()
        self.init(metadata: SnapshotMetadata(index: index, term: term, membership: Membership(voters: voters)),
                  data: data)
    }
}

extension Message {
    private static let flagReject: UInt8 = 1
    private static let flagSnapshot: UInt8 = 2

    /// Compact binary encoding for the network:
    /// `version, type, flags, from, to, term, logTerm, index, commit, rejectHint` (varints
    /// after the three leading bytes), `entries` (count + entries), optional snapshot,
    /// `context` (length-prefixed).
    public func serialize() -> [UInt8] {
        var w = ByteWriter()
        w.u8(wireVersion)
        w.u8(type.rawValue)
        w.u8((reject ? Self.flagReject : 0) | (snapshot != nil ? Self.flagSnapshot : 0))
        w.uvarint(from)
        w.uvarint(to)
        w.uvarint(term)
        w.uvarint(logTerm)
        w.uvarint(index)
        w.uvarint(commit)
        w.uvarint(rejectHint)
        w.uvarint(UInt64(entries.count))
        for e in entries { e.encode(into: &w) }
        if let s = snapshot { s.encode(into: &w) }
        w.blob(context)
        return w.bytes
    }

    /// Decodes a message produced by `serialize()`. Throws `WireError` on malformed or
    /// truncated input; never traps.
    public init(bytes: [UInt8]) throws {
        var r = ByteReader(bytes)
        let version = try r.u8()
        guard version == wireVersion else { throw WireError.unsupportedVersion(version) }
        let t = try r.u8()
        guard let type = MessageType(rawValue: t) else { throw WireError.invalidMessageType(t) }
        let flags = try r.u8()
        guard flags & ~(Self.flagReject | Self.flagSnapshot) == 0 else { throw WireError.invalidFlags(flags) }
        var m = Message(type: type)
        m.reject = flags & Self.flagReject != 0
        m.from = try r.uvarint()
        m.to = try r.uvarint()
        m.term = try r.uvarint()
        m.logTerm = try r.uvarint()
        m.index = try r.uvarint()
        m.commit = try r.uvarint()
        m.rejectHint = try r.uvarint()
        // An entry needs at least 4 bytes (term, index, type, data length).
        let n = try r.count(minItemSize: 4)
        var ents: [Entry] = []
        ents.reserveCapacity(n)
        for _ in 0..<n { ents.append(try Entry(from: &r)) }
        m.entries = ents
        if flags & Self.flagSnapshot != 0 { m.snapshot = try Snapshot(from: &r) }
        m.context = try r.blob()
        try r.finish()
        self = m
    }
}
