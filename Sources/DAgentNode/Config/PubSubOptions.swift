import DAgentRouting

/// The pub/sub options of the YAML config (all limits, with their defaults
/// in `PubSubLimits` and `NodeConfig.slowSubscriberBytes`).
enum PubSubOptions {
    static let keys: Set<String> = [
        "max_topic_bytes", "max_topic_tokens", "max_subscriptions", "max_link_interest",
        "interest_cache_topics", "slow_subscriber_bytes",
    ]

    static func apply(_ map: [String: Any], source: String, to c: inout NodeConfig) throws {
        func int(_ k: String) throws -> Int? {
            guard let v = map[k] else { return nil }
            if let i = v as? Int { return i }
            throw ConfigError("\(source): \(k) must be an integer (got \(v))")
        }
        if let v = try int("max_topic_bytes") { c.pubsub.topic.maxTopicBytes = v }
        if let v = try int("max_topic_tokens") { c.pubsub.topic.maxTopicTokens = v }
        if let v = try int("max_subscriptions") { c.pubsub.maxSubscriptions = v }
        if let v = try int("max_link_interest") { c.pubsub.maxLinkInterest = v }
        if let v = try int("interest_cache_topics") { c.pubsub.interestCacheTopics = v }
        if let v = try int("slow_subscriber_bytes") { c.slowSubscriberBytes = v }
    }

    static func validate(_ c: NodeConfig) throws(ConfigError) {
        let p = c.pubsub
        if p.topic.maxTopicBytes < 1 { throw ConfigError("max_topic_bytes must be >= 1 (got \(p.topic.maxTopicBytes))") }
        if p.topic.maxTopicTokens < 1 { throw ConfigError("max_topic_tokens must be >= 1 (got \(p.topic.maxTopicTokens))") }
        if p.maxSubscriptions < 0 { throw ConfigError("max_subscriptions must be >= 0 (got \(p.maxSubscriptions))") }
        if p.maxLinkInterest < 0 { throw ConfigError("max_link_interest must be >= 0 (got \(p.maxLinkInterest))") }
        if p.interestCacheTopics < 1 { throw ConfigError("interest_cache_topics must be >= 1 (got \(p.interestCacheTopics))") }
        if c.slowSubscriberBytes < 4096 { throw ConfigError("slow_subscriber_bytes must be >= 4096 (got \(c.slowSubscriberBytes))") }
    }
}
