import CDAgent
import DAgentNode
import DAgentRouting
import DAgentWire
import Foundation
import NIOCore

// Publish/subscribe of the C API (cdagent.h): dagent_publish, dagent_subscribe,
// dagent_unsubscribe. Deliveries are queued like messages, as
// DAGENT_ITEM_PUBLICATION items carrying the subscription id and the topic.

extension Handle {
    /// Queues a publication for subscription `id` (on the node's event loop). Over
    /// `slow_subscriber_bytes` of queued publication payload, it is dropped and counted.
    func push(publication m: DataMessage, subscription id: UInt64, limit: Int) {
        let n = m.payload.readableBytes
        let wake: Bool = lock.withLock {
            if destroyed { return false }
            if queuedPublicationBytes + n > limit && queuedPublicationBytes > 0 {
                publicationDrops += 1
                return false
            }
            queuedPublicationBytes += n
            let wasEmpty = queue.isEmpty
            queue.append(QueuedItem(kind: Int32(DAGENT_ITEM_PUBLICATION), code: 0, type: 0, cookie: 0, token: id, src: m.src,
                                    data: m.payload, topic: m.dst))
            return wasEmpty
        }
        if wake { wakeTaker() }
    }
}

@_cdecl("dagent_publish")
public func dagent_publish(_ p: OpaquePointer?, _ topic: UnsafePointer<CChar>?, _ data: UnsafeRawPointer?, _ len: Int) -> Int32 {
    guard let h = handle(p) else { return -Int32(DAGENT_E_STATE) }
    let name = string(topic) ?? ""
    let node = h.node
    do {
        try TopicRules.checkTopic(name, limits: node.config.pubsub.topic)
    } catch {
        return fail(Int32(DAGENT_E_BAD_TOPIC), error.asDAgentError.reason)
    }
    let limit = node.config.maxMessageBytes
    if len > limit {
        return fail(Int32(DAGENT_E_TOO_LARGE), "publish on '\(name)' is \(len) bytes, over max_message_bytes=\(limit)")
    }
    let payload = (data != nil && len > 0) ? Data(bytes: data!, count: len) : Data()
    if node.eventLoop.inEventLoop {
        do { try node.publishOnLoop(name, payload: payload) } catch { return fail(error) }
        return 0
    }
    let charge = Node.windowCharge(payloadBytes: len)
    if let full = takeWindow(node, charge, what: "publish on '\(name)'") { return full }
    // Fire and forget, in order: the checks that can fail were made above.
    node.executeHandingOff {
        do { try node.publishOnLoop(name, payload: payload) } catch {
            node.logger.warning("publish on '\(name)' failed: \(error)")
        }
        node.releaseWindowAfterFlush(charge)
    }
    return 0
}

@_cdecl("dagent_subscribe")
public func dagent_subscribe(_ p: OpaquePointer?, _ pattern: UnsafePointer<CChar>?, _ queue: UnsafePointer<CChar>?) -> Int64 {
    guard let h = handle(p) else { return -Int64(DAGENT_E_STATE) }
    let pat = string(pattern) ?? ""
    let group = string(queue) ?? ""
    let node = h.node
    let limit = node.config.slowSubscriberBytes
    let subscribe = { () throws -> UInt64 in
        // On the loop, where deliveries happen too: none can come before `box.id` is set.
        let box = SubscriptionID()
        let s = try node.subscribeMessagesOnLoop(pat, queue: group) { [weak h] m in
            h?.push(publication: m, subscription: box.id, limit: limit)   // the payload a slice of the bytes read
        }
        box.id = s.id
        h.subscriptions[s.id] = s
        return s.id
    }
    do {
        let id = node.eventLoop.inEventLoop ? try subscribe() : try node.eventLoop.submit(subscribe).wait()
        return Int64(id)
    } catch {
        return Int64(fail(error))
    }
}

/// The id a subscription's handler reports (known only once `subscribeOnLoop` returns).
private final class SubscriptionID: @unchecked Sendable { var id: UInt64 = 0 }

@_cdecl("dagent_unsubscribe")
public func dagent_unsubscribe(_ p: OpaquePointer?, _ id: UInt64) -> Int32 {
    guard let h = handle(p) else { return -Int32(DAGENT_E_STATE) }
    let cancel = { h.subscriptions.removeValue(forKey: id)?.cancel() }
    if h.node.eventLoop.inEventLoop {
        cancel()
    } else {
        do { try h.node.eventLoop.submit(cancel).wait() } catch { return fail(error) }
    }
    return 0
}

@_cdecl("dagent_publication_drops")
public func dagent_publication_drops(_ p: OpaquePointer?) -> Int64 {
    guard let h = handle(p) else { return -Int64(DAGENT_E_STATE) }
    return Int64(h.lock.withLock { h.publicationDrops })
}
