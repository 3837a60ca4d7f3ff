/// What a topic matched: the plain targets (each once, however many of its
/// patterns matched) and the queue groups, each with its members and their
/// weights (subscriptions behind each member). Sorted, so that the same
/// table always gives the same answer.
public struct SublistMatch<Target: Hashable & Comparable>: Equatable {
    public struct Member: Equatable {
        public var target: Target
        public var weight: UInt32
    }
    public struct Group: Equatable {
        public var name: String
        public var members: [Member]
        public var totalWeight: UInt64 { members.reduce(0) { $0 + UInt64($1.weight) } }
    }
    public var plain: [Target] = []
    public var groups: [Group] = []
    public var isEmpty: Bool { plain.isEmpty && groups.isEmpty }
}

/// The match table of pub/sub: a trie of pattern tokens with `*` and `>`
/// branches, and a cache of topic → match in front of it. Each entry is
/// (pattern, queue group, target) with a weight; weight 0 removes it. A
/// change drops exactly the cached topics its pattern matches, as
/// nats-server's sublist does; a full cache is halved.
///
/// Patterns and topics must have passed `TopicRules` before they get here.
public struct Sublist<Target: Hashable & Comparable> {
    final class Level {
        var literal: [String: Level] = [:]
        var star: Level?
        var full: Level?
        var plain: [Target: UInt32] = [:]
        var queues: [String: [Target: UInt32]] = [:]
        var isEmpty: Bool {
            literal.isEmpty && star == nil && full == nil && plain.isEmpty && queues.isEmpty
        }
    }

    private var root = Level()
    private var cache: [String: SublistMatch<Target>] = [:]
    /// `interest_cache_topics`: topics whose match is cached at most.
    public let maxCachedTopics: Int
    /// Entries in the table.
    public private(set) var count = 0
    public private(set) var cacheHits: UInt64 = 0
    public private(set) var cacheMisses: UInt64 = 0
    public var cachedTopics: Int { cache.count }

    public init(maxCachedTopics: Int = 4096) {
        self.maxCachedTopics = max(1, maxCachedTopics)
    }

    /// Sets the weight of (pattern, queue, target); 0 removes the entry.
    public mutating func set(_ pattern: String, queue: String = "", target: Target, weight: UInt32) {
        let tokens = pattern.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        var path: [(Level, Int)] = []   // for pruning: each level and which branch led down from it
        var level = root
        for token in tokens {
            let next: Level
            if token.count == 1 && token.first == UInt8(ascii: "*") {
                if level.star == nil { if weight == 0 { return }; level.star = Level() }
                next = level.star!
                path.append((level, -1))
            } else if token.count == 1 && token.first == UInt8(ascii: ">") {
                if level.full == nil { if weight == 0 { return }; level.full = Level() }
                next = level.full!
                path.append((level, -2))
            } else {
                let key = String(decoding: token, as: UTF8.self)
                if level.literal[key] == nil { if weight == 0 { return }; level.literal[key] = Level() }
                next = level.literal[key]!
                path.append((level, 0))
            }
            level = next
        }
        let changed: Bool
        if queue.isEmpty {
            let old = level.plain[target]
            if weight == 0 { level.plain[target] = nil } else { level.plain[target] = weight }
            changed = old != (weight == 0 ? nil : weight)
            if old == nil && weight != 0 { count += 1 } else if old != nil && weight == 0 { count -= 1 }
        } else {
            let old = level.queues[queue]?[target]
            if weight == 0 {
                level.queues[queue]?[target] = nil
                if level.queues[queue]?.isEmpty == true { level.queues[queue] = nil }
            } else {
                level.queues[queue, default: [:]][target] = weight
            }
            changed = old != (weight == 0 ? nil : weight)
            if old == nil && weight != 0 { count += 1 } else if old != nil && weight == 0 { count -= 1 }
        }
        guard changed else { return }
        if weight == 0 { prune(path, tokens: tokens) }
        invalidate(pattern)
    }

    /// Removes the levels left empty along `path` (deepest first).
    private func prune(_ path: [(Level, Int)], tokens: [Substring.UTF8View.SubSequence]) {
        for i in path.indices.reversed() {
            let (parent, branch) = path[i]
            let key = branch == 0 ? String(decoding: tokens[i], as: UTF8.self) : ""
            let node: Level? = branch == -1 ? parent.star : branch == -2 ? parent.full : parent.literal[key]
            guard let node, node.isEmpty else { return }
            switch branch {
            case -1: parent.star = nil
            case -2: parent.full = nil
            default: parent.literal[key] = nil
            }
        }
    }

    /// Drops the cached topics `pattern` matches.
    private mutating func invalidate(_ pattern: String) {
        guard !cache.isEmpty else { return }
        let stale = cache.keys.filter { TopicRules.matches(pattern: pattern, topic: $0) }
        for topic in stale { cache[topic] = nil }
    }

    /// Drops the whole cache (tests; after bulk changes).
    public mutating func clearCache() { cache.removeAll() }

    /// True if `topic`'s match is in the cache.
    public func isCached(_ topic: String) -> Bool { cache[topic] != nil }

    /// The match of `topic` (cached).
    public mutating func match(_ topic: String) -> SublistMatch<Target> {
        if let hit = cache[topic] {
            cacheHits &+= 1
            return hit
        }
        cacheMisses &+= 1
        let result = lookup(topic)
        if cache.count >= maxCachedTopics {
            // Full: drop half (NATS prunes at random too); hot topics come back on their next publish.
            for key in Array(cache.keys.prefix(cache.count / 2 + 1)) { cache[key] = nil }
        }
        cache[topic] = result
        return result
    }

    /// The match of `topic`, without the cache.
    public func lookup(_ topic: String) -> SublistMatch<Target> {
        let tokens = topic.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        var plain: [Target: UInt32] = [:]
        var queues: [String: [Target: UInt32]] = [:]
        func add(_ level: Level) {
            for (t, w) in level.plain { plain[t] = w }
            for (q, members) in level.queues {
                for (t, w) in members { queues[q, default: [:]][t, default: 0] += w }
            }
        }
        func walk(_ level: Level, _ i: Int) {
            if i == tokens.count {
                add(level)
                return
            }
            if let full = level.full { add(full) }
            if let next = level.literal[tokens[i]] { walk(next, i + 1) }
            if let star = level.star { walk(star, i + 1) }
        }
        walk(root, 0)
        var result = SublistMatch<Target>()
        result.plain = plain.keys.sorted()
        result.groups = queues.keys.sorted().map { name in
            SublistMatch<Target>.Group(name: name, members: queues[name]!.sorted { $0.key < $1.key }.map {
                SublistMatch<Target>.Member(target: $0.key, weight: $0.value)
            })
        }
        return result
    }
}
