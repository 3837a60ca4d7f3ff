/// The gateway's counters, for `dagent tree` and the push plugin.
public struct PushStats: Equatable, Sendable {
    /// Clients connected now (authorized or not yet).
    public var clients = 0
    /// Bytes held in the clients' send queues now.
    public var queueBytes = 0
    /// Messages the gateway received from the tree (once per message, not per client).
    public var messages: UInt64 = 0
    /// Frames handed to client sockets (history replays included).
    public var deliveries: UInt64 = 0
    /// Queued messages replaced by a newer one of a conflated topic.
    public var conflated: UInt64 = 0
    /// Closes, by close code.
    public var closes: [UInt16: UInt64] = [:]
    /// Client operations refused (bad frames, denied, over a limit), by error code.
    public var errors: [Int: UInt64] = [:]
    /// Clients accepted since start.
    public var accepted: UInt64 = 0

    public init() {}

    /// The short name of a close code, for `dagent tree`.
    public static func closeName(_ code: UInt16) -> String {
        switch code {
        case 1000: return "normal"
        case 1001: return "going_away"
        case 1002: return "protocol_error"
        case 1003: return "binary_frame"
        case 1006: return "dropped"
        case 1009: return "too_big"
        case 1013: return "try_again_later"
        case PushCodes.unauthorized: return "unauthorized"
        case PushCodes.slowConsumer: return "slow_consumer"
        default: return "code_\(code)"
        }
    }
}
