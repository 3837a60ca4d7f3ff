import Crypto

/// A node's session: 128 random bits that reclaim its name after a restart.
/// It is a secret between a child and the parent that issued it (and the
/// child's session file): names travel up the tree and into the root group's
/// directory with the session's `verifier`, a hash that recognises a reclaim
/// but cannot make one. `dagent tree` shows neither.
public struct SessionSecret: Equatable, Hashable, Sendable {
    public static let byteCount = 16
    public let bytes: [UInt8]

    /// nil unless exactly `byteCount` bytes.
    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.byteCount else { return nil }
        self.bytes = bytes
    }

    /// A fresh session from the system's random source.
    public static func random() -> SessionSecret {
        var g = SystemRandomNumberGenerator()
        return SessionSecret(bytes: (0..<byteCount).map { _ in UInt8.random(in: 0...255, using: &g) })!
    }

    /// The first 8 bytes of SHA-256("dagent-session-v1" | bytes), never 0
    /// (0 means "no session" in a NameRecord).
    public var verifier: UInt64 {
        let digest = Array(SHA256.hash(data: Array("dagent-session-v1".utf8) + bytes))
        let v = digest.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return v == 0 ? 1 : v
    }

    /// 32 lowercase hex digits (the session file's form).
    public var hex: String {
        bytes.map { b in String(b >> 4, radix: 16) + String(b & 0xF, radix: 16) }.joined()
    }

    /// Parses `hex` (32 hex digits); nil otherwise.
    public init?(hex text: String) {
        let digits = Array(text.utf8)
        guard digits.count == Self.byteCount * 2 else { return nil }
        var out: [UInt8] = []
        for i in stride(from: 0, to: digits.count, by: 2) {
            guard let hi = Self.nibble(digits[i]), let lo = Self.nibble(digits[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
        }
        self.bytes = out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
