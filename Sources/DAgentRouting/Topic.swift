import DAgentWire

/// The limits on topics and patterns (named options of the node config).
public struct TopicLimits: Sendable, Equatable {
    /// `max_topic_bytes`: the longest topic or pattern, in UTF-8 bytes.
    public var maxTopicBytes: Int = 256
    /// `max_topic_tokens`: the most dot-separated tokens in a topic or pattern.
    public var maxTopicTokens: Int = 32
    public init() {}
}

/// A topic or pattern that breaks a rule; `rule` names the rule, the
/// description names the value too.
public struct TopicError: Error, Equatable, CustomStringConvertible, Sendable {
    public var value: String
    public var rule: String
    public var description: String { "bad topic '\(value.count > 80 ? value.prefix(80) + "…" : Substring(value))': \(rule)" }
    /// `bad topic: 'VALUE': RULE`.
    public var asDAgentError: DAgentError { DAgentError(.badTopic, "'\(value.count > 80 ? value.prefix(80) + "…" : Substring(value))': \(rule)") }
}

/// Topics and patterns, as NATS subjects: dot-separated tokens
/// (`orders.eu.created`). A pattern may use `*` for exactly one token and,
/// as its last token, `>` for one or more tokens. Tokens are non-empty and
/// hold no whitespace, no control characters and (in topics) no `*` or `>`.
public enum TopicRules {
    /// Checks a topic a message is published on.
    public static func checkTopic(_ topic: String, limits: TopicLimits) throws(TopicError) {
        try check(topic, pattern: false, limits: limits)
    }

    /// Checks a subscription pattern.
    public static func checkPattern(_ pattern: String, limits: TopicLimits) throws(TopicError) {
        try check(pattern, pattern: true, limits: limits)
    }

    /// Queue group names: 1–255 bytes, no whitespace or control characters ("" = no group).
    public static func checkQueue(_ queue: String) throws(TopicError) {
        if queue.utf8.count > 255 { throw TopicError(value: queue, rule: "a queue group name is at most 255 bytes (got \(queue.utf8.count))") }
        for b in queue.utf8 where b <= 0x20 || b == 0x7F {
            throw TopicError(value: queue, rule: "a queue group name may not contain whitespace or control characters (byte 0x\(String(b, radix: 16)))")
        }
    }

    static func check(_ s: String, pattern: Bool, limits: TopicLimits) throws(TopicError) {
        let what = pattern ? "pattern" : "topic"
        let utf8 = s.utf8
        if utf8.isEmpty { throw TopicError(value: s, rule: "a \(what) may not be empty") }
        if utf8.count > limits.maxTopicBytes {
            throw TopicError(value: s, rule: "\(what) of \(utf8.count) bytes exceeds max_topic_bytes=\(limits.maxTopicBytes)")
        }
        var tokens = 1
        var tokenStart = true
        var tokenLength = 0
        var wildcardToken = false   // the current token is `*` or `>` so far
        var afterFullWildcard = false
        for b in utf8 {
            if b == UInt8(ascii: ".") {
                if tokenLength == 0 { throw TopicError(value: s, rule: "empty token (a leading, trailing or double '.')") }
                if afterFullWildcard { throw TopicError(value: s, rule: "'>' must be the last token") }
                tokens += 1
                if tokens > limits.maxTopicTokens {
                    throw TopicError(value: s, rule: "more than max_topic_tokens=\(limits.maxTopicTokens) tokens")
                }
                tokenStart = true
                tokenLength = 0
                wildcardToken = false
                continue
            }
            if b <= 0x20 || b == 0x7F {
                throw TopicError(value: s, rule: "whitespace or control character (byte 0x\(String(b, radix: 16))) in a \(what)")
            }
            if b == UInt8(ascii: "*") || b == UInt8(ascii: ">") {
                if !pattern {
                    throw TopicError(value: s, rule: "wildcard '\(Character(Unicode.Scalar(b)))' in a topic; wildcards belong in subscription patterns")
                }
                if !tokenStart { throw TopicError(value: s, rule: "wildcard '\(Character(Unicode.Scalar(b)))' inside a token; it must be a whole token") }
                wildcardToken = true
                if b == UInt8(ascii: ">") { afterFullWildcard = true }
            } else if wildcardToken {
                throw TopicError(value: s, rule: "wildcard followed by other characters in one token; '*' and '>' must be whole tokens")
            }
            tokenStart = false
            tokenLength += 1
        }
        if tokenLength == 0 { throw TopicError(value: s, rule: "empty token (a leading, trailing or double '.')") }
    }

    /// True if `pattern` matches `topic` (both assumed valid). Used to
    /// invalidate cached matches and by tests; routing uses `Sublist`.
    public static func matches(pattern: String, topic: String) -> Bool {
        var p = pattern.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)[...]
        var t = topic.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)[...]
        while let pt = p.first {
            if pt.count == 1 && pt.first == UInt8(ascii: ">") { return !t.isEmpty }
            guard let tt = t.first else { return false }
            if !(pt.count == 1 && pt.first == UInt8(ascii: "*")) && !pt.elementsEqual(tt) { return false }
            p = p.dropFirst()
            t = t.dropFirst()
        }
        return t.isEmpty
    }
}

extension Dagent_Envelope {
    /// The topic of a PUBLISH envelope (carried in `dst`).
    public var topic: String { dst }
}
