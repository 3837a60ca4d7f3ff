import DAgentWire

/// The knobs of the routing core. Every limit here is a named option in the
/// YAML config and the options table of docs/config.md.
public struct NodeCoreConfig: Sendable {
    public var name: String
    public var role: Dagent_NodeRole
    /// Whether this node has parents configured (false at the top of the tree).
    public var hasParent: Bool
    /// `heartbeat_interval`: how often heartbeats go out on every link.
    public var heartbeatIntervalNs: UInt64 = 1_000_000_000
    /// `heartbeat_misses`: a peer silent for this many intervals is expired.
    public var heartbeatMisses: Int = 3
    /// `register_timeout`: a child that connects must register within this.
    public var registerTimeoutNs: UInt64 = 5_000_000_000
    /// `max_message_bytes`: the largest payload accepted.
    public var maxMessageBytes: Int = WireConstants.defaultMaxMessageBytes
    /// `send_queue_length`: messages held per destination while its route is not ready.
    public var sendQueueLength: Int = 1024
    /// `max_queued_destinations`: destinations that may have a queue at once.
    public var maxQueuedDestinations: Int = 10_000
    /// `queue_timeout`: a queued message older than this fails with NOT_READY.
    public var queueTimeoutNs: UInt64 = 60_000_000_000
    /// `hop_limit`: initial hop limit of envelopes sent from here.
    public var hopLimit: UInt32 = WireConstants.defaultHopLimit
    /// `secret`: when non-empty, children must present it to register.
    public var secret: String = ""
    /// `max_children`: direct child links allowed to register.
    public var maxChildren: Int = 4096
    /// What one peer may consume here (names, connections, registrations).
    public var limits = CoreLimits()
    /// Pub/sub limits: `max_topic_bytes`, `max_topic_tokens`, `max_subscriptions`,
    /// `max_link_interest`, `interest_cache_topics`.
    public var pubsub = PubSubLimits()

    public init(name: String, role: Dagent_NodeRole, hasParent: Bool) {
        self.name = name
        self.role = role
        self.hasParent = hasParent
    }
}

/// Rules for node names: 1–255 bytes of letters, digits and `. _ - : /`.
public enum NameRules {
    public static let maxLength = 255

    @inline(__always)
    package static func allowed(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "/"), UInt8(ascii: "@"):
            return true
        default:
            return false
        }
    }

    /// nil when valid, otherwise why not.
    public static func problem(with name: String) -> String? {
        let utf8 = name.utf8
        if utf8.isEmpty { return "name is empty" }
        if utf8.count > maxLength { return "name '\(name.prefix(40))…' is longer than \(maxLength) bytes" }
        if utf8.allSatisfy(allowed) { return nil }
        for scalar in name.unicodeScalars {
            let ok = (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z")
                || (scalar >= "0" && scalar <= "9") || ".-_:/@".unicodeScalars.contains(scalar)
            if !ok { return "name '\(name)' contains '\(scalar)'; allowed: letters, digits and . - _ : / @" }
        }
        return nil
    }
}
