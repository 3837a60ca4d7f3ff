import DAgentWire

/// What the routing core asks its driver to do. The core never touches a
/// socket: it appends actions, and the driver (the `Node`, or a test)
/// performs them in order.
public enum CoreAction: Equatable {
    /// Write this frame to the link. `flush` marks the end of a burst.
    case send(LinkID, Dagent_Frame)
    /// Write this envelope to the link (the hot path; no `Frame` is built).
    case forward(LinkID, Dagent_Envelope)
    /// Hand an envelope addressed to this node to the local application.
    case deliver(Dagent_Envelope)
    /// Close the link after writing what was queued to it.
    case close(LinkID, reason: String)
    /// This node's own registration with its parent succeeded.
    case registered(session: UInt64, parent: String)
    /// This node's own registration failed or was revoked; the name is not ours.
    case registrationFailed(Dagent_ErrorCode, reason: String)
    /// The route up is ready again after being down (queues were flushed).
    case parentReady
    /// The parent link is unusable; the driver should dial another parent.
    case parentLost(reason: String)
    /// Something worth a log line.
    case log(LogLevel, String)
}

/// Log levels the core uses (mapped onto swift-log by the driver).
public enum LogLevel: Equatable, Sendable { case debug, info, notice, warning, error }
