import DAgentWire
import NIOCore

/// Publish routing: a PUBLISH envelope (topic in `dst`) goes to the
/// subscriptions of this node and into every link whose interest matches,
/// never back where it came from. Queue groups get one member per message:
/// the node where the publish starts picks (weighted round robin over the
/// members it sees), and tells each link which groups it picked there
/// (`Envelope.queues`). Publishes without picks are relayed unopened.
extension NodeCore {
    /// Which queue groups this node picks a member for.
    package enum GroupPicks {
        /// Every group (the publish starts here, or its sender knew no interest).
        case all
        /// None: the publish was relayed unopened, every group was picked elsewhere.
        case none
        /// These groups (from `Envelope.queues`).
        case some([String])
    }

    /// Where one publish goes from this node.
    package struct PublishPlan {
        var locals: [UInt64] = []
        /// Links in order, each with the groups picked behind it.
        var links: [(LinkID, [String])] = []
        /// The parent gets a copy though its interest is not known yet; with
        /// `.all` picks, it picks every group (`pick_queues`).
        var blindParent = false
        var isEmpty: Bool { locals.isEmpty && links.isEmpty && !blindParent }
    }

    /// Publishes `envelope` (topic in `dst`, its payload) from this node, as
    /// `publishFast` does but always on the slow path (actions; the payload is
    /// copied once): stamped by the same `stampPublish`. Bad topics and oversized
    /// payloads are thrown; delivery is at most once (a publish nobody wants
    /// is dropped here and counted as `unwanted`).
    public func publish(_ envelope: Dagent_Envelope, nowNs: UInt64) throws(DAgentError) {
        var h = MessageHeader(envelope)
        try stampPublish(&h, payloadCount: envelope.payload.count)
        try publishStamped(envelope.payload.withUnsafeBytes { h.envelope(payload: $0) }, nowNs: nowNs)
    }

    /// Routes a stamped publish that starts here, or queues it while the route up is not ready.
    package func publishStamped(_ e: Dagent_Envelope, nowNs: UInt64) throws(DAgentError) {
        if config.hasParent && !parentReady {
            // The route up is not ready: hold it with the other queued messages, in order.
            do {
                try queues.enqueue(e, nowNs: nowNs)
                stats.queued &+= 1
            } catch {
                throw DAgentError(.queueFull, queueFullReason(e.dst, error))
            }
            return
        }
        routePublish(e, from: nil, picks: .all)
    }

    /// The checks of a publish that starts here: the topic rules (the last
    /// valid topic is remembered: streams publish on one topic) and
    /// `max_message_bytes`.
    @inline(__always)
    package func checkPublish(_ topic: String, payloadCount: Int) throws(DAgentError) {
        if topic != pubsub.lastValidTopic {
            do { try TopicRules.checkTopic(topic, limits: config.pubsub.topic) } catch { throw error.asDAgentError }
            pubsub.lastValidTopic = topic
        }
        if payloadCount > config.maxMessageBytes {
            throw DAgentError(.tooLarge, "message of \(payloadCount) bytes on topic '\(topic)' exceeds max_message_bytes=\(config.maxMessageBytes)")
        }
    }

    /// Works out where a publish on `topic` goes. `from` is the link it came
    /// on (nil: it starts here). Nil if the topic is not valid (a relayed
    /// publish from a peer that does not check).
    package func planPublish(_ topic: String, from: LinkID?, picks: GroupPicks) -> PublishPlan? {
        let fromPeer = from.map { links[$0]?.isPeer ?? false } ?? false
        if from != nil, topic != pubsub.lastValidTopic, !pubsub.interest.sublist.isCached(topic) {
            // Topics from links are checked when their match is not cached yet.
            do { try TopicRules.checkTopic(topic, limits: config.pubsub.topic) } catch { return nil }
        }
        var match = pubsub.interest.sublist.match(topic)
        var plan = PublishPlan()
        func allowed(_ link: LinkID) -> Bool {
            if link == from { return false }
            if fromPeer, links[link]?.isPeer == true { return false }   // peers never relay for each other
            return links[link] != nil
        }
        let parentUnknown = config.hasParent && parentReady && parentLink != nil && from != parentLink
            && !pubsub.interest.known.contains(parentLink!)
        if match.groups.isEmpty {
            // No queue group: every target once (the match lists each once), no picks to carry.
            if match.plain.count > 1 { plan.links.reserveCapacity(match.plain.count) }   // a subscriber's one local target: no array
            for target in match.plain {
                switch target {
                case .local(let id): plan.locals.append(id)
                case .link(let link) where allowed(link): plan.links.append((link, []))
                default: break
                }
            }
            if parentUnknown, let p = parentLink, !plan.links.contains(where: { $0.0 == p }) { plan.blindParent = true }
            return plan
        }
        var linkPicks: [LinkID: [String]] = [:]
        var order: [LinkID] = []
        for target in match.plain {
            switch target {
            case .local(let id): plan.locals.append(id)
            case .link(let link) where allowed(link):
                if linkPicks[link] == nil { linkPicks[link] = []; order.append(link) }
            default: break
            }
        }
        if !match.groups.isEmpty {
            let mine: Set<String>?
            switch picks {
            case .all: mine = nil
            case .none: mine = []
            case .some(let names): mine = Set(names)
            }
            if mine?.isEmpty != true {
                for i in match.groups.indices {
                    let group = match.groups[i]
                    if let mine, !mine.contains(group.name) { continue }
                    // A publish that starts here with the parent's interest unknown:
                    // the parent picks every group (pick_queues), so none here.
                    if from == nil && parentUnknown { continue }
                    match.groups[i].members.removeAll {
                        if case .link(let l) = $0.target { return !allowed(l) }
                        return false
                    }
                    guard let chosen = pickMember(match.groups[i]) else { continue }
                    switch chosen {
                    case .local(let id): if !plan.locals.contains(id) { plan.locals.append(id) }
                    case .link(let link):
                        if linkPicks[link] == nil { linkPicks[link] = []; order.append(link) }
                        linkPicks[link]!.append(group.name)
                    }
                }
            }
        }
        plan.links = order.map { ($0, linkPicks[$0]!) }
        if parentUnknown, let p = parentLink, linkPicks[p] == nil { plan.blindParent = true }
        return plan
    }

    /// Weighted round robin over a group's members.
    package func pickMember(_ group: SublistMatch<SubTarget>.Group) -> SubTarget? {
        let total = group.totalWeight
        guard total > 0 else { return nil }
        // A group's cursor starts at a random place, so one-shot publishers do not all pick the first member.
        let cursor = pubsub.cursors[group.name] ?? newSession().verifier
        pubsub.cursors[group.name] = cursor &+ 1
        var slot = cursor % total
        for member in group.members {
            if slot < UInt64(member.weight) { return member.target }
            slot -= UInt64(member.weight)
        }
        return group.members.last?.target
    }

    /// True (and counted) if a publish copy for `link` must be dropped: the link is congested.
    @inline(__always)
    package func dropForSlowLink(_ link: LinkID) -> Bool {
        if let check = pubsub.congested, check(link) {
            pubsub.counters.droppedSlow &+= 1
            pubsub.links[link, default: LinkPubSubCounters()].drops &+= 1
            return true
        }
        pubsub.counters.forwarded &+= 1
        pubsub.links[link, default: LinkPubSubCounters()].out &+= 1
        links[link]?.framesOut &+= 1
        return false
    }

    /// Routes a decoded, hop-counted publish.
    package func routePublish(_ envelope: Dagent_Envelope, from: LinkID?, picks: GroupPicks) {
        guard let plan = planPublish(envelope.dst, from: from, picks: picks) else {
            dropBadPublish(envelope.dst, from: from, "the topic breaks the topic rules")
            return
        }
        routePublish(envelope, plan: plan, picks: picks)
    }

    /// Routes a decoded, hop-counted publish where `plan` says.
    package func routePublish(_ envelope: Dagent_Envelope, plan: PublishPlan, picks: GroupPicks) {
        if plan.isEmpty {
            pubsub.counters.unwanted &+= 1
            return
        }
        var e = envelope
        e.queues = []
        e.pickQueues = false
        if !plan.locals.isEmpty {
            pubsub.counters.delivered &+= UInt64(plan.locals.count)
            emit(.deliverPublish(e, subscriptions: plan.locals))
        }
        for (link, groups) in plan.links where !dropForSlowLink(link) {
            var copy = e
            copy.queues = groups
            emit(.forward(Hop(link: link), copy))
        }
        if plan.blindParent, let p = parentLink, !dropForSlowLink(p) {
            var copy = e
            if case .all = picks { copy.pickQueues = true }
            emit(.forward(Hop(link: p), copy))
        }
    }

    package func dropBadPublish(_ topic: String, from: LinkID?, _ why: String) {
        pubsub.counters.droppedBad &+= 1
        log(.debug, "dropped a publish on '\(topic.prefix(80))' from \(from.map { describe($0) } ?? "here"): \(why)")
    }

    // MARK: publishes arriving on links

    /// The fast path for a PUBLISH envelope read off a link: routed on its
    /// header; relayed as raw bytes unless it carries queue-group picks.
    /// With `inline` (`receiveOrRelay`), the copies for other links go into
    /// `relays` and a local delivery into `publications` (a `DataMessage`,
    /// the payload a slice of the frame) instead of actions; a publish with
    /// queue picks still takes the slow path, with actions.
    package func receivePublishRaw(_ raw: ByteBuffer, header: EnvelopeHeader, from id: LinkID, nowNs: UInt64, inline: Bool = false) {
        let link = links[id]!
        guard link.registered || link.isParent else {
            refuseLink(id, .refused, "publish on '\(header.dst)' from a link that has not registered; send Register first")
            return
        }
        guard rawSourceAllowed(raw, dst: nil, batch: false, link: link) else {
            dropForgedPublishes(header.dst, count: 1, from: id)
            return
        }
        if raw.readableBytes > config.maxMessageBytes + 4096 || header.hopLimit <= 1 {
            dropBadPublish(header.dst, from: id, header.hopLimit <= 1 ? "hop limit reached" : "over max_message_bytes=\(config.maxMessageBytes)")
            return
        }
        if header.hasQueuePicks {
            do {
                var envelope = try EnvelopeCodec.decode(raw)
                receivePublish(&envelope, from: id, nowNs: nowNs)
            } catch {
                badFrame(id, error)
            }
            return
        }
        guard let plan = planPublish(header.dst, from: id, picks: .none) else {
            dropBadPublish(header.dst, from: id, "the topic breaks the topic rules")
            return
        }
        if plan.isEmpty {
            pubsub.counters.unwanted &+= 1
            return
        }
        if !plan.locals.isEmpty {
            do {
                var m = try EnvelopeCodec.decodeMessage(raw, cache: &publishStrings)
                if m.payload.readableBytes > config.maxMessageBytes {
                    dropBadPublish(header.dst, from: id, "payload of \(m.payload.readableBytes) bytes over max_message_bytes=\(config.maxMessageBytes)")
                    return
                }
                m.hopLimit = header.hopLimit - 1
                deliverPublication(m, to: plan.locals, inline: inline)
            } catch {
                badFrame(id, error)
                return
            }
        }
        relayPublish(raw, header: header, count: 0, plan: plan, inline: inline)
    }

    /// A batch of publishes on one topic (never carrying picks): relayed
    /// unopened, opened only for local subscriptions. With `inline`, as
    /// `receivePublishRaw` with `inline`: no actions.
    package func receivePublishBatch(_ raw: ByteBuffer, header: EnvelopeHeader, count: Int, from id: LinkID, nowNs: UInt64,
                                     inline: Bool = false) {
        let link = links[id]!
        guard link.registered || link.isParent else {
            refuseLink(id, .refused, "publishes on '\(header.dst)' from a link that has not registered; send Register first")
            return
        }
        guard rawSourceAllowed(raw, dst: nil, batch: true, link: link) || everySourceAllowed(raw, from: id) else {
            dropForgedPublishes(header.dst, count: count, from: id)   // the whole batch: at most once
            return
        }
        if header.hopLimit <= 1 {
            pubsub.counters.droppedBad &+= UInt64(count)
            return
        }
        guard let plan = planPublish(header.dst, from: id, picks: .none) else {
            pubsub.counters.droppedBad &+= UInt64(count)
            log(.debug, "dropped \(count) publishes on '\(header.dst.prefix(80))' from \(describe(id)): the topic breaks the topic rules")
            return
        }
        if plan.isEmpty {
            pubsub.counters.unwanted &+= UInt64(count)
            return
        }
        if !plan.locals.isEmpty {
            do {
                publishStrings.dst = header.dst
                for slice in try BatchCodec.envelopes(raw) {
                    var m = try EnvelopeCodec.decodeMessage(slice, cache: &publishStrings)
                    guard m.dst == header.dst, m.kind == .publish, m.payload.readableBytes <= config.maxMessageBytes else {
                        dropBadPublish(m.dst, from: id, "inside a batch of publishes on '\(header.dst)', not a publish on that topic or over max_message_bytes")
                        continue
                    }
                    m.hopLimit = header.hopLimit - 1
                    deliverPublication(m, to: plan.locals, inline: inline)
                }
            } catch {
                badFrame(id, error)
                return
            }
        }
        relayPublish(raw, header: header, count: count, plan: plan, inline: inline)
    }

    /// A publication for local subscriptions, decoded once: into `publications` with `inline`
    /// (the fast path, payload a slice), else as an action (its envelope: a copy).
    private func deliverPublication(_ m: DataMessage, to subscriptions: [UInt64], inline: Bool) {
        pubsub.counters.delivered &+= UInt64(subscriptions.count)
        if inline {
            publications.append(Publication(message: m, subscriptions: subscriptions))
        } else {
            emit(.deliverPublish(m.envelope, subscriptions: subscriptions))
        }
    }

    /// The copies of a publish frame (`count` 0: one envelope, else a batch)
    /// for the links in `plan`, counted, slow links dropped: into `relays`
    /// with `inline`, else as actions.
    @inline(__always)
    package func relayPublish(_ raw: ByteBuffer, header: EnvelopeHeader, count: Int, plan: PublishPlan, inline: Bool) {
        func out(_ link: LinkID) {
            guard !dropForSlowLink(link) else { return }
            if inline {
                relays.append(Relay(hop: Hop(link: link), raw: raw, header: header, hopLimit: header.hopLimit - 1, count: count))
            } else if count == 0 {
                emit(.forwardRaw(Hop(link: link), raw, hopLimitOffset: header.hopLimitOffset, hopLimit: header.hopLimit - 1))
            } else {
                emit(.forwardRawBatch(Hop(link: link), raw, hopLimitOffset: header.hopLimitOffset, hopLimit: header.hopLimit - 1))
            }
        }
        for (next, _) in plan.links { out(next) }
        if plan.blindParent, let p = parentLink { out(p) }
    }

    /// A decoded publish from a link (the slow path: picks, or a batch opened).
    /// True if every envelope of a batch has a `src` the child `id` may send from (a relaying
    /// agent's batch mixes the names of its subtree).
    package func everySourceAllowed(_ raw: ByteBuffer, from id: LinkID) -> Bool {
        guard let slices = try? BatchCodec.envelopes(raw) else { return false }
        for slice in slices {
            guard let src = try? EnvelopeCodec.source(of: slice), sourceProblem(src, dst: nil, from: id) == nil else { return false }
        }
        return true
    }

    /// Drops publications from a child whose `src` is not a name it registered (or cannot be
    /// read). Not answered: an error would go to the forged name.
    package func dropForgedPublishes(_ topic: String, count: Int, from id: LinkID) {
        stats.forgedSources &+= UInt64(count)
        pubsub.counters.droppedBad &+= UInt64(count)
        log(.warning, "dropped \(count) publish(es) on '\(topic.prefix(80))' from \(describe(id)): a src that is not in the child's subtree (a child may only publish from names it registered)")
    }

    package func receivePublish(_ envelope: inout Dagent_Envelope, from id: LinkID, nowNs: UInt64) {
        if envelope.payload.count > config.maxMessageBytes {
            dropBadPublish(envelope.dst, from: id, "payload of \(envelope.payload.count) bytes over max_message_bytes=\(config.maxMessageBytes)")
            return
        }
        if envelope.hopLimit <= 1 {
            dropBadPublish(envelope.dst, from: id, "hop limit reached")
            return
        }
        envelope.hopLimit -= 1
        let picks: GroupPicks = envelope.pickQueues ? .all : (envelope.queues.isEmpty ? .none : .some(envelope.queues))
        routePublish(envelope, from: id, picks: picks)
    }
}
