/// NATS-style topics and patterns: dot-separated tokens; in a pattern `*`
/// matches one token and `>` (last token only) matches one or more.
public enum PushTopic {
    /// Why `topic` is not a valid topic to publish on, or nil.
    public static func problem(topic: String, maxBytes: Int) -> String? {
        problem(topic, maxBytes: maxBytes, wildcards: false)
    }

    /// Why `pattern` is not a valid subscription pattern, or nil.
    public static func problem(pattern: String, maxBytes: Int) -> String? {
        problem(pattern, maxBytes: maxBytes, wildcards: true)
    }

    /// Checked byte by byte (once or twice per published message): no Foundation, no
    /// allocation unless there is a problem to describe.
    static func problem(_ s: String, maxBytes: Int, wildcards: Bool) -> String? {
        let what = wildcards ? "pattern" : "topic"
        if s.isEmpty { return "the \(what) is empty" }
        let n = s.utf8.count
        if n > maxBytes { return "the \(what) is \(n) bytes, over max_topic_bytes=\(maxBytes)" }
        let star = UInt8(ascii: "*"), gt = UInt8(ascii: ">"), dot = UInt8(ascii: ".")
        let u = s.utf8
        var start = u.startIndex
        while true {
            let end = u[start...].firstIndex(of: dot) ?? u.endIndex
            let last = end == u.endIndex
            let t = u[start..<end]
            if t.isEmpty { return "the \(what) '\(s)' has an empty token (tokens are separated by single dots)" }
            var wild = 0
            for b in t {
                if b <= 0x20 || b == 0x7F { return "the \(what) '\(s)' contains a space or control character" }
                if b == star || b == gt { wild += 1 }
            }
            if wild > 0 {
                let text = Substring(t)
                if t.count == 1 {
                    if !wildcards { return "the topic '\(s)' contains the wildcard '\(text)' (wildcards are for subscriptions only)" }
                    if t.first == gt && !last { return "in '\(s)', '>' must be the last token" }
                } else {
                    return "the \(what) '\(s)' has a token with a wildcard inside ('\(text)'); '*' and '>' must stand alone"
                }
            }
            if last { return nil }
            start = u.index(after: end)
        }
    }

    /// True if `pattern` has a wildcard token.
    public static func isWildcard(_ pattern: String) -> Bool {
        pattern == "*" || pattern == ">" || pattern.hasSuffix(".>") || pattern.hasSuffix(".*")
            || pattern.hasPrefix("*.") || pattern.contains(".*.")
    }

    /// True if the valid topic `topic` matches the valid pattern `pattern`.
    public static func matches(pattern: String, topic: String) -> Bool {
        if !isWildcard(pattern) { return pattern == topic }
        var p = pattern.utf8[...]
        var t = topic.utf8[...]
        while true {
            let pTok = p.prefix { $0 != UInt8(ascii: ".") }
            let tTok = t.prefix { $0 != UInt8(ascii: ".") }
            if pTok.elementsEqual(">".utf8) { return !t.isEmpty }
            if t.isEmpty { return false }
            if !(pTok.elementsEqual("*".utf8) || pTok.elementsEqual(tTok)) { return false }
            p = p.dropFirst(pTok.count)
            t = t.dropFirst(tTok.count)
            let pDone = p.isEmpty, tDone = t.isEmpty
            if pDone || tDone { return pDone && tDone }
            p = p.dropFirst()
            t = t.dropFirst()
        }
    }
}
