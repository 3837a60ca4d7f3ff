import DAgentPush
import Foundation
import Logging
import NIOCore
import NIOWebSocket

/// One node's push gateway: browser clients on WebSocket, fanned out from the
/// tree's pub/sub by the pure `PushHub`. All state lives on `loop` (the
/// node's event loop); client channels on other loops hop to it.
///
/// Until the push service is attached (`service`), new clients are closed
/// with 1013 ("the push plugin is not loaded").
public final class PushGateway: PushSink, @unchecked Sendable {
    public let loop: EventLoop
    public let hub: PushHub
    public let broker: PushBroker
    public var service: PushService?
    let logger: Logger
    /// Where `dagent tree` and the log say this gateway runs.
    public let nodeName: String
    /// The connected clients (PushGateway-wire.swift).
    var conns: [PushClientID: PushConn] = [:]
    /// Clients written to since the last flush (each once), and a spare list.
    var dirty: [PushConn] = []
    var spareDirty: [PushConn] = []
    var flushScheduled = false
    /// Each hub frame framed for the wire once (PushGateway-wire.swift).
    var wire = PushWireFrames()
    var nextID: PushClientID = 1
    /// Client frames that arrived before the token was accepted.
    var early: [PushClientID: [[UInt8]]] = [:]
    let deflater = PushDeflater()
    let clock: () -> UInt64

    public init(loop: EventLoop, nodeName: String, limits: PushLimits = PushLimits(), broker: PushBroker = LocalPushBroker(),
                logger: Logger, clock: @escaping () -> UInt64 = { DispatchTime.now().uptimeNanoseconds }) {
        self.loop = loop
        self.nodeName = nodeName
        self.broker = broker
        self.clock = clock
        var log = logger
        log[metadataKey: "component"] = "push"
        self.logger = log
        let boot = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let placeholder = NullSink()
        hub = PushHub(limits: limits, bootID: boot, sink: placeholder)
        hub.sink = self
        broker.deliver = { [unowned self] topic, payload, via in
            self.hub.deliver(topic: topic, payload: payload, via: via, nowNs: self.clock())
        }
    }

    /// Runs `body` on the gateway's loop.
    func onLoop(_ body: @escaping () -> Void) {
        if loop.inEventLoop { body() } else { loop.execute(body) }
    }

    // MARK: clients

    /// A WebSocket was upgraded: registers it and asks the service about its token.
    /// `encoder`: the context of the channel's `WebSocketFrameEncoder`, below which
    /// the gateway writes the frames it encoded itself.
    func accepted(_ channel: Channel, token: String?, remote: String, deflate: PushDeflateParams? = nil,
                  encoder: ChannelHandlerContext? = nil) -> PushClientID? {
        precondition(loop.inEventLoop)
        let id = nextID
        nextID += 1
        guard let service else {
            hub.remove(id, code: nil)
            sendClose(channel, code: PushCodes.tryAgainLater, reason: "the push service is not running on node '\(nodeName)' (the push plugin is not loaded)")
            return nil
        }
        guard hub.add(id) else {
            sendClose(channel, code: PushCodes.tryAgainLater, reason: "the gateway has \(hub.clientCount) clients (max_clients=\(hub.limits.maxClients))")
            return nil
        }
        conns[id] = PushConn(channel: channel, encoder: channel.eventLoop === loop ? encoder : nil, deflate: deflate)
        let timeout = hub.limits.pluginTimeout
        let timer = loop.scheduleTask(in: .nanoseconds(Int64(timeout * 1e9))) { [weak self] in
            guard let self, self.conns[id] != nil, !self.hub.isAuthorized(id) else { return }
            self.disconnect(id, code: PushCodes.tryAgainLater, reason: "the push service did not answer the connect within plugin_timeout=\(timeout)s")
        }
        service.connect(client: id, token: token, remote: remote) { [weak self] decision in
            self?.onLoop {
                timer.cancel()
                self?.connectDecided(id, decision)
            }
        }
        return id
    }

    func connectDecided(_ id: PushClientID, _ decision: PushDecision) {
        guard conns[id] != nil, !hub.isAuthorized(id) else { return }
        switch decision {
        case .allow(let user):
            hub.authorize(id, user: user)
            for frame in early.removeValue(forKey: id) ?? [] { received(id, frame) }
        case .deny(let code, let reason):
            logger.info("push client \(id) refused: \(reason)")
            disconnect(id, code: UInt16(clamping: code), reason: reason)
        }
    }

    /// The client's channel closed (`code`: what its close frame said, 1006 without one).
    func gone(_ id: PushClientID, code: UInt16) {
        precondition(loop.inEventLoop)
        guard conns.removeValue(forKey: id) != nil else { return }
        early[id] = nil
        let user = hub.user(of: id)
        let known = hub.isAuthorized(id)
        hub.remove(id, code: code)
        if known { service?.disconnected(client: id, user: user) }
    }

    /// A text frame from the client.
    func received(_ id: PushClientID, _ bytes: [UInt8]) {
        precondition(loop.inEventLoop)
        guard conns[id] != nil else { return }
        guard hub.isAuthorized(id) else {
            var held = early[id, default: []]
            if held.count >= hub.limits.maxPendingOps {
                hub.fail(id, PushRequestError(PushCodes.limit, "too many frames before the token was accepted (max_pending_ops=\(hub.limits.maxPendingOps))"))
                return
            }
            held.append(bytes)
            early[id] = held
            return
        }
        switch PushRequest.parse(bytes, maxTopicBytes: hub.limits.maxTopicBytes) {
        case .failure(let error):
            hub.fail(id, error)
        case .success(let request):
            perform(id, request)
        }
    }

    func perform(_ id: PushClientID, _ request: PushRequest) {
        guard let service, let user = hub.user(of: id) else { return }
        switch request {
        case let .sub(ref, pattern, since):
            if let e = hub.checkSubscribe(id, pattern: pattern, ref: ref) ?? hub.beginOp(id, ref: ref) {
                hub.fail(id, PushRequestError(e.code, e.reason, ref: ref, topic: pattern))
                return
            }
            service.subscribe(client: id, user: user, pattern: pattern) { [weak self] decision in
                self?.onLoop {
                    guard let self else { return }
                    self.hub.endOp(id)
                    switch decision {
                    case .allow:
                        if let e = self.hub.checkSubscribe(id, pattern: pattern, ref: ref) { self.hub.fail(id, e); return }
                        self.hub.subscribe(id, pattern: pattern, since: since, ref: ref, nowNs: self.clock())
                    case .deny(let code, let reason):
                        self.hub.fail(id, PushRequestError(code, reason, ref: ref, topic: pattern))
                    }
                }
            }
        case let .unsub(ref, pattern):
            hub.unsubscribe(id, pattern: pattern, ref: ref)
        case let .pub(ref, topic, data):
            if let allowed = service.publishClaims(client: id) {
                publishNatively(id, user: user, allowed: allowed, ref: ref, topic: topic, data: data)
                return
            }
            if let e = hub.beginOp(id, ref: ref) {
                hub.fail(id, PushRequestError(e.code, e.reason, ref: ref, topic: topic))
                return
            }
            service.publish(client: id, user: user, topic: topic, data: data) { [weak self] decision in
                self?.onLoop {
                    guard let self else { return }
                    self.hub.endOp(id)
                    switch decision {
                    case let .allow(finalTopic, finalData):
                        if let problem = self.publish(topic: finalTopic, payload: Data(finalData)) {
                            self.hub.fail(id, PushRequestError(PushCodes.unavailable, problem, ref: ref, topic: topic))
                        } else {
                            self.hub.reply(id, PushFrames.published(topic: finalTopic, ref: ref))
                        }
                    case let .deny(code, reason):
                        self.hub.fail(id, PushRequestError(code, reason, ref: ref, topic: topic))
                    }
                }
            }
        }
    }

    /// A client publish the service left to the gateway (no publish hooks): allowed
    /// when a pattern of the token's `pub` claims matches the topic, as the plugin decides.
    func publishNatively(_ id: PushClientID, user: String, allowed: [String], ref: String?, topic: String, data: [UInt8]) {
        guard allowed.contains(where: { PushTopic.matches(pattern: $0, topic: topic) }) else {
            hub.fail(id, PushRequestError(PushCodes.forbidden, "the token of '\(user)' does not allow publishing to '\(topic)' (pub: \(allowed.isEmpty ? "none" : allowed.joined(separator: ", ")))", ref: ref, topic: topic))
            return
        }
        if let problem = publish(topic: topic, payload: Data(data)) {
            hub.fail(id, PushRequestError(PushCodes.unavailable, problem, ref: ref, topic: topic))
        } else {
            hub.reply(id, PushFrames.published(topic: topic, ref: ref))
        }
    }

    /// The client's socket can take more (or not).
    func writability(_ id: PushClientID, _ writable: Bool) {
        if writable { hub.writable(id) } else { hub.unwritable(id) }
    }

    /// Closes a client with a close code (counted) and forgets it.
    public func disconnect(_ id: PushClientID, code: UInt16, reason: String) {
        onLoop { self.hub.close(id, code: code, reason: reason) }
    }

    /// Publishes from the server side (the plugin's `push.publish`).
    public func publish(topic: String, payload: Data) -> String? {
        if let p = PushTopic.problem(topic: topic, maxBytes: hub.limits.maxTopicBytes) { return "bad topic: \(p)" }
        return broker.publish(topic: topic, payload: payload)
    }

    /// Closes every client with 1001 (the node is stopping).
    public func shutdown() {
        closeAll(code: PushCodes.goingAway, reason: "node '\(nodeName)' is shutting down")
    }

    /// Closes every client with `code`.
    public func closeAll(code: UInt16, reason: String) {
        onLoop {
            for id in Array(self.conns.keys) { self.hub.close(id, code: code, reason: reason) }
        }
    }

    // MARK: PushSink

    public func close(_ id: PushClientID, code: UInt16, reason: String) {
        guard let conn = conns.removeValue(forKey: id) else { return }
        early[id] = nil
        if code == PushCodes.slowConsumer {
            logger.warning("push client \(id) closed: \(reason)")
        }
        sendClose(conn.channel, code: code, reason: reason)
        service?.disconnected(client: id, user: nil)
    }

    public func interest(_ change: PushInterestChange) {
        switch change {
        case .subscribe(let p): broker.subscribe(p)
        case .unsubscribe(let p): broker.unsubscribe(p)
        }
    }

    /// Writes a close frame (code, reason cut to 123 bytes) and closes the channel once it is
    /// written. The frame goes out behind what the client has not read yet (a slow consumer can
    /// have megabytes in NIO's and the kernel's send buffers), so a client that does not take it
    /// within `close_timeout` is aborted with a TCP reset: the connection never outlives its
    /// close by more than that, whether or not the client reads.
    func sendClose(_ ch: Channel, code: UInt16, reason: String) {
        var data = ch.allocator.buffer(capacity: 125)
        data.writeInteger(code)
        data.writeString(String(decoding: reason.utf8.prefix(123), as: UTF8.self))
        let timeout = hub.limits.closeTimeout
        let logger = logger
        let abort = ch.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout * 1e9))) {
            guard ch.isActive else { return }
            logger.warning("push connection \(ch.remoteAddress.map { "\($0)" } ?? "?") aborted: it did not take its close frame (\(code)) within close_timeout=\(timeout)s")
            Self.abort(ch)
        }
        ch.closeFuture.whenComplete { _ in abort.cancel() }
        ch.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)).whenComplete { _ in
            ch.close(promise: nil)
        }
    }

    /// Closes with SO_LINGER 0: a TCP reset, and the kernel drops what the peer has not read.
    static func abort(_ ch: Channel) {
        guard let socket = ch as? SocketOptionProvider else {
            ch.close(promise: nil)
            return
        }
        socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in ch.close(promise: nil) }
    }
}

/// Stands in for the gateway while its hub is built.
final class NullSink: PushSink {
    func write(_ id: PushClientID, _ frame: ByteBuffer) -> Bool { false }
    func close(_ id: PushClientID, code: UInt16, reason: String) {}
    func interest(_ change: PushInterestChange) {}
}
