/// Path helpers shared by the router and the static file server.
public enum HTTPPath {
    /// Decodes `%XX` escapes; nil for a malformed escape or bytes that are not UTF-8.
    public static func percentDecode(_ s: String) -> String? {
        guard s.contains("%") else { return s }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count)
        var it = s.utf8.makeIterator()
        while let c = it.next() {
            if c == UInt8(ascii: "%") {
                guard let h = it.next(), let l = it.next(), let hv = hex(h), let lv = hex(l) else { return nil }
                bytes.append(hv << 4 | lv)
            } else {
                bytes.append(c)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// Checks a route or static prefix: starts with `/`, no query, no `..`.
    public static func problem(withPrefix p: String) -> String? {
        if !p.hasPrefix("/") { return "must start with '/'" }
        if p.contains("?") || p.contains("#") { return "must not contain '?' or '#'" }
        if p.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) { return "must not contain '.' or '..' segments" }
        if p.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) { return "must not contain control characters" }
        if p.utf8.count > 1024 { return "is longer than 1024 bytes" }
        return nil
    }
}
