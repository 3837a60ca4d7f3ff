import Foundation
import NIOCore

/// The state of one push gateway: its clients, their subscriptions, the
/// per-topic numbering and history, and the fan-out of each message to the
/// clients whose patterns match it. Pure and single-threaded: the driver
/// calls it from one event loop and performs what it asks through `sink`.
public final class PushHub {
    final class Client {
        let id: PushClientID
        var user = ""
        var authorized = false
        var subs: Set<String> = []
        var writable = true
        var queue: PushSendQueue
        var pendingOps = 0
        /// False once removed: a route made before may still hold it for the rest of a fan-out.
        var connected = true
        init(id: PushClientID, limit: Int) {
            self.id = id
            queue = PushSendQueue(limitBytes: limit)
        }
    }

    struct Route {
        /// The first (smallest) interest pattern that matches the topic: a
        /// message that arrives once per matching pattern is handled once.
        var canonical: String?
        /// The matching clients in id order (routes are dropped whenever a subscription changes).
        var clients: [Client]
    }

    public var limits: PushLimits
    public private(set) var streams: PushStreams
    public private(set) var stats = PushStats()
    public unowned(unsafe) var sink: PushSink
    var clients: [PushClientID: Client] = [:]
    /// Client pattern → the clients holding it.
    var patternClients: [String: Set<PushClientID>] = [:]
    /// Patterns the gateway is subscribed to in the tree.
    var interest: Set<String> = []
    var historyPatterns: Set<String> = []
    var routes: [String: Route] = [:]

    public init(limits: PushLimits, bootID: String, sink: PushSink) {
        self.limits = limits
        self.streams = PushStreams(bootID: bootID, maxTopics: limits.maxTopics)
        self.sink = sink
    }

    // MARK: clients

    /// Number of connected clients.
    public var clientCount: Int { clients.count }

    /// Takes a new client (not yet authorized). False if the gateway is full (`max_clients`).
    public func add(_ id: PushClientID) -> Bool {
        guard clients.count < limits.maxClients else {
            stats.closes[PushCodes.tryAgainLater, default: 0] += 1
            return false
        }
        clients[id] = Client(id: id, limit: limits.sendQueueBytes)
        stats.clients = clients.count
        stats.accepted += 1
        return true
    }

    /// The token was accepted: the client may now subscribe.
    public func authorize(_ id: PushClientID, user: String) {
        guard let c = clients[id] else { return }
        c.user = user
        c.authorized = true
        _ = send(c, PushFrames.connected(client: id, user: user, epoch: streams.epoch))
    }

    /// True if the client is connected and its token was accepted.
    public func isAuthorized(_ id: PushClientID) -> Bool { clients[id]?.authorized ?? false }

    /// The user (token `sub`) of a client.
    public func user(of id: PushClientID) -> String? { clients[id]?.user }

    /// The client's socket went away (or was closed): its subscriptions end.
    /// `code` is counted in `closes` when given.
    public func remove(_ id: PushClientID, code: UInt16?) {
        guard let c = clients.removeValue(forKey: id) else { return }
        c.connected = false
        routes.removeAll(keepingCapacity: true)
        if let code { stats.closes[code, default: 0] += 1 }
        stats.queueBytes -= c.queue.bytes
        c.queue.removeAll()
        for p in c.subs { dropClientPattern(p, c.id) }
        stats.clients = clients.count
    }

    /// Closes a client through the sink and forgets it.
    public func close(_ id: PushClientID, code: UInt16, reason: String) {
        guard clients[id] != nil else { return }
        remove(id, code: code)
        sink.close(id, code: code, reason: reason)
    }

    // MARK: operations

    /// Counts an operation sent to the push plugin; an error if the client has
    /// `max_pending_ops` waiting already.
    public func beginOp(_ id: PushClientID, ref: String?) -> PushRequestError? {
        guard let c = clients[id] else { return PushRequestError(PushCodes.unavailable, "the client is gone", ref: ref) }
        if c.pendingOps >= limits.maxPendingOps {
            return PushRequestError(PushCodes.limit, "too many operations in flight: \(c.pendingOps) waiting for the push service (max_pending_ops=\(limits.maxPendingOps))", ref: ref)
        }
        c.pendingOps += 1
        return nil
    }

    /// The push plugin answered an operation of the client.
    public func endOp(_ id: PushClientID) {
        if let c = clients[id], c.pendingOps > 0 { c.pendingOps -= 1 }
    }

    /// Why the client may not subscribe to one more pattern, or nil.
    public func checkSubscribe(_ id: PushClientID, pattern: String, ref: String?) -> PushRequestError? {
        guard let c = clients[id] else { return PushRequestError(PushCodes.unavailable, "the client is gone", ref: ref) }
        if !c.subs.contains(pattern) && c.subs.count >= limits.maxSubscriptions {
            return PushRequestError(PushCodes.limit, "too many subscriptions: the client holds \(c.subs.count) (max_subscriptions=\(limits.maxSubscriptions))", ref: ref, topic: pattern)
        }
        return nil
    }

    /// Subscribes the client (already authorized by the plugin): answers
    /// `subscribed`, replays what `since` missed, then delivers live messages.
    public func subscribe(_ id: PushClientID, pattern: String, since: PushSince?, ref: String?, nowNs: UInt64) {
        guard let c = clients[id] else { return }
        var recovered = false
        var frames: [ByteBuffer] = []
        if let since {
            (frames, recovered) = streams.recover(pattern: pattern, since: since, nowNs: nowNs)
        }
        let seq: UInt64? = PushTopic.isWildcard(pattern) ? nil : streams.currentSeq(pattern)
        _ = send(c, PushFrames.subscribed(pattern: pattern, epoch: streams.epoch, recovered: recovered, seq: seq, replayed: frames.count, ref: ref))
        for f in frames where clients[id] != nil { _ = send(c, f) }
        guard clients[id] != nil, !c.subs.contains(pattern) else { return }
        c.subs.insert(pattern)
        patternClients[pattern, default: []].insert(id)
        syncInterest(pattern)
    }

    /// Ends one subscription of the client and answers `unsubscribed`.
    public func unsubscribe(_ id: PushClientID, pattern: String, ref: String?) {
        guard let c = clients[id] else { return }
        if c.subs.remove(pattern) != nil { dropClientPattern(pattern, id) }
        _ = send(c, PushFrames.unsubscribed(pattern: pattern, ref: ref))
    }

    /// Patterns the client holds.
    public func subscriptions(of id: PushClientID) -> Set<String> { clients[id]?.subs ?? [] }

    /// Sends the client a frame of its own (an answer or an error).
    public func reply(_ id: PushClientID, _ frame: ByteBuffer) {
        guard let c = clients[id] else { return }
        _ = send(c, frame)
    }

    /// Sends the client an `error` frame and counts it.
    public func fail(_ id: PushClientID, _ error: PushRequestError) {
        stats.errors[error.code, default: 0] += 1
        reply(id, PushFrames.error(error))
    }

    // MARK: policy

    /// Sets history and conflation; the gateway keeps hearing history patterns without clients.
    public func configure(history: [PushHistoryPolicy], conflate: [String]) {
        let old = historyPatterns
        streams.configure(history: history, conflate: conflate)
        historyPatterns = Set(streams.historyPatterns)
        for p in old.union(historyPatterns).sorted() { syncInterest(p) }
    }

    // MARK: fan-out

    /// A message from the tree. `via` is the pattern it arrived through (when
    /// the tree delivers once per matching subscription); only the canonical
    /// one is handled. Numbers it, keeps it in history, writes it to every
    /// matching client once.
    public func deliver(topic: String, payload: some Collection<UInt8>, via: String?, nowNs: UInt64) {
        fanOut(topic: topic, payload: payload, via: via, nowNs: nowNs)
    }

    /// `deliver` for the broker's `Data`: not generic, so the encoding of the `msg`
    /// frame is specialized here rather than run through `Collection`'s witnesses.
    public func deliver(topic: String, payload: Data, via: String?, nowNs: UInt64) {
        fanOut(topic: topic, payload: payload, via: via, nowNs: nowNs)
    }

    func fanOut(topic: String, payload: some Collection<UInt8>, via: String?, nowNs: UInt64) {
        let route = routes[topic] ?? makeRoute(topic)
        if let via, route.canonical != via { return }
        let rec = streams.record(topic: topic, payload: payload, nowNs: nowNs)
        if rec.newEpoch { routes.removeAll() }
        stats.messages += 1
        let key = rec.conflate ? topic : nil
        for c in route.clients where c.connected {
            if c.writable && c.queue.isEmpty {
                c.writable = sink.write(c.id, rec.frame)
                stats.deliveries += 1
            } else {
                enqueue(c, rec.frame, key: key)
            }
        }
    }

    func makeRoute(_ topic: String) -> Route {
        if routes.count >= limits.maxTopics { routes.removeAll(keepingCapacity: true) }
        var canonical: String?
        for p in interest where PushTopic.matches(pattern: p, topic: topic) {
            if canonical == nil || p < canonical! { canonical = p }
        }
        var ids = Set<PushClientID>()
        for (p, holders) in patternClients where PushTopic.matches(pattern: p, topic: topic) {
            ids.formUnion(holders)
        }
        let route = Route(canonical: canonical, clients: ids.sorted().compactMap { clients[$0] })
        routes[topic] = route
        return route
    }

    /// The client's socket can take more: writes what its queue holds.
    public func writable(_ id: PushClientID) {
        guard let c = clients[id] else { return }
        c.writable = true
        while c.writable, let f = c.queue.pop() {
            stats.queueBytes -= f.readableBytes
            c.writable = sink.write(id, f)
            stats.deliveries += 1
        }
    }

    /// The client's socket cannot take more for now.
    public func unwritable(_ id: PushClientID) {
        clients[id]?.writable = false
    }

    /// Bytes held in one client's queue.
    public func queuedBytes(_ id: PushClientID) -> Int { clients[id]?.queue.bytes ?? 0 }

    @discardableResult
    func send(_ c: Client, _ frame: ByteBuffer) -> Bool {
        if c.writable && c.queue.isEmpty {
            c.writable = sink.write(c.id, frame)
            stats.deliveries += 1
            return true
        }
        return enqueue(c, frame, key: nil)
    }

    @discardableResult
    func enqueue(_ c: Client, _ frame: ByteBuffer, key: String?) -> Bool {
        let before = c.queue.bytes
        switch c.queue.push(frame, conflateKey: key) {
        case .queued:
            stats.queueBytes += c.queue.bytes - before
            return true
        case .replaced:
            stats.queueBytes += c.queue.bytes - before
            stats.conflated += 1
            return true
        case .overLimit(let wouldBe):
            close(c.id, code: PushCodes.slowConsumer,
                  reason: "slow consumer: send queue would hold \(wouldBe) bytes, over send_queue_bytes=\(c.queue.limitBytes)")
            return false
        }
    }

    // MARK: interest

    func dropClientPattern(_ p: String, _ id: PushClientID) {
        patternClients[p]?.remove(id)
        if patternClients[p]?.isEmpty ?? false { patternClients[p] = nil }
        syncInterest(p)
    }

    /// Subscribes the gateway to `p` in the tree while a client or a history policy needs it.
    func syncInterest(_ p: String) {
        routes.removeAll(keepingCapacity: true)
        let want = patternClients[p] != nil || historyPatterns.contains(p)
        if want && !interest.contains(p) {
            interest.insert(p)
            sink.interest(.subscribe(p))
        } else if !want && interest.contains(p) {
            interest.remove(p)
            sink.interest(.unsubscribe(p))
        }
    }

    /// Patterns the gateway is subscribed to in the tree now.
    public var interestPatterns: [String] { interest.sorted() }
}
