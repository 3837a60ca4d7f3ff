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
    /// with `bad topic` or `too many subscriptions`. The handler gets each
    /// publication as a `DataMessage` (topic in `dst`, the payload a slice of
    /// the bytes read: no copy).
    public func subscribeMessages(_ pattern: String, queue: String = "",
                                  handler: @escaping (DataMessage) -> Void) -> EventLoopFuture<Subscription> {
        if eventLoop.inEventLoop {
            return eventLoop.makeCompletedFuture { try subscribeMessagesOnLoop(pattern, queue: queue, handler: handler) }
        }
        return eventLoop.submit { try self.subscribeMessagesOnLoop(pattern, queue: queue, handler: handler) }
    }

    /// `subscribe` with a handler that takes a `Dagent_Envelope` (a copy of the payload per delivery).
    public func subscribe(_ pattern: String, queue: String = "",
                          handler: @escaping (Dagent_Envelope) -> Void) -> EventLoopFuture<Subscription> {
        subscribeMessages(pattern, queue: queue) { handler($0.envelope) }
    }

    /// `subscribeMessages` for callers on the event loop.
    public func subscribeMessagesOnLoop(_ pattern: String, queue: String = "",
                                        handler: @escaping (DataMessage) -> Void) throws(DAgentError) -> Subscription {
        let id = try core.subscribe(pattern, queue: queue)
        subscriptionHandlers[id] = handler
        perform()
        scheduleFlush()
        return Subscription(id: id, pattern: pattern, queue: queue, node: self)
    }

    /// `subscribe` for callers on the event loop.
    public func subscribeOnLoop(_ pattern: String, queue: String = "",
                                handler: @escaping (Dagent_Envelope) -> Void) throws(DAgentError) -> Subscription {
        try subscribeMessagesOnLoop(pattern, queue: queue) { handler($0.envelope) }
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

    /// `publish` for callers on the event loop (the fast path: header and
    /// payload encoded straight into each link's outgoing buffer, no envelope).
    public func publishOnLoop(_ topic: String, payload: Data) throws(DAgentError) {
        var failure: DAgentError?
        payload.withUnsafeBytes { p in
            do throws(DAgentError) { try publishOnLoop(topic, payload: p) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// `publishOnLoop` for a payload the caller holds as raw bytes.
    public func publishOnLoop(_ topic: String, payload: UnsafeRawBufferPointer) throws(DAgentError) {
        var h = MessageHeader(dst: topic, kind: .publish)   // no send_time_ns (Node.header)
        let hops = try core.publishFast(&h, payload: payload, nowNs: nowNs)
        for hop in hops { write(h, payload: payload, to: hop) }
        if hops.isEmpty || !core.actions.isEmpty { perform() }   // the slow path, a queued publish (durable log), logs
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

    /// A publication from an action (the slow path: the payload is copied once for all subscriptions).
    func deliverPublish(_ envelope: Dagent_Envelope, to ids: [UInt64]) {
        let m = DataMessage(envelope)
        for id in ids {
            subscriptionHandlers[id]?(m)
        }
    }

    /// Hands the publications of the fast path to their handlers, in order.
    /// A handler that publishes or subscribes re-enters `perform`; what it
    /// causes is delivered by this loop, after the publications before it.
    func deliverPublications() {
        guard !publicationsBusy else { return }
        publicationsBusy = true
        defer { publicationsBusy = false }
        while !core.publications.isEmpty {
            core.takePublications(swappingWith: &deliveringPublications)
            for p in deliveringPublications {
                for id in p.subscriptions { subscriptionHandlers[id]?(p.message) }
            }
        }
        deliveringPublications.removeAll(keepingCapacity: true)
    }

    /// Writes the publish copies the core relayed without actions. With
    /// `flushingEach` (the frame ended its read) a fan-out to several links
    /// flushes each link right after its copy: the first subscriber does not
    /// wait for the copies of all the others (with a durable queue, the
    /// journal goes first: `flushDirty`).
    func writeRelays(flushingEach: Bool = false) {
        core.takeRelays(swappingWith: &writingRelays)
        if flushingEach && writingRelays.count > 1 && durableQueue == nil {
            for relay in writingRelays {
                write(relay)
                if !relay.hop.isBrother { links[relay.hop.link]?.flush() }
            }
        } else {
            for relay in writingRelays { write(relay) }
        }
        writingRelays.removeAll(keepingCapacity: true)
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
