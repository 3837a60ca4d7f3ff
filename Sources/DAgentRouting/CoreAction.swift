import DAgentWire
import NIOCore

/// What the routing core asks its driver to do. The core never touches a
/// socket: it appends actions, and the driver (the `Node`, or a test)
/// performs them in order. What the root group needs goes through its
/// `TopOfTreeAuthority`, not through actions.
public enum CoreAction: Equatable {
    /// Write this frame to the link. `flush` marks the end of a burst.
    case send(LinkID, Dagent_Frame)
    /// Write this envelope to the hop (a message that starts here).
    case forward(Hop, Dagent_Envelope)
    /// Relay envelope bytes as they came in, with the hop limit at
    /// `hopLimitOffset` patched to `hopLimit` (the forwarding fast path:
    /// the envelope is never decoded).
    case forwardRaw(Hop, ByteBuffer, hopLimitOffset: Int, hopLimit: UInt32)
    /// Relay a batch's bytes unopened, hop limit patched (see `Batch`).
    case forwardRawBatch(Hop, ByteBuffer, hopLimitOffset: Int, hopLimit: UInt32)
    /// The peer on this link asked what we see (`dagent tree`); the driver
    /// answers with `treeReply(requestID:)` plus its socket buffer depths.
    case treeRequested(LinkID, requestID: UInt64)
    /// Hand a publish to these subscriptions of this node (`NodeCore.subscribe`).
    case deliverPublish(Dagent_Envelope, subscriptions: [UInt64])
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
