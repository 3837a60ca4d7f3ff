import NIOCore

/// JSON string literals: quotes, backslashes and control characters escaped, UTF-8 kept.
/// One place for every hand-encoded JSON: `write` for push frames, /healthz and
/// `dagent sub --json`; `writeAsJSONEncoder` where the bytes must be Foundation's
/// (the `@state` answers written by hand).
public enum JSONString {
    /// `s` as a JSON string literal.
    public static func quoted(_ s: String) -> String {
        var b = ByteBufferAllocator().buffer(capacity: s.utf8.count + 2)
        write(s, into: &b)
        return b.readString(length: b.readableBytes) ?? "\"\""
    }

    static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// Writes `s` as a JSON string literal (quotes, backslashes and control characters escaped).
    public static func write(_ s: String, into b: inout ByteBuffer) {
        b.writeInteger(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { bytes in
            var start = 0
            for i in 0..<bytes.count {
                let c = bytes[i]
                if c >= 0x20 && c != UInt8(ascii: "\"") && c != UInt8(ascii: "\\") { continue }
                if i > start { b.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[start..<i]))) }
                switch c {
                case UInt8(ascii: "\""): b.writeStaticString("\\\"")
                case UInt8(ascii: "\\"): b.writeStaticString("\\\\")
                case 0x0A: b.writeStaticString("\\n")
                case 0x0D: b.writeStaticString("\\r")
                case 0x09: b.writeStaticString("\\t")
                default:
                    b.writeStaticString("\\u00")
                    b.writeInteger(hex[Int(c >> 4)])
                    b.writeInteger(hex[Int(c & 0xF)])
                }
                start = i + 1
            }
            if bytes.count > start { b.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[start..<bytes.count]))) }
        }
        b.writeInteger(UInt8(ascii: "\""))
    }

    /// Appends `utf8` as a JSON string literal escaped exactly as Foundation's `JSONEncoder`
    /// escapes it (`/` as `\/`, `\b` and `\f` short forms); false, with nothing appended, if
    /// `utf8` is not valid UTF-8.
    public static func writeAsJSONEncoder(_ utf8: [UInt8], into bytes: inout [UInt8]) -> Bool {
        var ascii = true
        for c in utf8 where c >= 0x80 { ascii = false; break }
        if !ascii, utf8.withUnsafeBufferPointer({ String(validating: $0, as: UTF8.self) }) == nil { return false }
        bytes.append(UInt8(ascii: "\""))
        var from = 0
        for (i, c) in utf8.enumerated() {
            guard c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c == UInt8(ascii: "/") else { continue }
            if i > from { bytes.append(contentsOf: utf8[from..<i]) }
            from = i + 1
            bytes.append(UInt8(ascii: "\\"))
            switch c {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): bytes.append(c)
            case 0x08: bytes.append(UInt8(ascii: "b"))
            case 0x09: bytes.append(UInt8(ascii: "t"))
            case 0x0A: bytes.append(UInt8(ascii: "n"))
            case 0x0C: bytes.append(UInt8(ascii: "f"))
            case 0x0D: bytes.append(UInt8(ascii: "r"))
            default:
                bytes.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                          hex[Int(c >> 4)], hex[Int(c & 0xF)]])
            }
        }
        if utf8.count > from { bytes.append(contentsOf: utf8[from...]) }
        bytes.append(UInt8(ascii: "\""))
        return true
    }
}
