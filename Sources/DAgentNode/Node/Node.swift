import DAgentWire
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import DAgentRouting
import DAgentLink
import DAgentMsgq
import DAgentHTTP
import DAgentTLS

/// One dagent node: the routing core (`NodeCore`) driven by its links — TCP
/// connections and System V message-queue channels — on a single NIO event loop.
///
/// Every piece of mutable state lives on `eventLoop`; the public methods may
/// be called from any thread and hop onto it. Handlers set with `onMessage`
/// run on the event loop and must not block.
public final class Node: @unchecked Sendable {
    public let config: NodeConfig
    public let eventLoop: EventLoop
    public let logger: Logger
    package let core: NodeCore
    /// What the message-queue links read from the config (taken once).
    package let msgqOptions: MsgqOptions
    let ownedGroup: EventLoopGroup?

    var links: [LinkID: any LinkIO] = [:]
    /// The link the data path wrote to last (`linkIO(_:)`): a burst to one link
    /// looks it up in `links` once. Cleared whenever `links` changes.
    var lastWritten: (id: LinkID, io: any LinkIO)?
    var dirty: [LinkID] = []
    var dirtySet: Set<LinkID> = []
    var flushScheduled = false
    /// Room the C API takes for sends from other threads (`send_window_bytes`).
    public let sendWindow: SendWindow
    /// Window bytes of messages appended since the last flush (`Node-sendwindow.swift`).
    var windowUnflushed = 0
    var nextLinkID: LinkID = 1
    var servers: [Channel] = []
    var parentSelector: ParentSelector?
    var parentLinkID: LinkID?
    var parentIndex: Int?
    var dialing = false
    var registrationRefused = false
    var stopping = false
    var tickTask: RepeatedTask?
    /// Outstanding requests: changed under `rpcLock`, as direct requests register
    /// from the caller's thread (`tryRequestDirect`).
    var rpc = RpcTable<RpcWaiter>()
    let rpcLock = NIOLock()
    /// Routes for sends written from the caller's thread (`Node-direct.swift`).
    public let direct = DirectRoutes()
    /// Direct writes are on (`NodeConfig.directWrites`, never with TLS).
    var allowsDirectWrites: Bool { config.directWrites && tls == nil }
    var readyPromise: EventLoopPromise<Void>
    var readyDone = false
    /// The message queues this node serves as an agent (`pull:msgq://PATH`).
    var msgqAgent: MsgqAgentService?
    /// The link to our agent when the parent is `msgq://PATH`.
    package var msgqLeaf: MsgqParentLinkIO?
    /// Earlier msgq parent links whose receiver thread has not ended yet.
    var retiredLeafLinks: [MsgqParentLinkIO] = []
    /// Why the last attempt to reach a parent failed ("" once one succeeded). On the event loop.
    public internal(set) var lastDialError = ""
    /// The TLS contexts when `tls:` is configured (TLSLinks.swift), and the SANs of
    /// links whose handshake is done but which are not up in the core yet.
    package let tls: TLSContexts?
    var certifiedSANs: [LinkID: [String]] = [:]

    /// Called on the event loop for every DATA or REQUEST addressed to this
    /// node, and for ERROR/RESPONSE envelopes that match no pending request.
    public var onMessage: ((Dagent_Envelope) -> Void)?
    /// Called on the event loop with each batch of messages addressed to this
    /// node (DATA, REQUEST, and RESPONSE/ERROR that match no pending
    /// request), in order: headers parsed once, payloads slices of the bytes
    /// read (no copy). When set, `onMessage` is not called for them.
    public var onMessages: (([DataMessage]) -> Void)?
    /// When true, the `onMessages` handler answers each DATA that asks for a
    /// delivery receipt itself, with `acceptDelivery(_:)` once its queue took
    /// the message or `refuseDelivery` (a handler with a bounded queue, such as
    /// the plugin host). When false, the node sends the receipt as it hands the
    /// message to the handler.
    public var handlerAcknowledgesDeliveries = false
    /// The durable queue log (`durable: true`), open while the node runs (Node-durable.swift).
    var durableQueue: DurableQueueState?
    /// The inbox batch being delivered and the one kept for the next swap.
    var delivering: [DataMessage] = []
    var toHandlers: [DataMessage] = []
    var deliveringInbox = false
    /// Called on the event loop for lifecycle events.
    public var onEvent: ((NodeEvent) -> Void)?
    var serviceHandlers: [String: (Dagent_Envelope) -> Void] = [:]
    /// Requests of reserved types taken before the application's handlers (`handleRequests(ofType:)`).
    var typeHandlers: [UInt32: (Dagent_Envelope) -> Void] = [:] { didSet { handledTypes = Array(typeHandlers.keys) } }
    /// The keys of `typeHandlers`, scanned per message instead of hashing (there are a few at most).
    var handledTypes: [UInt32] = []
    /// Types whose one-way messages `typeHandlers` take too (`handleMessages(ofType:)`).
    var oneWayTypes: [UInt32] = []
    /// Handlers of this node's subscriptions, by subscription id (Node-pubsub.swift).
    var subscriptionHandlers: [UInt64: (DataMessage) -> Void] = [:]
    /// The publications batch being delivered, the relays being written, and
    /// the lists kept for the next swap (Node-pubsub.swift).
    var deliveringPublications: [Publication] = []
    var publicationsBusy = false
    var writingRelays: [Relay] = []
    /// Called on the event loop to add what a layer above the routing core
    /// knows (the plugin host) to this node's `dagent tree` reply. Must not block.
    public var treeExtension: ((inout Dagent_TreeReply) -> Void)?
    /// The HTTP listener when `http:` is configured (bound in `start()`); layers
    /// above add routes and upgraders to it (see `Sources/DAgentHTTP/README.md`).
    public let http: HTTPServer?
    /// Called on the event loop when a request this node sent is answered or times out:
    /// (seconds since it was sent, "ok" | "error" | "timeout"). Set before `start()`.
    public var onRPCDone: ((Double, String) -> Void)?

    /// Creates a node. With no `group`, the node owns its event loop: a
    /// `MsgqEventLoop` when its only links are message queues to its agent
    /// (`NodeConfig.runsOnMessageQueueLoop`), else a one-thread NIO group.
    public init(config: NodeConfig, group: EventLoopGroup? = nil, logger: Logger? = nil) throws {
        try config.validate()
        self.config = config
        sendWindow = SendWindow(limit: config.effectiveSendWindowBytes)
        if let group {
            ownedGroup = nil
            eventLoop = group.next()
        } else if config.runsOnMessageQueueLoop {
            let loop = MsgqEventLoop(label: "dagent \(config.name)")
            ownedGroup = loop
            eventLoop = loop
        } else {
            let g = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            ownedGroup = g
            eventLoop = g.next()
        }
        var log = logger ?? Logger(label: "dagent")
        log[metadataKey: "node"] = "\(config.name)"
        self.logger = log
        var session: SessionSecret?
        if let dir = config.dataDir { session = SessionFile.load(dir: dir) }
        core = NodeCore(config: config.coreConfig, session: session)
        http = config.http == nil ? nil : HTTPServer(limits: config.httpLimits, logger: log)
        do { tls = try config.tls.map { try $0.load().contexts() } } catch { throw ConfigError("\(error)") }
        msgqOptions = MsgqOptions(maxFrameBytes: config.maxFrameBytes, slowConsumerBytes: config.slowConsumerBytes,
                                  heartbeatInterval: config.heartbeatInterval, maxChildren: config.maxChildren,
                                  msgqQueueBytes: config.msgqQueueBytes, msgqSendTimeout: config.msgqSendTimeout,
                                  msgqSendTimeoutOverride: config.msgqSendTimeoutOverride)
        readyPromise = eventLoop.makePromise(of: Void.self)
        if allowsDirectWrites {
            let direct = self.direct
            core.onRoutesChanged = { direct.forgetAll() }
        }
    }

    deinit {
        try? ownedGroup?.syncShutdownGracefully()
    }

    /// Monotonic time for the core.
    package var nowNs: UInt64 { NIODeadline.now().uptimeNanoseconds }

    // MARK: lifecycle

    /// Binds the listeners, starts dialing a parent and the heartbeat timer.
    /// Completes when the listeners are bound (not when registered: see `ready()`).
    public func start() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            self.installCongestionCheck()
            self.core.start(nowNs: self.nowNs)
            do { try self.openDurableQueue() } catch {
                return self.eventLoop.makeFailedFuture(ConfigError("durable: cannot use the queue log: \(error)"))
            }
            self.perform()
            let tickNs = max(10_000_000, min(250_000_000, Int64(self.config.heartbeatInterval * 1e9) / 4))
            self.tickTask = self.eventLoop.scheduleRepeatedTask(initialDelay: .nanoseconds(tickNs), delay: .nanoseconds(tickNs)) { _ in
                self.tick()
            }
            if !self.config.parents.isEmpty {
                self.parentSelector = ParentSelector(
                    addresses: self.config.parents.map(\.description),
                    initialBackoffNs: UInt64(self.config.reconnectInitialBackoff * 1e9),
                    maxBackoffNs: UInt64(self.config.reconnectMaxBackoff * 1e9))
                self.dialParent()
            }
            let binds = self.config.listen.map { self.bind($0) } + [self.startHTTP()]
            return EventLoopFuture.andAllSucceed(binds, on: self.eventLoop)
        }
    }

    /// Completes when this node's name is registered (at once at the top of
    /// the tree); fails if the registration is refused.
    public func ready() -> EventLoopFuture<Void> { readyPromise.futureResult }

    /// Why this node is not registered yet, if a parent could not be reached
    /// ("parent tcp://… unreachable: connection refused", "no agent at
    /// msgq://…"); nil otherwise. For error messages after a join timed out.
    /// Call off the event loop (it waits for the loop).
    public func joinProblem() -> String? {
        (try? eventLoop.submit { self.lastDialError.isEmpty ? nil : self.lastDialError }.wait()) ?? nil
    }

    /// True once registered and the route up is ready.
    public var isReady: Bool {
        get throws { try eventLoop.submit { self.readyDone && (self.config.parents.isEmpty || self.core.parentReady) }.wait() }
    }

    /// Ports actually bound (useful with port 0).
    public var boundPorts: [Int] {
        get throws { try eventLoop.submit { self.servers.compactMap { $0.localAddress?.port } }.wait() }
    }

    /// Stops the node: commits the durable queue log, fails pending requests, closes every link.
    public func stop() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            guard !self.stopping else { return self.eventLoop.makeSucceededVoidFuture() }
            self.stopping = true
            self.core.stopping = true
            self.tickTask?.cancel()
            self.flushDirty()
            self.closeDurableQueue()
            for pending in self.rpcLock.withLock({ self.rpc.removeAll() }) {
                pending.waiter.fail(DAgentError(.refused, "node '\(self.config.name)' is shutting down"))
            }
            if !self.readyDone {
                self.readyDone = true
                self.readyPromise.fail(DAgentError(.refused, "node '\(self.config.name)' stopped before it registered"))
            }
            for link in self.links.values { link.flush() }
            // What waits for room in a full message queue gets a bounded chance to go out.
            let deadline = NIODeadline.now() + .milliseconds(Int64(min(2.0, self.config.msgqSendTimeout) * 1000))
            return self.drainMsgq(until: deadline).flatMap { self.closeEverything() }
        }
    }

    /// Completes once the message-queue senders are idle, or at `deadline`.
    func drainMsgq(until deadline: NIODeadline) -> EventLoopFuture<Void> {
        let senders = (msgqLeaf.map { [$0.upSender, $0.downSender] } ?? []) + (msgqAgent.map { [$0.sender] } ?? [])
        if senders.allSatisfy(\.isIdle) || NIODeadline.now() >= deadline { return eventLoop.makeSucceededVoidFuture() }
        return eventLoop.scheduleTask(in: .milliseconds(2)) {}.futureResult.flatMap { self.drainMsgq(until: deadline) }
    }

    /// Closes every link and listener; removes the queues this node serves.
    func closeEverything() -> EventLoopFuture<Void> {
        for link in links.values { link.flush() }
        var closes = servers.map { channel in channel.close().recover { _ in } } + [stopHTTP()]
        for (_, link) in links {
            if let closing = link.closeForShutdown() { closes.append(closing) }
        }
        return EventLoopFuture.andAllComplete(closes, on: eventLoop).map {
            self.msgqAgent?.stop()
            var seen = Set<ObjectIdentifier>()
            for old in self.retiredLeafLinks + (self.msgqLeaf.map { [$0] } ?? []) where seen.insert(ObjectIdentifier(old)).inserted {
                old.attachment.detach()
            }
            self.retiredLeafLinks = []
            self.msgqLeaf = nil
        }
    }

    /// Stops the node and shuts down the event loop group it owns.
    public func shutdown() throws {
        try stop().wait()
        try ownedGroup?.syncShutdownGracefully()
    }

    // MARK: links

    func bind(_ endpoint: Endpoint) -> EventLoopFuture<Void> {
        if case let .msgq(path) = endpoint {
            do {
                msgqAgent = try MsgqAgentService(node: self, path: path)
                return eventLoop.makeSucceededVoidFuture()
            } catch {
                return eventLoop.makeFailedFuture(error)
            }
        }
        guard case let .tcp(host, port) = endpoint else {
            return eventLoop.makeFailedFuture(ConfigError("\(endpoint): not a listen address"))
        }
        return LinkBootstrap.listen(host: host, port: port, on: eventLoop, slowConsumerBytes: config.slowConsumerBytes) { channel in
            try self.installHandlers(channel, isParent: false, parentIndex: nil)
        }.map { channel in
            self.servers.append(channel)
            self.logger.info("listening on \(endpoint) (bound \(channel.localAddress?.description ?? "?"))")
            if let open = OpenListener.warning(for: endpoint, secret: !self.config.secret.isEmpty, tls: self.tls != nil) {
                self.logger.warning("\(open)")
            }
        }.flatMapErrorThrowing { error in
            throw ConfigError("cannot listen on \(endpoint): \(error)")
        }
    }

    func installHandlers(_ channel: Channel, isParent: Bool, parentIndex: Int?) throws {
        let id = allocateLinkID()
        try addTLS(channel, id: id, role: isParent ? .parent(index: parentIndex) : .child)
        try channel.pipeline.syncOperations.addHandler(
            LinkHandler(node: self, linkID: id, isParent: isParent, parentIndex: parentIndex, maxFrameBytes: config.maxFrameBytes))
    }

    func dialParent() {
        guard !stopping, !registrationRefused, !dialing, parentLinkID == nil, let selector = parentSelector else { return }
        let (index, delayNs) = selector.next(nowNs: nowNs)
        parentSelector = selector
        dialing = true
        let address = config.parents[index]
        eventLoop.scheduleTask(in: .nanoseconds(Int64(delayNs))) {
            if case let .msgq(path) = address, !self.stopping {
                self.dialMsgq(path: path, index: index)
                return
            }
            guard case let .tcp(host, port) = address, !self.stopping else {
                self.dialing = false
                return
            }
            self.connectLink(host: host, port: port) { channel in
                try self.installHandlers(channel, isParent: true, parentIndex: index)
            }.whenComplete { result in
                self.dialing = false
                switch result {
                case .success(let channel):
                    self.lastDialError = ""
                    if self.stopping { channel.close(promise: nil) }
                case .failure(let error):
                    self.parentSelector?.markDown(index, nowNs: self.nowNs)
                    let next = self.parentSelector.map { self.config.parents[$0.next(nowNs: self.nowNs).index].description } ?? "?"
                    self.logger.warning("parent \(address) unreachable: \(error); next try: \(next)")
                    self.lastDialError = "parent \(address) unreachable: \(error)"
                    self.dialParent()
                }
            }
        }
    }

    /// Dials a tree or peer link with this node's link options.
    func connectLink(host: String, port: Int, install: @escaping @Sendable (Channel) throws -> Void) -> EventLoopFuture<Channel> {
        LinkBootstrap.connect(host: host, port: port, on: eventLoop, connectTimeout: config.connectTimeout,
                              link: .init(slowConsumerBytes: config.slowConsumerBytes),
                              install: install)
    }

    /// A batch must fit in the peer's max_frame_bytes (assumed to be ours).
    var tcpMaxBatchBytes: Int { min(256 * 1024, config.maxFrameBytes / 2) }

    package func allocateLinkID() -> LinkID {
        defer { nextLinkID += 1 }
        return nextLinkID
    }

    package func linkUp(_ id: LinkID, io: any LinkIO, address: String, isParent: Bool, parentIndex: Int?) {
        links[id] = io
        lastWritten = nil
        if isParent {
            parentLinkID = id
            self.parentIndex = parentIndex
            logger.info("connected to parent \(config.parents[parentIndex ?? 0]); registering '\(config.name)'")
        }
        // Message queues are 0600: their trust boundary is the user, not the secret.
        let onQueues = io is MsgqParentLinkIO || io is MsgqChildLinkIO
        core.linkUp(id, isParent: isParent, address: address, brothers: (io as? MsgqParentLinkIO)?.brothers,
                    skipsHandshake: onQueues, nowNs: nowNs)
        applyCertificate(id)
        perform()
        flushDirty()
    }

    package func linkDown(_ id: LinkID, reason: String) {
        guard let io = links.removeValue(forKey: id) else { return }
        lastWritten = nil
        io.didGoDown()
        if dirtySet.remove(id) != nil { dirty.removeAll { $0 == id } }
        core.linkDown(id, reason: reason, nowNs: nowNs)
        failRequests(sentOn: id, which: id == parentLinkID ? "the parent link" : "its link", reason: reason)
        if id == parentLinkID {
            parentLinkID = nil
            if let index = parentIndex { parentSelector?.markDown(index, nowNs: nowNs) }
            parentIndex = nil
        }
        perform()
        flushDirty()
        if parentLinkID == nil && !stopping { dialParent() }
    }

    /// A frame read off link `id` (message-queue links: `MsgqHost`).
    @inline(__always)
    package func received(frameBody: ByteBuffer, from id: LinkID) { received(frameBody: frameBody, from: id, endOfRead: false) }

    /// A frame read off link `id`. `endOfRead`: no other whole frame follows
    /// in what was read, so nothing would join a publish's copies before the
    /// flush; they are then flushed link by link as they are written
    /// (`writeRelays`), the first subscriber's bytes leaving before the
    /// copies for the others are made.
    @inline(__always)
    package func received(frameBody: ByteBuffer, from id: LinkID, endOfRead: Bool) {
        if let relay = core.receiveOrRelay(frameBody: frameBody, from: id, nowNs: nowNs) {
            write(relay)   // passing through: into the next link's buffer, no action
        } else {
            if !core.relays.isEmpty { writeRelays(flushingEach: endOfRead) }   // a publish's copies, before any action
            perform()
        }
    }

    package func badFrame(_ id: LinkID, _ error: FrameError) {
        core.badFrame(id, error)
        perform()
        flushDirty()
    }

    func linkError(_ id: LinkID, error: Error) {
        if let io = error as? IOError, io.errnoCode == ECONNRESET {
            logger.debug("link \(id): connection reset by peer")
        } else {
            logger.warning("link \(id) error: \(error)")
        }
    }

    func slowConsumer(_ id: LinkID, channel: Channel) {
        let pending = (try? channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? config.slowConsumerBytes
        logger.error("slow consumer: \(describe(id, channel)) stopped reading; \(pending) bytes unsent exceed slow_consumer_bytes=\(config.slowConsumerBytes); cutting the link off")
        channel.close(promise: nil)
    }

    func describe(_ id: LinkID, _ channel: Channel) -> String {
        core.describe(id)
    }

    func describe(_ address: SocketAddress) -> String {
        "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
    }

    /// Fails at once the requests written to a link that went down (rather than at their
    /// timeout): what was still in its buffer is gone, and so is the way back for an answer.
    func failRequests(sentOn id: LinkID, which: String, reason: String) {
        let now = nowNs
        for pending in rpcLock.withLock({ rpc.removeAll(sentOn: id) }) {
            onRPCDone?(Double(now &- (pending.deadlineNs &- pending.timeoutNs)) / 1e9, "error")
            pending.waiter.fail(DAgentError(.noRoute, "request to '\(pending.dst)' (type \(pending.type)): \(which) it left on went down before an answer (\(reason)); it may or may not have been handled"))
        }
    }

    func tick() {
        let now = nowNs
        msgqAgent?.tick(nowNs: now)
        msgqLeaf?.tick(nowNs: now)
        if !retiredLeafLinks.isEmpty { reapRetiredLeafLinks() }
        core.tick(nowNs: now)
        for pending in rpcLock.withLock({ rpc.expire(nowNs: now) }) {
            onRPCDone?(Double(pending.timeoutNs) / 1e9, "timeout")
            pending.waiter.fail(DAgentError(.timeout, "request to '\(pending.dst)' (type \(pending.type)) got no answer within \(seconds(pending.timeoutNs))"))
        }
        perform()
        flushDirty()
    }
}
