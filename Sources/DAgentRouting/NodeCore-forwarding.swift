import DAgentWire
import NIOCore

/// Forwarding: to me, down into my subtree, or up; errors back to the sender.
extension NodeCore {
    package func receiveEnvelope(_ envelope: inout Dagent_Envelope, from id: LinkID, nowNs: UInt64) {
        guard links[id]!.registered || links[id]!.isParent else {
            refuseLink(id, .refused, "message to '\(envelope.dst)' from a link that has not registered; send Register first")
            return
        }
        if let why = sourceProblem(envelope.src, dst: envelope.kind == .publish ? nil : envelope.dst, from: id) {
            dropForged(envelope, why)
            return
        }
        if envelope.kind == .publish {
            receivePublish(&envelope, from: id, nowNs: nowNs)
            return
        }
        if case .UNRECOGNIZED(let kind) = envelope.kind {
            fail(envelope, .unknownKind, "envelope kind \(kind) is not understood by node '\(config.name)'", nowNs: nowNs)
            return
        }
        if envelope.payload.count > config.maxMessageBytes {
            fail(envelope, .tooLarge, "message of \(envelope.payload.count) bytes to '\(envelope.dst)' exceeds max_message_bytes=\(config.maxMessageBytes) at node '\(config.name)'", nowNs: nowNs)
            return
        }
        if envelope.dst != config.name && !localServices.contains(envelope.dst) {
            if envelope.hopLimit <= 1 {
                fail(envelope, .hopLimit, "hop limit reached at node '\(config.name)' on the way to '\(envelope.dst)' (routing loop or a tree deeper than hop_limit)", nowNs: nowNs)
                return
            }
            envelope.hopLimit -= 1
        }
        route(envelope, nowNs: nowNs)
    }

    /// Where a destination goes from here.
    package enum NextHop {
        case local, link(Hop), queue, noRoute
    }

    /// The routing decision: to me; down the child link a name sits behind;
    /// at the top of a root group, to the replica the directory names; on a
    /// leaf of a message queue, straight to the brother holding it; else up.
    @inline(__always)
    package func nextHop(_ dst: String) -> NextHop {
        if dst == config.name || (!localServices.isEmpty && localServices.contains(dst)) { return .local }
        if !routes.isEmpty, let entry = routes[dst] { return .link(Hop(link: entry.link)) }
        if !config.hasParent {
            // Top of a root group: the directory says which replica holds it.
            if let authority, let link = authority.peerLink(holding: dst), links[link] != nil { return .link(Hop(link: link)) }
            return .noRoute
        }
        if parentReady, let parent = parentLink {
            return .link(Hop(link: parent, brother: brothers == nil ? 0 : brotherChannel(dst)))
        }
        return .queue
    }

    /// Counts a message leaving on `hop`. A burst to one link is counted in
    /// `unsettledOut` and added to that link's `framesOut` when the next message
    /// leaves on another link, or before anything reads the counters
    /// (`settleFramesOut`): no dictionary lookup per message.
    @inline(__always)
    package func countOut(_ hop: Hop, messages: Int = 1) {
        stats.routed &+= UInt64(messages)
        if hop.isBrother { stats.directOut &+= UInt64(messages) }
        if hop.link == unsettledOut.link {
            unsettledOut.frames &+= 1
        } else {
            settleFramesOut()
            unsettledOut = (hop.link, 1)
        }
    }

    /// Adds the frames counted in `unsettledOut` to their link's `framesOut`.
    package func settleFramesOut() {
        guard unsettledOut.frames > 0 else { return }
        // In place through the index: `links[id]?.x += 1` moves the whole LinkState out and back.
        if let i = links.index(forKey: unsettledOut.link) { links.values[i].framesOut &+= unsettledOut.frames }
        unsettledOut.frames = 0
    }

    /// The fast path for an envelope arriving on a link: routed on its header
    /// alone and relayed as raw bytes. It is decoded only when it is for this
    /// node or must be answered with an error.
    /// With `inline`, a relay is returned for the driver to write instead of
    /// emitted as an action (`receiveOrRelay`); nil when handled here.
    @discardableResult
    package func receiveRaw(_ raw: ByteBuffer, header: EnvelopeHeader, from id: LinkID, nowNs: UInt64, inline: Bool = false) -> Relay? {
        let link = links[id]!
        let known = (0...3).contains(header.kind)
        let mayBeTooLarge = raw.readableBytes > config.maxMessageBytes
        let forward: Hop?
        if header.dst == config.name || !known || mayBeTooLarge || header.hopLimit <= 1 || !(link.registered || link.isParent)
            || !rawSourceAllowed(raw, dst: header.dst, batch: false, link: link) {
            forward = nil
        } else if case .link(let next) = nextHop(header.dst) {
            forward = next
        } else {
            forward = nil
        }
        if let next = forward {
            countOut(next)
            if inline { return Relay(hop: next, raw: raw, header: header, hopLimit: header.hopLimit - 1, count: 0) }
            emit(.forwardRaw(next, raw, hopLimitOffset: header.hopLimitOffset, hopLimit: header.hopLimit - 1))
            return nil
        }
        if header.dst == config.name && known && (link.registered || link.isParent)
            && rawSourceAllowed(raw, dst: header.dst, batch: false, link: link) {
            var cache = EnvelopeCodec.StringCache()
            if deliverRaw(raw, cache: &cache) { return nil }
        }
        // The slow path: decode and apply every rule.
        do {
            var envelope = try EnvelopeCodec.decode(raw)
            receiveEnvelope(&envelope, from: id, nowNs: nowNs)
        } catch {
            badFrame(id, error)
        }
        return nil
    }

    /// The fast path for a batch: routed on its header, relayed unopened.
    /// Opened only here at its destination, or when it must be failed: then
    /// every envelope gets the full rules (and its own error).
    @discardableResult
    package func receiveRawBatch(_ raw: ByteBuffer, header: EnvelopeHeader, count: Int, from id: LinkID, nowNs: UInt64,
                                 inline: Bool = false) -> Relay? {
        let link = links[id]!
        let mayBeTooLarge = raw.readableBytes > config.maxMessageBytes
        if header.dst != config.name && !mayBeTooLarge && header.hopLimit > 1 && (link.registered || link.isParent),
           case .link(let next) = nextHop(header.dst), rawSourceAllowed(raw, dst: header.dst, batch: true, link: link) {
            countOut(next, messages: count)
            if inline { return Relay(hop: next, raw: raw, header: header, hopLimit: header.hopLimit - 1, count: count) }
            emit(.forwardRawBatch(next, raw, hopLimitOffset: header.hopLimitOffset, hopLimit: header.hopLimit - 1))
            return nil
        }
        deliverBatch(raw, header: header, from: id, direct: nil, nowNs: nowNs)
        return nil
    }

    /// Routes an envelope that is already validated and hop-counted.
    package func route(_ envelope: Dagent_Envelope, nowNs: UInt64) {
        if envelope.kind == .publish {   // a queued publish, flushed once the route up is ready
            routePublish(envelope, from: nil, picks: .all)
            return
        }
        switch nextHop(envelope.dst) {
        case .local:
            deliverLocal(envelope, nowNs: nowNs)
        case .link(let next):
            countOut(next)
            emit(.forward(next, envelope))
        case .queue:
            do {
                try queues.enqueue(envelope, nowNs: nowNs)
                stats.queued &+= 1
            } catch {
                fail(envelope, .queueFull, queueFullReason(envelope.dst, error), nowNs: nowNs)
            }
        case .noRoute:
            stats.noRoute &+= 1
            fail(envelope, .noRoute, "no route to '\(envelope.dst)': no node in the tree holds that name (checked at top node '\(config.name)')", nowNs: nowNs)
        }
    }

    package func queueFullReason(_ dst: String, _ error: SendQueues.EnqueueError) -> String {
        let why = parentLink == nil ? "the parent is not connected" : "registration with the parent is in progress"
        switch error {
        case .destinationFull(let limit):
            return "send queue for '\(dst)' is full (send_queue_length=\(limit)); the route is not ready: \(why)"
        case .tooManyDestinations(let limit):
            return "too many destinations queued (max_queued_destinations=\(limit)); the route is not ready: \(why)"
        }
    }

    package func deliverLocal(_ envelope: Dagent_Envelope, nowNs: UInt64) {
        if envelope.kind == .request && envelope.type == WireConstants.pingType {
            answerEmpty(envelope, nowNs: nowNs)   // pings never reach the application
            return
        }
        stats.delivered &+= 1
        // A DATA with a cookie asks for a delivery receipt: the driver sends it with
        // `acceptDelivery` once the application (or its handler queue) took the
        // message, or refuses it with `refuseDelivery` (NodeCore-receipts.swift).
        inbox.append(DataMessage(envelope))
    }

    /// Sends `envelope`'s sender an empty RESPONSE carrying its cookie (ping answers, receipts).
    package func answerEmpty(_ envelope: Dagent_Envelope, nowNs: UInt64) {
        var answer = Dagent_Envelope()
        answer.src = config.name
        answer.dst = envelope.src
        answer.type = envelope.type
        answer.kind = .response
        answer.cookie = envelope.cookie
        answer.hopLimit = config.hopLimit
        route(answer, nowNs: nowNs)
    }

    /// Reports a failed envelope to its sender as an ERROR envelope.
    /// Errors about errors are dropped (and counted), so a failure can never loop.
    package func fail(_ envelope: Dagent_Envelope, _ code: Dagent_ErrorCode, _ reason: String, nowNs: UInt64) {
        if envelope.kind == .error || envelope.kind == .publish || envelope.src.isEmpty {
            stats.droppedErrors &+= 1
            log(.debug, "dropped undeliverable \(envelope.kind == .error ? "error" : "message") from '\(envelope.src)' to '\(envelope.dst)': \(reason)")
            return
        }
        stats.errorsSent &+= 1
        var error = Dagent_Envelope()
        error.src = config.name
        error.dst = envelope.src
        error.type = envelope.type
        error.kind = .error
        error.id = envelope.id
        error.cookie = envelope.cookie
        error.error = code
        error.reason = reason
        error.hopLimit = config.hopLimit
        error.sendTimeNs = envelope.sendTimeNs
        route(error, nowNs: nowNs)
    }

    /// Sends an envelope that originates at this node (src, id and hop limit are set here).
    /// Errors known at once are thrown; later ones come back as ERROR envelopes.
    public func sendLocal(_ envelope: Dagent_Envelope, nowNs: UInt64) throws(DAgentError) {
        var envelope = envelope
        try stampLocal(&envelope)
        try dispatchLocal(envelope, nowNs: nowNs)
    }

    /// Checks an envelope that starts here and fills in source, id and hop limit.
    package func stampLocal(_ envelope: inout Dagent_Envelope) throws(DAgentError) {
        var header = MessageHeader(dst: envelope.dst)
        header.src = envelope.src
        try stamp(&header, payloadCount: envelope.payload.count)
        envelope.src = header.src
        envelope.id = header.id
        envelope.hopLimit = header.hopLimit
    }

    /// True if an envelope for `dst` that starts here is routed now rather
    /// than queued (or refused) until the route up is ready.
    package func routesNow(_ dst: String) -> Bool {
        dst == config.name || (!routes.isEmpty && routes[dst] != nil) || (config.hasParent && parentReady)
    }

    /// Routes a stamped envelope, or queues it while the route up is not ready.
    package func dispatchLocal(_ envelope: Dagent_Envelope, nowNs: UInt64) throws(DAgentError) {
        if routesNow(envelope.dst) {
            route(envelope, nowNs: nowNs)
        } else if config.hasParent {
            do {
                try queues.enqueue(envelope, nowNs: nowNs)
                stats.queued &+= 1
            } catch {
                throw DAgentError(.queueFull, queueFullReason(envelope.dst, error))
            }
        } else {
            stats.noRoute &+= 1
            throw DAgentError(.noRoute, "no route to '\(envelope.dst)': no node in the tree holds that name (checked at top node '\(config.name)')")
        }
    }

    /// Re-queues envelopes loaded from a durable dump (they keep their ids).
    public func restoreQueued(_ envelopes: [Dagent_Envelope], nowNs: UInt64) -> Int {
        var restored = 0
        for envelope in envelopes {
            if parentReady || routes[envelope.dst] != nil || envelope.dst == config.name {
                route(envelope, nowNs: nowNs)
                restored += 1
            } else if (try? queues.enqueue(envelope, nowNs: nowNs)) != nil {
                restored += 1
            } else {
                fail(envelope, .queueFull, "durable queue reload: send_queue_length=\(config.sendQueueLength) exceeded for '\(envelope.dst)'", nowNs: nowNs)
            }
        }
        return restored
    }

    package func flushQueues(nowNs: UInt64) {
        guard !queues.isEmpty else { return }
        let queued = queues.drainAll()
        log(.info, "route up ready: flushing \(queued.count) queued message(s)")
        for envelope in queued { route(envelope, nowNs: nowNs) }
    }
}
