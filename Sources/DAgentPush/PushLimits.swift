/// The gateway's named limits (the `plugins.config.push.limits` section and
/// `docs/push.md`). Every one is enforced with an error or close that names it.
public struct PushLimits: Sendable, Equatable {
    /// Bytes a client's send queue may hold while its socket is not writable;
    /// past it the client is closed with 4008 (`send_queue_bytes`).
    public var sendQueueBytes = 1 << 20
    /// Largest client frame, after reassembly (`max_frame_bytes`); larger is closed with 1009.
    public var maxFrameBytes = 64 * 1024
    /// Subscriptions one client may hold (`max_subscriptions`).
    public var maxSubscriptions = 100
    /// Client operations waiting for the push plugin at once (`max_pending_ops`).
    public var maxPendingOps = 32
    /// Longest topic or pattern in bytes (`max_topic_bytes`).
    public var maxTopicBytes = 256
    /// Clients one gateway accepts (`max_clients`); more are closed with 1013.
    public var maxClients = 20_000
    /// Topics whose sequence numbers the gateway tracks in one epoch (`max_topics`);
    /// past it a new epoch starts (clients then recover with `recovered:false`).
    public var maxTopics = 100_000
    /// Seconds the push plugin has to answer a connect, subscribe or publish (`plugin_timeout`).
    public var pluginTimeout = 5.0
    /// Seconds a closed client has to take its close frame (and the frames queued
    /// before it) off its socket (`close_timeout`); past it the connection is
    /// aborted with a TCP reset, so a client that stopped reading is not kept.
    public var closeTimeout = 10.0
    /// permessage-deflate (RFC 7692) for the clients that offer it (`deflate`).
    public var deflate = true
    /// Server messages shorter than this go out uncompressed, even to a deflate client (`deflate_min_bytes`).
    public var deflateMinBytes = 256

    public init() {}
}

/// WebSocket close codes and `error` frame codes of the push protocol.
public enum PushCodes {
    // Close codes.
    /// The token is missing, invalid or expired (or the connect hook denied).
    public static let unauthorized: UInt16 = 4001
    /// The client's send queue went over `send_queue_bytes`.
    public static let slowConsumer: UInt16 = 4008
    /// The gateway or its node is shutting down.
    public static let goingAway: UInt16 = 1001
    /// A binary frame (the protocol is JSON text frames).
    public static let unsupportedData: UInt16 = 1003
    /// A frame over `max_frame_bytes`.
    public static let tooBig: UInt16 = 1009
    /// The gateway is at `max_clients`, or the push plugin is not loaded.
    public static let tryAgainLater: UInt16 = 1013
    /// A WebSocket protocol error (e.g. a reserved bit without its extension).
    public static let protocolError: UInt16 = 1002
    /// A compressed message that does not inflate.
    public static let invalidData: UInt16 = 1007

    // Error frame codes (the connection stays open).
    /// Malformed JSON, a missing or ill-typed field, a bad topic or pattern.
    public static let badRequest = 4400
    /// The token's claims or a hook denied the operation.
    public static let forbidden = 4403
    /// An op the protocol does not have.
    public static let unknownOp = 4405
    /// A per-client limit (`max_subscriptions`, `max_pending_ops`).
    public static let limit = 4429
    /// The push plugin did not answer, or failed.
    public static let unavailable = 4503
}
