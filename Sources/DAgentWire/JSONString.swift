import NIOCore

/// JSON string literals: quotes, backslashes and control characters escaped, UTF-8 kept.
/// One escaper for every hand-encoded JSON (push frames, /healthz, `dagent sub --json`).
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
}
