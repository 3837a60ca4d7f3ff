import DAgentNode
import DAgentRouting
import Foundation
import NIOCore

/// How a gateway takes part in pub/sub: it subscribes to the patterns its
/// clients (and its history policies) need, and publishes what clients and
/// the plugin send. `deliver` is called on the gateway's event loop.
public protocol PushBroker: AnyObject {
    /// Called with each message heard (`via`: the pattern it arrived through, if the
    /// broker delivers once per matching subscription).
    var deliver: ((_ topic: String, _ payload: Data, _ via: String?) -> Void)? { get set }
    func subscribe(_ pattern: String)
    func unsubscribe(_ pattern: String)
    /// Publishes; a failure (too large, ...) is returned as a sentence.
    func publish(topic: String, payload: Data) -> String?
}

/// A broker that serves one gateway alone: what is published here is heard
/// here (tests, and a gateway without a tree).
public final class LocalPushBroker: PushBroker {
    public var deliver: ((String, Data, String?) -> Void)?
    var patterns: Set<String> = []

    public init() {}

    public func subscribe(_ pattern: String) { patterns.insert(pattern) }
    public func unsubscribe(_ pattern: String) { patterns.remove(pattern) }

    public func publish(topic: String, payload: Data) -> String? {
        deliver?(topic, payload, nil)
        return nil
    }
}

/// The tree's pub/sub through the node: one node subscription per pattern
/// the gateway needs (however many clients hold it). The node calls each
/// matching subscription's handler, so `via` names the pattern.
public final class NodePushBroker: PushBroker {
    public var deliver: ((String, Data, String?) -> Void)?
    let node: Node
    var subscriptions: [String: Subscription] = [:]

    public init(node: Node) {
        self.node = node
    }

    public func subscribe(_ pattern: String) {
        guard subscriptions[pattern] == nil else { return }
        do {
            // The message's topic and payload only: no envelope made per publication.
            subscriptions[pattern] = try node.subscribeMessagesOnLoop(pattern) { [weak self] m in
                self?.deliver?(m.header.dst, Data(m.payload.readableBytesView), pattern)
            }
        } catch {
            node.logger.warning("push: cannot subscribe to '\(pattern)': \(error)")
        }
    }

    public func unsubscribe(_ pattern: String) {
        subscriptions.removeValue(forKey: pattern)?.cancel()
    }

    public func publish(topic: String, payload: Data) -> String? {
        do {
            try node.publishOnLoop(topic, payload: payload)
            return nil
        } catch {
            return "\(error)"
        }
    }
}
