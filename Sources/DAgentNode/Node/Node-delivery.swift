import DAgentRouting
import DAgentWire
import Foundation
import NIOCore

/// Local delivery: the core's inbox, taken in batches after each input and
/// handed on — RPC completions and services first, then the application's
/// handler (`onMessages`, one call per batch; or `onMessage`, per message).
extension Node {
    /// Delivers what the core put in its inbox, including what handlers cause
    /// while it runs (a handler that sends to this node itself).
    func deliverInbox() {
        guard !deliveringInbox else { return }
        deliveringInbox = true
        defer { deliveringInbox = false }
        // The batch is a local while it is handed out: the messages are read in place,
        // where elements of a stored property would be copied (retaining every field) for
        // each call that gets one. `delivering` keeps the spare array between batches.
        var batch: [DataMessage] = []
        swap(&batch, &delivering)
        defer {
            // Let go of the messages now, not at the next swap: their payloads are slices of the
            // bytes they were read in, and while they are held the transport cannot reuse that
            // buffer (TLS copies its whole plaintext buffer on the next read if it is shared).
            batch.removeAll(keepingCapacity: true)
            swap(&batch, &delivering)
        }
        while !core.inbox.isEmpty {
            core.takeInbox(swappingWith: &batch)
            var receipts = false
            // Usually every message goes to `onMessages`: then it gets the inbox's array itself
            // (moved, no copy per message). `toHandlers` is built only once one is taken here.
            var split = false
            let batchHandler = onMessages != nil
            for i in batch.indices {
                let wantsReceipt = NodeCore.wantsReceipt(batch[i])
                let toHandler: Bool
                if consumedHere(batch[i]) {
                    if wantsReceipt { core.acceptDelivery(batch[i], nowNs: nowNs); receipts = true }
                    toHandler = false
                } else if batchHandler {
                    if wantsReceipt && !handlerAcknowledgesDeliveries { core.acceptDelivery(batch[i], nowNs: nowNs); receipts = true }
                    toHandler = true
                } else {
                    onMessage?(batch[i].envelope)
                    if wantsReceipt { core.acceptDelivery(batch[i], nowNs: nowNs); receipts = true }
                    toHandler = false
                }
                if split {
                    if toHandler { toHandlers.append(batch[i]) }
                } else if !toHandler && batchHandler {
                    split = true
                    toHandlers.removeAll(keepingCapacity: true)
                    toHandlers.append(contentsOf: batch[..<i])
                }
            }
            if let handler = onMessages {
                if !split {
                    if !batch.isEmpty { handler(batch) }
                } else if !toHandlers.isEmpty {
                    handler(toHandlers)
                    toHandlers.removeAll(keepingCapacity: true)
                }
            }
            if receipts || handlerAcknowledgesDeliveries {
                perform()
                scheduleFlush()
            }
        }
    }

    /// Sends the delivery receipt `m` asked for (no-op if it asked for none):
    /// for an `onMessages` handler with `handlerAcknowledgesDeliveries`, once it
    /// accepted the message. On the event loop.
    public func acceptDelivery(_ m: DataMessage) {
        guard NodeCore.wantsReceipt(m) else { return }
        core.acceptDelivery(m, nowNs: nowNs)
        if !deliveringInbox { perform(); scheduleFlush() }
    }

    /// Answers a message that asked for a receipt with an ERROR instead (the
    /// handler's queue is full, it is stopped...); `dagent send` then fails
    /// with `reason`. No-op for a message that asked for no receipt. On the event loop.
    public func refuseDelivery(_ m: DataMessage, code: Dagent_ErrorCode, reason: String) {
        guard NodeCore.wantsReceipt(m) else { return }
        core.refuseDelivery(m, code, reason, nowNs: nowNs)
        if !deliveringInbox { perform(); scheduleFlush() }
    }

    /// Handles what never reaches the application: services (`@state`),
    /// replies to pending requests, echo. True if `m` was handled.
    @inline(__always)
    func consumedHere(_ m: DataMessage) -> Bool {
        if !serviceHandlers.isEmpty, let service = serviceHandlers[m.dst] {
            service(m.envelope)
            return true
        }
        if !handledTypes.isEmpty, m.kind == .request || (m.kind == .data && oneWayTypes.contains(m.type)),
           handledTypes.contains(m.type), let handler = typeHandlers[m.type] {
            handler(m.envelope)
            return true
        }
        switch m.kind {
        case .response, .error:
            if m.cookie != 0, let pending = rpcLock.withLock({ rpc.complete(answerCookie: m.cookie, kind: m.kind, src: m.src) }) {
                onRPCDone?(Double(nowNs &- (pending.deadlineNs &- pending.timeoutNs)) / 1e9, m.kind == .response ? "ok" : "error")
                if m.kind == .response {
                    pending.waiter.succeed(m)   // an envelope is built only for a waiter that wants one
                } else {
                    pending.waiter.fail(DAgentError(m.error, m.reason))
                }
                return true
            }
            if m.kind == .error {
                logger.warning("message to '\(m.dst == config.name ? "?" : m.dst)' failed: \(DAgentError.name(of: m.error)): \(m.reason)")
            }
            return false
        case .request where config.echo:
            reply(to: m, payload: m.payload)
            return true
        default:
            return false
        }
    }

    /// Takes requests of `type` (a reserved admin type) before the
    /// application's handlers (`onMessages`/`onMessage`) see them; the handler
    /// runs on the event loop. Callable from any thread.
    public func handleRequests(ofType type: UInt32, _ handler: @escaping (Dagent_Envelope) -> Void) {
        if eventLoop.inEventLoop {
            typeHandlers[type] = handler
        } else {
            eventLoop.execute { self.typeHandlers[type] = handler }
        }
    }

    /// Like `handleRequests(ofType:)`, and takes the one-way messages of `type`
    /// too (`envelope.kind == .data`: nothing to answer).
    public func handleMessages(ofType type: UInt32, _ handler: @escaping (Dagent_Envelope) -> Void) {
        let install = {
            if !self.oneWayTypes.contains(type) { self.oneWayTypes.append(type) }
            self.typeHandlers[type] = handler
        }
        if eventLoop.inEventLoop { install() } else { eventLoop.execute(install) }
    }

    /// Answers a request from the data path with `payload` (on the event loop).
    public func reply(to request: DataMessage, payload: ByteBuffer) {
        var h = Self.header(to: request.src, type: request.type, kind: .response, cookie: request.cookie)
        if !core.localServices.isEmpty && core.localServices.contains(request.dst) { h.src = request.dst }   // the responder is the service
        do {
            try sendFromHere(h, payload: payload, nowNs: nowNs)
        } catch {
            logger.warning("reply to '\(request.src)' failed: \(error)")
        }
    }
}
