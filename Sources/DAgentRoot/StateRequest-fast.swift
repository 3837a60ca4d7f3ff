import DAgentState
import Foundation

extension StateRequest {
    /// The common requests, `{"op":"put","key":K,"value":V}` (with an optional `"lease":N`),
    /// `{"op":"get","key":K}` and `{"op":"del","key":K}` (each with an optional `"stream":N`,
    /// keys in any order), read without Foundation: once per write or read. Nil for anything
    /// else (another op or member, a duplicate member, a number that is not plain digits, a
    /// `\u` escape of a lone surrogate, invalid UTF-8, `null`, a stream not served here, ...):
    /// those go to `parse`, which gives the same request for every body this one takes.
    public static func parseCommon(_ data: Data, servingStream: UInt64 = 1) -> StateRequest? {
        data.withUnsafeBytes { raw in
            parseCommon(raw.bindMemory(to: UInt8.self), servingStream: servingStream)
        }
    }

    static func parseCommon(_ b: UnsafeBufferPointer<UInt8>, servingStream: UInt64) -> StateRequest? {
        var scan = CommonRequestScanner(b)
        guard let members = scan.members() else { return nil }
        guard let op = members.op else { return nil }
        if let stream = members.stream, stream != servingStream { return nil }
        if op.elementsEqual("put".utf8) {
            guard let key = members.key, let value = members.value else { return nil }
            return .write(.put(key: key, value: value, lease: members.lease.flatMap { $0 > 0 ? $0 : nil }))
        }
        if op.elementsEqual("get".utf8) {
            guard let key = members.key else { return nil }
            return .read(.get(key: key))
        }
        if op.elementsEqual("del".utf8) {
            guard let key = members.key else { return nil }
            return .write(.delete(key: key))
        }
        return nil
    }
}

/// The members of a common `@state` request, as `CommonRequestScanner` read them.
struct CommonRequestMembers {
    var op: [UInt8]?
    var key: [UInt8]?
    var value: [UInt8]?
    var lease: UInt64?
    var stream: UInt64?
}

/// A byte scanner for one flat JSON object whose members are `op`, `key`, `value` (strings)
/// and `lease`, `stream` (unsigned integers). Every other shape gives nil, never a trap.
struct CommonRequestScanner {
    let b: UnsafeBufferPointer<UInt8>
    var i = 0

    init(_ b: UnsafeBufferPointer<UInt8>) { self.b = b }

    mutating func skipSpace() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { i += 1 }
    }

    /// The whole document: one object, nothing but white space after it.
    mutating func members() -> CommonRequestMembers? {
        var m = CommonRequestMembers()
        skipSpace()
        guard i < b.count, b[i] == UInt8(ascii: "{") else { return nil }
        i += 1
        skipSpace()
        guard i < b.count, b[i] != UInt8(ascii: "}") else { return nil }
        while true {
            skipSpace()
            guard let name = plainName() else { return nil }
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: ":") else { return nil }
            i += 1
            skipSpace()
            switch name {
            case .op:
                guard m.op == nil, let s = string() else { return nil }
                m.op = s
            case .key:
                guard m.key == nil, let s = string() else { return nil }
                m.key = s
            case .value:
                guard m.value == nil, let s = string() else { return nil }
                m.value = s
            case .lease:
                guard m.lease == nil, let n = unsigned() else { return nil }
                m.lease = n
            case .stream:
                guard m.stream == nil, let n = unsigned() else { return nil }
                m.stream = n
            }
            skipSpace()
            guard i < b.count else { return nil }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            guard b[i] == UInt8(ascii: "}") else { return nil }
            i += 1
            break
        }
        skipSpace()
        return i == b.count ? m : nil
    }

    /// The members the fast path knows.
    enum Member: CaseIterable {
        case op, key, value, lease, stream
        var name: StaticString {
            switch self {
            case .op: return "op"
            case .key: return "key"
            case .value: return "value"
            case .lease: return "lease"
            case .stream: return "stream"
            }
        }
    }

    /// A member name without escapes, if it is one of the five the fast path knows.
    mutating func plainName() -> Member? {
        guard i < b.count, b[i] == UInt8(ascii: "\"") else { return nil }
        let start = i + 1
        var j = start
        while j < b.count, b[j] != UInt8(ascii: "\""), b[j] != UInt8(ascii: "\\"), j - start < 8 { j += 1 }
        guard j < b.count, b[j] == UInt8(ascii: "\"") else { return nil }
        i = j + 1
        let name = UnsafeBufferPointer(rebasing: b[start..<j])
        for member in Member.allCases {
            let known = member.name
            if name.elementsEqual(UnsafeBufferPointer(start: known.utf8Start, count: known.utf8CodeUnitCount)) { return member }
        }
        return nil
    }

    /// A JSON string's UTF-8 bytes, escapes decoded; nil for a raw control character, a
    /// malformed escape, a lone surrogate or invalid UTF-8.
    mutating func string() -> [UInt8]? {
        guard i < b.count, b[i] == UInt8(ascii: "\"") else { return nil }
        i += 1
        var out: [UInt8] = []
        var plainFrom = i
        var ascii = true
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: b[plainFrom..<i]))
                i += 1
                if !ascii {
                    guard out.withUnsafeBufferPointer({ String(validating: $0, as: UTF8.self) }) != nil else { return nil }
                }
                return out
            }
            if c < 0x20 { return nil }
            if c >= 0x80 { ascii = false }
            if c == UInt8(ascii: "\\") {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: b[plainFrom..<i]))
                i += 1
                guard i < b.count else { return nil }
                let e = b[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    guard let unit = hex4() else { return nil }
                    var scalarValue = UInt32(unit)
                    if (0xD800..<0xDC00).contains(unit) {
                        // A high surrogate must be followed by an escaped low one.
                        guard i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else { return nil }
                        i += 2
                        guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                        scalarValue = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(unit) {
                        return nil
                    }
                    guard let scalar = Unicode.Scalar(scalarValue) else { return nil }
                    out.append(contentsOf: UTF8.encode(scalar)!)
                default:
                    return nil
                }
                plainFrom = i
                continue
            }
            i += 1
        }
        return nil
    }

    /// Four hex digits of a `\u` escape.
    mutating func hex4() -> UInt16? {
        guard i + 4 <= b.count else { return nil }
        var v: UInt16 = 0
        for _ in 0..<4 {
            let c = b[i]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: return nil
            }
            v = v << 4 | UInt16(d)
            i += 1
        }
        return v
    }

    /// Plain decimal digits (no sign, fraction, exponent or leading zero), at most 19 of
    /// them so that the value always fits a `UInt64`.
    mutating func unsigned() -> UInt64? {
        let start = i
        var v: UInt64 = 0
        while i < b.count, b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") {
            v = v &* 10 &+ UInt64(b[i] - UInt8(ascii: "0"))
            i += 1
        }
        let digits = i - start
        guard digits >= 1, digits <= 19, !(digits > 1 && b[start] == UInt8(ascii: "0")) else { return nil }
        return v
    }
}
