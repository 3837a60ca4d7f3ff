// Byte-level primitives shared by the command codec and the snapshot format.
//
// Integers are LEB128 varints (signed ones zig-zag encoded first), byte strings and
// strings are a varint length followed by the bytes, optionals are a 0/1 flag byte followed
// by the value when present. Decoding never traps: every length is checked against what is
// left before anything is sliced or allocated.

/// Why bytes could not be decoded as a `StateCommand` or a state-machine snapshot.
///
/// Every case names the field being read and the byte offset where decoding stopped, so a
/// malformed Raft entry or snapshot can be reported precisely. Decoding never traps.
public enum StateCodecError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input ended while `field` was being read.
    case truncated(field: String, offset: Int)
    /// A varint for `field` ran past 10 bytes or does not fit in 64 bits.
    case varintOverflow(field: String, offset: Int)
    /// A length or count for `field` is larger than the bytes left in the input.
    case lengthOutOfRange(field: String, length: UInt64, remaining: Int, offset: Int)
    /// The bytes of string `field` are not valid UTF-8.
    case invalidUTF8(field: String, offset: Int)
    /// A flag byte for `field` was neither 0 nor 1.
    case invalidFlag(field: String, value: UInt8, offset: Int)
    /// A tag byte for `field` names no known variant.
    case unknownTag(field: String, tag: UInt8, offset: Int)
    /// The format version byte is not one this build understands.
    case unsupportedVersion(found: UInt8, supported: UInt8)
    /// The input does not start with the expected magic bytes (snapshots only).
    case badMagic
    /// Decoding finished but `count` bytes were left over.
    case trailingBytes(count: Int, offset: Int)
    /// The bytes decode but describe an impossible state (snapshots only).
    case inconsistent(String)

    public var description: String {
        switch self {
        case let .truncated(field, offset):
            return "input ends while reading \(field) at byte \(offset)"
        case let .varintOverflow(field, offset):
            return "varint for \(field) at byte \(offset) overflows 64 bits"
        case let .lengthOutOfRange(field, length, remaining, offset):
            return "\(field) at byte \(offset) claims length \(length) but only \(remaining) bytes remain"
        case let .invalidUTF8(field, offset):
            return "\(field) at byte \(offset) is not valid UTF-8"
        case let .invalidFlag(field, value, offset):
            return "flag \(field) at byte \(offset) is \(value), expected 0 or 1"
        case let .unknownTag(field, tag, offset):
            return "unknown \(field) tag \(tag) at byte \(offset)"
        case let .unsupportedVersion(found, supported):
            return "format version \(found) is not supported (this build reads version \(supported))"
        case .badMagic:
            return "input does not start with the state snapshot magic bytes"
        case let .trailingBytes(count, offset):
            return "\(count) unexpected trailing bytes at byte \(offset)"
        case let .inconsistent(why):
            return "inconsistent snapshot: \(why)"
        }
    }
}

/// Appends primitives to a growing byte array (see the file comment for the layout).
package struct StateByteWriter {
    private(set) var bytes: [UInt8] = []

    package init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    package mutating func u8(_ v: UInt8) { bytes.append(v) }

    package mutating func uvarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// Zig-zag encoded signed varint.
    package mutating func varint(_ value: Int64) {
        uvarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    package mutating func int(_ value: Int) { varint(Int64(value)) }

    package mutating func bool(_ value: Bool) { bytes.append(value ? 1 : 0) }

    package mutating func blob(_ value: [UInt8]) {
        uvarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    package mutating func string(_ value: String) {
        let utf8 = Array(value.utf8)
        blob(utf8)
    }

    package mutating func optionalUVarint(_ value: UInt64?) {
        if let value { bool(true); uvarint(value) } else { bool(false) }
    }

    package mutating func optionalBlob(_ value: [UInt8]?) {
        if let value { bool(true); blob(value) } else { bool(false) }
    }
}

/// Reads primitives written by `StateByteWriter`, throwing `StateCodecError` on bad input.
package struct StateByteReader {
    package let bytes: [UInt8]
    private(set) var offset: Int = 0

    package init(_ bytes: [UInt8]) { self.bytes = bytes }

    package var remaining: Int { bytes.count - offset }
    package var isAtEnd: Bool { offset >= bytes.count }

    package mutating func u8(_ field: String) throws -> UInt8 {
        guard offset < bytes.count else { throw StateCodecError.truncated(field: field, offset: offset) }
        let b = bytes[offset]
        offset += 1
        return b
    }

    package mutating func uvarint(_ field: String) throws -> UInt64 {
        let start = offset
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < bytes.count else { throw StateCodecError.truncated(field: field, offset: start) }
            let b = bytes[offset]
            offset += 1
            if shift == 63 && b > 1 { throw StateCodecError.varintOverflow(field: field, offset: start) }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
            if shift > 63 { throw StateCodecError.varintOverflow(field: field, offset: start) }
        }
    }

    package mutating func varint(_ field: String) throws -> Int64 {
        let u = try uvarint(field)
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    package mutating func int(_ field: String) throws -> Int {
        Int(truncatingIfNeeded: try varint(field))
    }

    package mutating func bool(_ field: String) throws -> Bool {
        let at = offset
        let b = try u8(field)
        switch b {
        case 0: return false
        case 1: return true
        default: throw StateCodecError.invalidFlag(field: field, value: b, offset: at)
        }
    }

    /// A length or element count, checked against the bytes left (each element needs at
    /// least `minBytesEach` bytes), so a hostile count can never trigger a huge allocation.
    package mutating func count(_ field: String, minBytesEach: Int = 1) throws -> Int {
        let at = offset
        let n = try uvarint(field)
        let per = UInt64(max(minBytesEach, 0))
        if n > UInt64(Int32.max) || n &* per > UInt64(remaining) {
            throw StateCodecError.lengthOutOfRange(field: field, length: n, remaining: remaining, offset: at)
        }
        return Int(n)
    }

    package mutating func blob(_ field: String) throws -> [UInt8] {
        let n = try count(field)
        let out = Array(bytes[offset ..< offset + n])
        offset += n
        return out
    }

    package mutating func string(_ field: String) throws -> String {
        let at = offset
        let raw = try blob(field)
        let s = String(decoding: raw, as: UTF8.self)
        // `String(decoding:)` repairs invalid sequences; a repaired string re-encodes differently.
        guard s.utf8.elementsEqual(raw) else { throw StateCodecError.invalidUTF8(field: field, offset: at) }
        return s
    }

    package mutating func optionalUVarint(_ field: String) throws -> UInt64? {
        try bool(field) ? try uvarint(field) : nil
    }

    package mutating func optionalBlob(_ field: String) throws -> [UInt8]? {
        try bool(field) ? try blob(field) : nil
    }

    /// Throws unless every byte was consumed.
    package func finish() throws {
        if offset != bytes.count {
            throw StateCodecError.trailingBytes(count: bytes.count - offset, offset: offset)
        }
    }
}

/// Renders a key or value for error messages: quoted text when it is printable UTF-8,
/// hex otherwise; long inputs are cut at 64 bytes.
package func describeStateBytes(_ bytes: [UInt8]) -> String {
    let cut = bytes.count > 64
    let head = cut ? Array(bytes.prefix(64)) : bytes
    let text = String(decoding: head, as: UTF8.self)
    let printable = text.utf8.elementsEqual(head)
        && text.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7F }
    let body = printable ? "\"\(text)\"" : "0x" + head.map { b in
        let h = String(b, radix: 16)
        return h.count == 1 ? "0" + h : h
    }.joined()
    return cut ? body + "…(\(bytes.count) bytes)" : body
}
