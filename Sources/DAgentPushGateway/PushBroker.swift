import NIOCore

/// How a gateway takes part in pub/sub: it subscribes to the patterns its
/// clients (and its history policies) need, and publishes what clients and
/// the plugin send. `deliver` is called on the gateway's event loop.
public protocol PushBroker: AnyObject {
    /// Called with each message heard (`via`: the pattern it arrived through, if the
    /// broker delivers once per matching subscription).
    var deliver: ((_ topic: String, _ payload: ByteBuffer, _ via: String?) -> Void)? { get set }
    func subscribe(_ pattern: String)
    func unsubscribe(_ pattern: String)
    /// Publishes; the failure (too large, ...) is returned as a sentence.
    func publish(topic: String, payload: ByteBuffer) -> String?
}

/// A broker that serves one gateway alone: what is published here is heard
/// here. Used until the node's pub/sub carries the topics (and in tests).
public final class LocalPushBroker: PushBroker {
    public var deliver: ((String, ByteBuffer, String?) -> Void)?
    var patterns: Set<String> = []

    public init() {}

    public func subscribe(_ pattern: String) { patterns.insert(pattern) }
    public func unsubscribe(_ pattern: String) { patterns.remove(pattern) }

    public func publish(topic: String, payload: ByteBuffer) -> String? {
        deliver?(topic, payload, nil)
        return nil
    }
}
