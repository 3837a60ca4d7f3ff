import CPyHost
import DAgentNode
import DAgentRouting
import DAgentWire
import Foundation
import NIOCore

/// Pub/sub for plugins: `dagent.publish` goes through the outbox (in order with
/// sends); `dagent.subscribe` waits on the plugin thread (GIL released) until
/// the node holds the subscription; deliveries are queued for the plugin
/// thread as events, bounded by `plugins.queue_length` together with the inbox.
extension PluginHost {
    /// Subscribes on the node for a plugin (plugin thread, no GIL). Returns the id.
    func subscribe(pattern: String, queue: String) throws(DAgentError) -> UInt64 {
        let box = IDBox()
        let future = node.eventLoop.submit { () throws -> UInt64 in
            let s = try self.node.subscribeOnLoop(pattern, queue: queue) { [unowned self] e in
                self.post(publication: e, subscription: box.id)
            }
            box.id = s.id
            self.lock.withLock { self.subscriptions[s.id] = s }
            return s.id
        }
        do {
            return try future.wait()
        } catch let e as DAgentError {
            throw e
        } catch {
            throw DAgentError(.refused, "subscribe to '\(pattern)' failed: \(error)")
        }
    }

    /// Ends a plugin's subscription (any thread; unknown ids are ignored).
    func unsubscribe(_ id: UInt64) {
        let s = lock.withLock { subscriptions.removeValue(forKey: id) }
        s?.cancel()
    }

    /// A published message for the plugins (event loop). Over queue_length
    /// queued items it is dropped and counted, as the slow-consumer rule says.
    func post(publication e: Dagent_Envelope, subscription id: UInt64) {
        let wake: Bool? = lock.withLock {
            guard state != .stopped else { return nil }
            if inboxCount + takenCount + queuedPublications >= queueLength {
                stats.dropped += 1
                return nil
            }
            queuedPublications += 1
            events.append(.publication(id: id, topic: e.dst, src: e.src, payload: e.payload))
            defer { signalled = true }
            return !signalled
        }
        if wake == true && !wakeScheduled {
            wakeScheduled = true
            node.eventLoop.execute {
                self.wakeScheduled = false
                cpy_eventfd_signal(self.wakeFD)
            }
        }
    }
}

/// The id a subscription's handler reports (known once `subscribeOnLoop` returns,
/// on the loop where the deliveries happen too).
final class IDBox: @unchecked Sendable { var id: UInt64 = 0 }

extension Bridge {
    static let publish: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, Int, UnsafeRawPointer?, Int,
                                        UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 = { ctx, topicP, topicLen, bytes, len, reason in
        let h = host(ctx)
        let topic = string(topicP, topicLen)
        do throws(TopicError) {
            try TopicRules.checkTopic(topic, limits: h.node.config.pubsub.topic)
        } catch {
            return fail(reason, .badTopic, error.asDAgentError.reason)
        }
        let limit = h.node.config.maxMessageBytes
        if len > limit {
            return fail(reason, .tooLarge, "publish on '\(topic)' is \(len) bytes, over max_message_bytes=\(limit)")
        }
        h.outbox.push(.publish(topic: topic, payload: data(bytes, len)))
        return 0
    }

    static let subscribe: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, Int, UnsafePointer<CChar>?, Int,
                                          UnsafeMutablePointer<UInt64>?, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 = { ctx, patternP, patternLen, queueP, queueLen, id, reason in
        let h = host(ctx)
        do throws(DAgentError) {
            id?.pointee = try h.subscribe(pattern: string(patternP, patternLen), queue: string(queueP, queueLen))
            return 0
        } catch {
            return fail(reason, error.code, error.reason)
        }
    }

    static let unsubscribe: @convention(c) (UnsafeMutableRawPointer?, UInt64) -> Void = { ctx, id in
        host(ctx).unsubscribe(id)
    }
}
