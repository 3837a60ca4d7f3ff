import DAgentWire
import Foundation
import NIOCore
import DAgentRouting
import DAgentLink
import DAgentMsgq

/// Completes a request: a promise, or a callback (for C and Python callers).
/// `.message` gets the reply as it was read: its header and its payload as a
/// slice of the frame (no copy). `.promise` and `.callback` get a
/// `Dagent_Envelope`, built for them from that message (a copy of the payload).
public enum RpcWaiter: Sendable {
    case promise(EventLoopPromise<Dagent_Envelope>)
    case callback(@Sendable (Result<Dagent_Envelope, DAgentError>) -> Void)
    case message(@Sendable (Result<DataMessage, DAgentError>) -> Void)

    func succeed(_ reply: DataMessage) {
        switch self {
        case .promise(let p): p.succeed(reply.envelope)
        case .callback(let f): f(.success(reply.envelope))
        case .message(let f): f(.success(reply))
        }
    }

    func fail(_ error: DAgentError) {
        switch self {
        case .promise(let p): p.fail(error)
        case .callback(let f): f(.failure(error))
        case .message(let f): f(.failure(error))
        }
    }
}

/// Sending, requesting and replying. Safe from any thread; the `…OnLoop`
/// variants are the fast path for code already on the event loop.
extension Node {
    /// The header of a message that starts here (source, id and hop limit are stamped by the core).
    /// `send_time_ns` stays unset: nothing on the receiving side reads it, and stamping it cost a
    /// clock read and 9 bytes per message.
    @inline(__always)
    public static func header(to dst: String, type: UInt32, kind: Dagent_Kind, cookie: UInt64 = 0) -> MessageHeader {
        var h = MessageHeader(dst: dst, type: type, kind: kind)
        h.cookie = cookie
        return h
    }

    /// Sends a one-way message. Fails at once for errors known locally
    /// (too large, queue full, no route at the top); later failures arrive as
    /// ERROR envelopes through `onMessage` (or are logged).
    public func send(to dst: String, type: UInt32, payload: Data) -> EventLoopFuture<Void> {
        if eventLoop.inEventLoop {
            return eventLoop.makeCompletedFuture { try sendOnLoop(to: dst, type: type, payload: payload) }
        }
        return eventLoop.submit {
            try self.sendOnLoop(to: dst, type: type, payload: payload)
            // Durable: a message that was queued is on disk before the future completes.
            if self.durableQueue != nil && !self.core.queues.journal.isEmpty { self.durableCommitNow() }
        }
    }

    /// `send` for callers already on the event loop.
    public func sendOnLoop(to dst: String, type: UInt32, payload: Data) throws(DAgentError) {
        try sendFromHere(Self.header(to: dst, type: type, kind: .data), payload: payload, nowNs: nowNs)
    }

    /// `send` for callers on the event loop, from bytes the caller holds
    /// (encoded straight into the link's buffer; not kept after the call).
    public func sendOnLoop(to dst: String, type: UInt32, payload: UnsafeRawBufferPointer) throws(DAgentError) {
        try sendFromHere(Self.header(to: dst, type: type, kind: .data), payload: payload, nowNs: nowNs)
    }

    /// `send` for callers on the event loop, from a `ByteBuffer` (a received payload slice, say).
    public func sendOnLoop(to dst: String, type: UInt32, payload: ByteBuffer) throws(DAgentError) {
        try sendFromHere(Self.header(to: dst, type: type, kind: .data), payload: payload, nowNs: nowNs)
    }

    /// Sends an envelope that starts at this node (on the event loop), by the
    /// same path as the header-and-bytes sends (`Node-send.swift`).
    func sendFromHere(_ envelope: Dagent_Envelope, nowNs: UInt64) throws(DAgentError) {
        guard envelope.queues.isEmpty && !envelope.pickQueues else {
            try core.sendLocal(envelope, nowNs: nowNs)   // queue-group picks: the full path
            perform()
            scheduleFlush()
            return
        }
        try sendFromHere(MessageHeader(envelope), payload: envelope.payload, nowNs: nowNs)
    }

    /// Sends a one-way message and completes when the destination node has
    /// delivered it to its application (a delivery receipt), or fails with the
    /// reason (no route, timeout, ...).
    public func sendConfirmed(to dst: String, type: UInt32, payload: Data, timeout: Double) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Dagent_Envelope.self)
        eventLoop.execute {
            let now = self.nowNs
            let waiter = RpcWaiter.promise(promise)
            if let full = self.pendingRequestsFull() {
                waiter.fail(full)
                return
            }
            let timeoutNs = self.rpcTimeoutNs(timeout)
            let cookie = self.rpcLock.withLock { self.rpc.add(waiter, dst: dst, type: type, nowNs: now, timeoutNs: timeoutNs) }
            do throws(DAgentError) {
                if let link = try self.sendFromHere(Self.header(to: dst, type: type, kind: .data, cookie: cookie), payload: payload, nowNs: now) {
                    self.rpcLock.withLock { self.rpc.sent(cookie: cookie, on: link) }
                }
            } catch {
                _ = self.rpcLock.withLock { self.rpc.complete(cookie: cookie) }
                waiter.fail(error)
                return
            }
        }
        return promise.futureResult.map { _ in () }
    }

    /// Sends a request; the future holds the RESPONSE envelope or fails with
    /// a `DAgentError` (no route, timeout, refused, ...).
    public func request(to dst: String, type: UInt32, payload: Data, timeout: Double) -> EventLoopFuture<Dagent_Envelope> {
        let promise = eventLoop.makePromise(of: Dagent_Envelope.self)
        eventLoop.execute {
            self.requestOnLoop(to: dst, type: type, payload: payload, timeout: timeout, waiter: .promise(promise))
        }
        return promise.futureResult
    }

    /// `request` for callers on the event loop; the waiter is completed on the loop.
    public func requestOnLoop(to dst: String, type: UInt32, payload: Data, timeout: Double, waiter: RpcWaiter) {
        if stopping {
            waiter.fail(DAgentError(.refused, "node '\(config.name)' is shutting down"))
            return
        }
        let now = nowNs
        if let full = pendingRequestsFull() {
            waiter.fail(full)
            return
        }
        let timeoutNs = rpcTimeoutNs(timeout)
        let cookie = rpcLock.withLock { rpc.add(waiter, dst: dst, type: type, nowNs: now, timeoutNs: timeoutNs) }
        do {
            if let link = try sendFromHere(Self.header(to: dst, type: type, kind: .request, cookie: cookie), payload: payload, nowNs: now) {
                rpcLock.withLock { rpc.sent(cookie: cookie, on: link) }
            }
        } catch {
            _ = rpcLock.withLock { rpc.complete(cookie: cookie) }
            waiter.fail(error)
            return
        }
    }

    /// Answers `request` with `payload` (a RESPONSE carrying the request's cookie).
    public func reply(to request: Dagent_Envelope, payload: Data) {
        if !eventLoop.inEventLoop {
            eventLoop.execute { self.reply(to: request, payload: payload) }
            return
        }
        var h = Self.header(to: request.src, type: request.type, kind: .response, cookie: request.cookie)
        if core.localServices.contains(request.dst) { h.src = request.dst }   // the responder is the service
        do {
            try sendFromHere(h, payload: payload, nowNs: nowNs)
        } catch {
            logger.warning("reply to '\(request.src)' failed: \(error)")
        }
    }

    /// Answers `request` with an ERROR carrying `code` (REFUSED by default) and `reason`.
    public func replyError(to request: Dagent_Envelope, code: Dagent_ErrorCode = .refused, reason: String) {
        if !eventLoop.inEventLoop {
            eventLoop.execute { self.replyError(to: request, code: code, reason: reason) }
            return
        }
        var h = Self.header(to: request.src, type: request.type, kind: .error, cookie: request.cookie)
        h.error = code
        h.reason = reason
        try? sendFromHere(h, payload: UnsafeRawBufferPointer(start: nil, count: 0), nowNs: nowNs)
    }

    /// What this node sees (the reply `dagent tree` prints for this node).
    public func treeSnapshot() -> EventLoopFuture<Dagent_TreeReply> {
        eventLoop.submit { self.treeReply(requestID: 0) }
    }

    /// True if messages to `name` go straight to a brother's message-queue
    /// channel (this node is a leaf on `msgq://` and the agent's name table
    /// maps the name to a brother). On the event loop.
    public func isDirectRoute(to name: String) -> Bool {
        core.isBrother(name)
    }

    /// Counters of the routing core.
    public func stats() -> EventLoopFuture<CoreStats> {
        eventLoop.submit { self.core.stats }
    }
}

/// Wall-clock nanoseconds since the epoch.
public func wallClockNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
