import DAgentWire
import NIOCore

/// A publication for subscriptions of this node, taken off the fast path:
/// the message (header parsed once, payload a slice of the frame it came
/// in) and the subscriptions it goes to.
public struct Publication {
    public var message: DataMessage
    public var subscriptions: [UInt64]
}

/// Publications on the data path without envelopes or actions.
///
/// A publish that starts here is a `MessageHeader` plus the caller's bytes:
/// `publishFast` checks and stamps it and names the links it goes to; the
/// driver encodes header and payload into each one's outgoing buffer.
///
/// A PUBLISH frame read off a link (`receiveOrRelay`) is matched against the
/// interest table on its routing header; its copies for other links go into
/// `relays` as they came in (hop limit patched on write), and a delivery to
/// this node's subscriptions into `publications`. The driver takes both
/// after the call.
///
/// What stays on the slow path (a `Dagent_Envelope` and actions): a publish
/// with queue-group picks (one travelling with `queues`/`pick_queues`, or one
/// starting here whose match has a group), a publish from here to this
/// node's own subscriptions, or one while the route up is not ready
/// (queued), or while earlier actions are pending (so order is kept).
extension NodeCore {
    /// Takes the publications delivered since the last call; `spare`
    /// (emptied, capacity kept) becomes the new list.
    public func takePublications(swappingWith spare: inout [Publication]) {
        spare.removeAll(keepingCapacity: true)
        swap(&publications, &spare)
    }

    /// Takes the publish copies to write since the last call; `spare`
    /// (emptied, capacity kept) becomes the new list.
    public func takeRelays(swappingWith spare: inout [Relay]) {
        spare.removeAll(keepingCapacity: true)
        swap(&relays, &spare)
    }

    /// Publishes `payload` on `header.dst` from this node. Checks and stamps
    /// `header` (kind, source, id, hop limit) and returns the links to write
    /// header and payload to, slow links already dropped and counted. An
    /// empty result means nothing to write (nobody wants it), or that the
    /// publish took the slow path: then its actions are pending. Bad topics
    /// and oversized payloads are thrown.
    public func publishFast(_ header: inout MessageHeader, payload: UnsafeRawBufferPointer,
                            nowNs: UInt64) throws(DAgentError) -> [Hop] {
        try stampPublish(&header, payloadCount: payload.count)
        guard actions.isEmpty && !draining && (!config.hasParent || parentReady) else {
            try publishStamped(header.envelope(payload: payload), nowNs: nowNs)
            return []
        }
        // From here (`from` nil) the topic was checked: the plan always exists.
        guard let plan = planPublish(header.dst, from: nil, picks: .all) else { return [] }
        if plan.isEmpty {
            pubsub.counters.unwanted &+= 1
            return []
        }
        guard plan.locals.isEmpty, !plan.blindParent, plan.links.allSatisfy({ $0.1.isEmpty }) else {
            routePublish(header.envelope(payload: payload), plan: plan, picks: .all)
            return []
        }
        var hops: [Hop] = []
        hops.reserveCapacity(plan.links.count)
        for (link, _) in plan.links where !dropForSlowLink(link) { hops.append(Hop(link: link)) }
        return hops
    }

    /// Checks a publish that starts here and fills in kind, source, id and hop limit.
    @inline(__always)
    package func stampPublish(_ h: inout MessageHeader, payloadCount: Int) throws(DAgentError) {
        try checkPublish(h.dst, payloadCount: payloadCount)
        h.kind = .publish
        h.src = config.name
        h.id = nextMessageID
        nextMessageID &+= 1
        h.hopLimit = config.hopLimit
        h.cookie = 0
        pubsub.counters.published &+= 1
    }
}
