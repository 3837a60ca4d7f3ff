import NIOCore

/// A gateway client's number, unique in one gateway.
public typealias PushClientID = UInt64

/// A change of what the gateway must hear from the tree's pub/sub.
public enum PushInterestChange: Equatable, Sendable {
    case subscribe(String)
    case unsubscribe(String)
}

/// What the hub asks of its driver: the sockets and the tree. The NIO gateway
/// implements it over WebSocket channels; tests record the calls.
public protocol PushSink: AnyObject {
    /// Writes `frame` to the client's socket (the driver flushes once per loop
    /// turn). Returns whether the socket can take more now.
    func write(_ id: PushClientID, _ frame: ByteBuffer) -> Bool
    /// Closes the client's WebSocket with `code` and `reason`.
    func close(_ id: PushClientID, code: UInt16, reason: String)
    /// Subscribes or unsubscribes the gateway in the tree's pub/sub.
    func interest(_ change: PushInterestChange)
}
