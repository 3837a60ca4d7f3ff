import DAgentWire

/// Pub/sub interest: this node's subscriptions, the `InterestUpdate`s its
/// links exchange, and their withdrawal when a link goes.
extension NodeCore {
    /// Entries per `InterestUpdate` frame at most (a larger snapshot is split).
    static let interestEntriesPerFrame = 4096

    /// Adds a subscription of this node; returns its id. Matching publishes
    /// come out as `.deliverPublish` actions naming the id.
    public func subscribe(_ pattern: String, queue: String = "") throws(DAgentError) -> UInt64 {
        do {
            try TopicRules.checkPattern(pattern, limits: config.pubsub.topic)
            try TopicRules.checkQueue(queue)
        } catch {
            throw error.asDAgentError
        }
        if pubsub.subscriptions.count >= config.pubsub.maxSubscriptions {
            throw DAgentError(.tooManySubscriptions, "node '\(config.name)' already holds max_subscriptions=\(config.pubsub.maxSubscriptions) subscriptions; cancel some or raise the option")
        }
        let id = pubsub.nextSubscriptionID
        pubsub.nextSubscriptionID += 1
        let key = InterestKey(pattern, queue: queue)
        pubsub.subscriptions[id] = key
        pubsub.interest.addLocal(key, id: id)
        flushInterest()
        return id
    }

    /// Cancels a subscription (unknown ids are ignored).
    public func unsubscribe(_ id: UInt64) {
        guard let key = pubsub.subscriptions.removeValue(forKey: id) else { return }
        pubsub.interest.removeLocal(key, id: id)
        flushInterest()
    }

    /// Number of subscriptions this node holds.
    public var subscriptionCount: Int { pubsub.subscriptions.count }

    /// Publish counters.
    public var pubsubCounters: PubSubCounters { pubsub.counters }

    /// Tells the core how to see that a link is congested (its unsent bytes
    /// over `slow_subscriber_bytes`): publishes for it are then dropped and counted.
    public func setCongestionCheck(_ check: ((LinkID) -> Bool)?) {
        pubsub.congested = check
    }

    /// The interest reachable through `link` (what its peer told us).
    public func interest(via link: LinkID) -> [(InterestKey, UInt32)] {
        pubsub.interest.entries(from: link)
    }

    /// True once the peer of `link` sent its initial interest snapshot.
    public func knowsInterest(of link: LinkID) -> Bool { pubsub.interest.known.contains(link) }

    /// True once the parent's initial interest arrived (or at the top):
    /// publishes from here then go up only when the parent side wants them.
    public var knowsParentInterest: Bool {
        guard config.hasParent else { return true }
        guard parentReady, let p = parentLink else { return false }
        return pubsub.interest.known.contains(p)
    }

    // MARK: link lifecycle

    /// A link may now hear our interest: registered child (after its
    /// RegisterResult), registered parent, or a peer replica.
    package func interestLinkReady(_ id: LinkID) {
        guard let link = links[id] else { return }
        let snapshot = pubsub.interest.linkReady(id, isPeer: link.isPeer)
        sendInterest(snapshot, to: id, initial: true)
    }

    /// A link is gone: what it told us is withdrawn, and the neighbours hear it.
    package func interestLinkDown(_ id: LinkID) {
        pubsub.links[id] = nil
        guard pubsub.interest.ready[id] != nil || pubsub.interest.received[id] != nil else { return }
        let withdrawn = pubsub.interest.received[id]?.count ?? 0
        pubsub.interest.linkDown(id)
        if withdrawn > 0 { log(.info, "withdrew \(withdrawn) interest entr\(withdrawn == 1 ? "y" : "ies") of link \(id)") }
        flushInterest()
    }

    /// Sends every pending interest change.
    package func flushInterest() {
        for (id, changes) in pubsub.interest.flush() {
            sendInterest(changes, to: id, initial: false)
        }
    }

    package func sendInterest(_ entries: [InterestKey: UInt32], to id: LinkID, initial: Bool) {
        let sorted = entries.sorted { $0.key < $1.key }
        var start = 0
        repeat {
            let end = min(sorted.count, start + Self.interestEntriesPerFrame)
            var update = Dagent_InterestUpdate()
            update.initial = initial && start == 0
            update.complete = initial && end == sorted.count
            update.entries = sorted[start..<end].map { key, count in
                var e = Dagent_InterestEntry()
                e.pattern = key.pattern
                e.queue = key.queue
                e.count = count
                return e
            }
            sendFrame(id, .interest(update))
            start = end
        } while start < sorted.count
    }

    // MARK: InterestUpdate frames

    package func handleInterest(_ update: Dagent_InterestUpdate, from id: LinkID) {
        guard pubsub.interest.ready[id] != nil else {
            refuseLink(id, .refused, "InterestUpdate from \(describe(id)) before its registration completed")
            return
        }
        pubsub.counters.interestUpdates &+= 1
        let limit = config.pubsub.maxLinkInterest
        var problems: [String] = []
        var overLimit = 0
        var accepted: [InterestKey: UInt32] = [:]
        var distinct = update.initial ? 0 : (pubsub.interest.received[id]?.count ?? 0)
        for entry in update.entries {
            do {
                try TopicRules.checkPattern(entry.pattern, limits: config.pubsub.topic)
                try TopicRules.checkQueue(entry.queue)
            } catch {
                pubsub.counters.interestRefused &+= 1
                if problems.count < 3 { problems.append(error.description) }
                continue
            }
            let key = InterestKey(entry.pattern, queue: entry.queue)
            // (no copy of the link's table: a copy would make every update O(entries))
            let known = !update.initial && pubsub.interest.received[id]?[key] != nil
            let isNew = accepted[key] == nil && !known
            if entry.count > 0 && isNew {
                if distinct >= limit {
                    pubsub.counters.interestRefused &+= 1
                    overLimit += 1
                    continue
                }
                distinct += 1
            } else if entry.count == 0 && known {
                distinct -= 1
            }
            accepted[key] = entry.count
        }
        if update.initial {
            pubsub.interest.replaceReceived(accepted.filter { $0.value > 0 }, from: id)
        } else {
            for (key, count) in accepted.sorted(by: { $0.key < $1.key }) {
                pubsub.interest.setReceived(key, count: count, from: id)
            }
        }
        if update.complete { pubsub.interest.known.insert(id) }
        if overLimit > 0 {
            reportInterestProblem(id, .tooManySubscriptions,
                "\(overLimit) interest entr\(overLimit == 1 ? "y" : "ies") from \(describe(id)) refused: the link already has max_link_interest=\(limit) distinct entries at node '\(config.name)'")
        }
        if !problems.isEmpty {
            reportInterestProblem(id, .badTopic, "interest entries from \(describe(id)) refused at node '\(config.name)': " + problems.joined(separator: "; "))
        }
        flushInterest()
    }

    /// Tells the peer which of its interest was refused (the link stays up) and logs it.
    package func reportInterestProblem(_ id: LinkID, _ code: Dagent_ErrorCode, _ reason: String) {
        var error = Dagent_LinkError()
        error.error = code
        error.reason = reason
        sendFrame(id, .linkError(error))
        log(.warning, reason)
    }

    // MARK: tree report

    /// Adds the interest and publish counters to a `dagent tree` reply.
    package func addPubSub(to reply: inout Dagent_TreeReply) {
        let listed = 256
        let ids = linkIDs
        for (i, id) in ids.enumerated() where i < reply.links.count {
            let entries = pubsub.interest.entries(from: id)
            reply.links[i].interestEntries = UInt32(clamping: entries.count)
            reply.links[i].interest = entries.prefix(listed).map { key, count in
                var e = Dagent_InterestEntry()
                e.pattern = key.pattern
                e.queue = key.queue
                e.count = count
                return e
            }
            reply.links[i].publishesOut = pubsub.links[id]?.out ?? 0
            reply.links[i].publishDrops = pubsub.links[id]?.drops ?? 0
        }
        reply.subscriptionCount = UInt32(clamping: pubsub.subscriptions.count)
        reply.subscriptions = pubsub.interest.local.sorted { $0.key < $1.key }.prefix(listed).map { key, count in
            var e = Dagent_InterestEntry()
            e.pattern = key.pattern
            e.queue = key.queue
            e.count = count
            return e
        }
        let c = pubsub.counters
        var s = Dagent_PubSubStats()
        s.published = c.published
        s.delivered = c.delivered
        s.forwarded = c.forwarded
        s.unwanted = c.unwanted
        s.droppedSlow = c.droppedSlow
        s.droppedBad = c.droppedBad
        s.interestRefused = c.interestRefused
        s.interestUpdates = c.interestUpdates
        reply.pubsub = s
    }
}
