import DAgentWire

/// The pub/sub limits of one node (named options of the node config).
public struct PubSubLimits: Sendable, Equatable {
    /// `max_topic_bytes`, `max_topic_tokens`.
    public var topic = TopicLimits()
    /// `max_subscriptions`: subscriptions this node itself may hold.
    public var maxSubscriptions: Int = 100_000
    /// `max_link_interest`: distinct interest entries (pattern, queue group)
    /// accepted from one link; entries past it are refused and counted.
    public var maxLinkInterest: Int = 100_000
    /// `interest_cache_topics`: topics whose match is cached.
    public var interestCacheTopics: Int = 4096
    public init() {}
}

/// Publish counters of one node (shown by `dagent tree`).
public struct PubSubCounters: Equatable, Sendable {
    public var published: UInt64 = 0
    public var delivered: UInt64 = 0
    public var forwarded: UInt64 = 0
    public var unwanted: UInt64 = 0
    public var droppedSlow: UInt64 = 0
    public var droppedBad: UInt64 = 0
    public var interestRefused: UInt64 = 0
    public var interestUpdates: UInt64 = 0
}

/// Per-link publish counters.
package struct LinkPubSubCounters {
    package var out: UInt64 = 0
    package var drops: UInt64 = 0
}

/// Everything the core keeps for pub/sub.
package struct PubSubState {
    package var interest: InterestState
    /// This node's subscriptions by id.
    package var subscriptions: [UInt64: InterestKey] = [:]
    package var nextSubscriptionID: UInt64 = 1
    package var counters = PubSubCounters()
    package var links: [LinkID: LinkPubSubCounters] = [:]
    /// Round-robin position per queue group.
    package var cursors: [String: UInt64] = [:]
    /// The last topic that passed `TopicRules` (publishers repeat topics).
    package var lastValidTopic: String?
    /// Set by the driver: true while a link cannot take more publishes
    /// (its unsent bytes are over `slow_subscriber_bytes`).
    package var congested: ((LinkID) -> Bool)?

    package init(limits: PubSubLimits) {
        interest = InterestState(maxCachedTopics: limits.interestCacheTopics)
    }
}
