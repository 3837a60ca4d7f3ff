import DAgentRouting
import DAgentWire
import Foundation
import NIOCore

/// A subscription of a node; `cancel()` ends it (safe from any thread, idempotent).
public final class Subscription: @unchecked Sendable {
    public let id: UInt64
    public let pattern: String
    /// The queue group ("" for none).
    public let queue: String
    weak var node: Node?

    init(id: UInt64, pattern: String, queue: String, node: Node) {
        self.id = id
        self.pattern = pattern
        self.queue = queue
        self.node = node
    }

    /// Stops the deliveries; the interest is withdrawn up the tree.
    public func cancel() { node?.unsubscribe(id) }
}

/// Publish/subscribe on a node: `subscribe` (patterns with `*` and `>`,
/// optional queue group) and `publish`. Handlers run on the event loop and
/// must not block. Delivery is at most once, in order per publisher.
extension Node {
    /// Subscribes to `pattern` (on the event loop or not); the future fails
    /// with `bad topic` or `too many subscriptions`.
    public func subscribe(_ pattern: String, queue: String = "",
                          handler: @escaping (Dagent_Envelope) -> Void) -> EventLoopFuture<Subscription> {
        if eventLoop.inEventLoop {
            return eventLoop.makeCompletedFuture { try subscribeOnLoop(pattern, queue: queue, handler: handler) }
        }
        return eventLoop.submit { try self.subscribeOnLoop(pattern, queue: queue, handler: handler) }
    }

    /// `subscribe` for callers on the event loop.
    public func subscribeOnLoop(_ pattern: String, queue: String = "",
                                handler: @escaping (Dagent_Envelope) -> Void) throws(DAgentError) -> Subscription {
        let id = try core.subscribe(pattern, queue: queue)
        subscriptionHandlers[id] = handler
        perform()
        scheduleFlush()
        return Subscription(id: id, pattern: pattern, queue: queue, node: self)
    }

    /// Ends subscription `id` (from any thread).
    public func unsubscribe(_ id: UInt64) {
        if !eventLoop.inEventLoop {
            eventLoop.execute { self.unsubscribe(id) }
            return
        }
        guard subscriptionHandlers.removeValue(forKey: id) != nil else { return }
        core.unsubscribe(id)
        perform()
        scheduleFlush()
    }

    /// Publishes `payload` on `topic`. Fails at once on a bad topic or an
    /// oversized payload; otherwise completes once the message is handed to
    /// the tree (written to the links whose interest matches).
    public func publish(_ topic: String, payload: Data) -> EventLoopFuture<Void> {
        if eventLoop.inEventLoop {
            return eventLoop.makeCompletedFuture { try publishOnLoop(topic, payload: payload) }
        }
        return eventLoop.submit { try self.publishOnLoop(topic, payload: payload) }
    }

    /// `publish` for callers on the event loop (the fast path).
    public func publishOnLoop(_ topic: String, payload: Data) throws(DAgentError) {
        var e = Dagent_Envelope()
        e.dst = topic
        e.payload = payload
        e.sendTimeNs = wallClockNs()
        try core.publish(e, nowNs: nowNs)
        perform()
        scheduleFlush()
    }

    /// True once the parent's interest is known (always at the top). Before,
    /// publishes go up unconditionally and the parent decides. On any thread.
    public func knowsParentInterest() -> EventLoopFuture<Bool> {
        eventLoop.submit { self.core.knowsParentInterest }
    }

    /// Number of subscriptions of this node, and its publish counters.
    public func pubsubCounters() -> EventLoopFuture<(subscriptions: Int, counters: PubSubCounters)> {
        eventLoop.submit { (self.core.subscriptionCount, self.core.pubsubCounters) }
    }

    func deliverPublish(_ envelope: Dagent_Envelope, to ids: [UInt64]) {
        for id in ids {
            subscriptionHandlers[id]?(envelope)
        }
    }

    /// Publishes for a link whose unsent bytes are over `slow_subscriber_bytes` are dropped.
    func installCongestionCheck() {
        let limit = config.slowSubscriberBytes
        core.setCongestionCheck { [unowned self] id in
            guard let link = self.links[id] else { return false }
            return link.bytesPending > limit
        }
    }
}
