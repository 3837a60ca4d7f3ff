import DAgentWire
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import DAgentNode
import DAgentRouting

/// What the plugin thread asks the event loop to do. Items are queued under a
/// lock and performed in order by one task on the loop (scheduled only when
/// the queue goes from empty to non-empty), so a burst of sends costs one
/// event-loop hop and keeps its order with the requests around it.
final class Outbox: @unchecked Sendable {
    enum Item {
        case send(dst: String, type: UInt32, payload: Data)
        case request(dst: String, type: UInt32, payload: Data, timeout: Double, waiter: RpcWaiter)
        case respond(dst: String, type: UInt32, cookie: UInt64, ok: Bool, payload: Data)
        case publish(topic: String, payload: Data)
    }

    let node: Node
    private let lock = NIOLock()
    private var items: [Item] = []
    private var scheduled = false

    init(node: Node) { self.node = node }

    func push(_ item: Item) {
        let schedule: Bool = lock.withLock {
            items.append(item)
            defer { scheduled = true }
            return !scheduled
        }
        if schedule { node.eventLoop.execute { self.drain() } }
    }

    /// On the event loop.
    private func drain() {
        let batch: [Item] = lock.withLock {
            defer { items = []; scheduled = false }
            return items
        }
        for item in batch {
            switch item {
            case let .send(dst, type, payload):
                do {
                    try node.sendOnLoop(to: dst, type: type, payload: payload)
                } catch {
                    node.logger.warning("plugin send to '\(dst)' (type \(type)) failed: \(error)")
                }
            case let .request(dst, type, payload, timeout, waiter):
                node.requestOnLoop(to: dst, type: type, payload: payload, timeout: timeout, waiter: waiter)
            case let .publish(topic, payload):
                do {
                    try node.publishOnLoop(topic, payload: payload)
                } catch {
                    node.logger.warning("plugin publish on '\(topic)' failed: \(error)")
                }
            case let .respond(dst, type, cookie, ok, payload):
                var request = Dagent_Envelope()
                request.src = dst
                request.type = type
                request.cookie = cookie
                if ok {
                    node.reply(to: request, payload: payload)
                } else {
                    node.replyError(to: request, reason: String(decoding: payload, as: UTF8.self))
                }
            }
        }
    }
}
