import DAgentPush
import NIOCore

/// What the push service (the plugin) decided about a connection or a subscription.
public enum PushDecision: Sendable, Equatable {
    case allow(user: String)
    case deny(code: Int, reason: String)
}

/// What the push service decided about a client's publish: the topic and data
/// to publish (possibly transformed), or a refusal.
public enum PushPublishDecision: Sendable, Equatable {
    case allow(topic: String, data: [UInt8])
    case deny(code: Int, reason: String)
}

/// The decisions the gateway asks for: once per connection, once per
/// subscription change, once per client publish. Never per delivery.
/// Completions may run on any thread; the gateway hops back to its loop.
public protocol PushService: AnyObject {
    func connect(client: PushClientID, token: String?, remote: String, completion: @escaping @Sendable (PushDecision) -> Void)
    func subscribe(client: PushClientID, user: String, pattern: String, completion: @escaping @Sendable (PushDecision) -> Void)
    func publish(client: PushClientID, user: String, topic: String, data: [UInt8], completion: @escaping @Sendable (PushPublishDecision) -> Void)
    func disconnected(client: PushClientID, user: String?)
    /// The topic patterns the client's token lets it publish to, when the gateway may
    /// decide a publish of this client itself (the service has no publish hooks); nil
    /// to ask `publish` every time. Called on the gateway's loop.
    func publishClaims(client: PushClientID) -> [String]?
}

extension PushService {
    public func publishClaims(client: PushClientID) -> [String]? { nil }
}
