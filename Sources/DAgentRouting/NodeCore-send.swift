import DAgentWire

/// Sending without an envelope: a message that starts here is a
/// `MessageHeader` plus the caller's payload bytes. The core checks and
/// stamps the header and, on the fast path, names the hop; the driver then
/// encodes header and payload straight into that link's outgoing buffer.
/// No `Dagent_Envelope`, no `CoreAction`.
extension NodeCore {
    /// Checks `header` (destination name, payload size against
    /// `max_message_bytes`), stamps source, id and hop limit, and returns the
    /// hop when the message leaves at once on a link and no earlier action is
    /// still pending (so order is kept). Returns nil when it must take the
    /// full path: then call `sendStamped` with the envelope it makes.
    /// Errors known at once are thrown.
    @inline(__always)
    public func sendFast(_ header: inout MessageHeader, payloadCount: Int) throws(DAgentError) -> Hop? {
        try stamp(&header, payloadCount: payloadCount)
        if actions.isEmpty && !draining, routesNow(header.dst), case .link(let next) = nextHop(header.dst) {
            countOut(next)
            return next
        }
        return nil
    }

    /// Checks a message that starts here and fills in source, id and hop limit.
    @inline(__always)
    package func stamp(_ header: inout MessageHeader, payloadCount: Int) throws(DAgentError) {
        if header.dst != lastValidDestination {
            if let problem = NameRules.problem(with: header.dst) {
                throw DAgentError(.noRoute, "bad destination: \(problem)")
            }
            lastValidDestination = header.dst
        }
        if payloadCount > config.maxMessageBytes {
            throw DAgentError(.tooLarge, "message of \(payloadCount) bytes exceeds max_message_bytes=\(config.maxMessageBytes)")
        }
        if header.src.isEmpty || !localServices.contains(header.src) { header.src = config.name }
        header.id = nextMessageID
        nextMessageID &+= 1
        header.hopLimit = config.hopLimit
    }

    /// Routes a message `sendFast` stamped but did not route (local delivery,
    /// queueing while the route up is not ready, the top of the tree).
    public func sendStamped(_ envelope: Dagent_Envelope, nowNs: UInt64) throws(DAgentError) {
        try dispatchLocal(envelope, nowNs: nowNs)
    }
}
