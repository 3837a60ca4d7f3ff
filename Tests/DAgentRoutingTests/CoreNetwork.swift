import DAgentWire
import NIOCore
@testable import DAgentRouting

/// A deterministic in-memory tree of `NodeCore`s for tests: links are pairs
/// of link ids, frames go through the real frame codec, time is a number the
/// test advances. No sockets, no threads.
final class CoreNetwork {
    struct End: Equatable { var node: String; var link: LinkID }

    var cores: [String: NodeCore] = [:]
    var peers: [String: [LinkID: End]] = [:]
    /// Frames in flight; a nil frame is the FIN of a link closed by its far end
    /// (delivered after what that end wrote before closing, as TCP does).
    var inflight: [(to: String, link: LinkID, frame: ByteBuffer?)] = []
    var delivered: [String: [Dagent_Envelope]] = [:]
    var events: [String: [CoreAction]] = [:]
    var logs: [String: [String]] = [:]
    var closes: [(node: String, reason: String)] = []
    var nowNs: UInt64 = 1_000_000_000
    private var nextLink: LinkID = 1
    private var nextSession: UInt64 = 0x1000

    @discardableResult
    func add(_ name: String, role: Dagent_NodeRole = .proxy, hasParent: Bool, session: SessionSecret? = nil,
             configure: (inout NodeCoreConfig) -> Void = { _ in }) -> NodeCore {
        var config = NodeCoreConfig(name: name, role: role, hasParent: hasParent)
        configure(&config)
        let core = NodeCore(config: config, session: session) { [unowned self] in
            self.nextSession += 1
            let n = self.nextSession
            return SessionSecret(bytes: (0..<16).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0 % 8))) &+ UInt8($0) })!
        }
        cores[name] = core
        core.start(nowNs: nowNs)
        pump()
        return core
    }

    /// Connects `child` to `parent`; returns (child's link id, parent's link id).
    @discardableResult
    func connect(_ child: String, to parent: String) -> (LinkID, LinkID) {
        let c = nextLink, p = nextLink + 1
        nextLink += 2
        peers[child, default: [:]][c] = End(node: parent, link: p)
        peers[parent, default: [:]][p] = End(node: child, link: c)
        cores[parent]!.linkUp(p, isParent: false, address: "mem:\(child)", nowNs: nowNs)
        cores[child]!.linkUp(c, isParent: true, address: "mem:\(parent)", nowNs: nowNs)
        pump()
        return (c, p)
    }

    /// Opens a link to `parent` whose far end is driven by the test (raw frames).
    func rawLink(to parent: String) -> (raw: End, parentLink: LinkID) {
        let p = nextLink
        nextLink += 1
        peers[parent, default: [:]][p] = End(node: "raw", link: 0)
        cores[parent]!.linkUp(p, isParent: false, address: "mem:raw", nowNs: nowNs)
        pump()
        return (End(node: "raw", link: p), p)
    }

    /// Drops a link at both ends (like a TCP reset / kill -9).
    func cut(_ node: String, _ link: LinkID, reason: String = "cut by test") {
        guard let other = peers[node]?.removeValue(forKey: link) else { return }
        peers[other.node]?[other.link] = nil
        inflight.removeAll { ($0.to == node && $0.link == link) || ($0.to == other.node && $0.link == other.link) }
        cores[node]?.linkDown(link, reason: reason, nowNs: nowNs)
        cores[other.node]?.linkDown(other.link, reason: reason, nowNs: nowNs)
        pump()
    }

    /// Kills a node: every link of it drops, and it is forgotten.
    func kill(_ node: String) {
        for link in Array((peers[node] ?? [:]).keys) {
            guard let other = peers[node]?.removeValue(forKey: link) else { continue }
            peers[other.node]?[other.link] = nil
            inflight.removeAll { $0.to == node || ($0.to == other.node && $0.link == other.link) }
            cores[other.node]?.linkDown(other.link, reason: "peer died", nowNs: nowNs)
        }
        cores[node] = nil
        peers[node] = nil
        pump()
    }

    /// Silences a node without closing its links (it stops sending anything).
    var frozen: Set<String> = []

    /// Runs every node's actions and delivers frames until nothing moves.
    func pump() {
        var rounds = 0
        while true {
            rounds += 1
            precondition(rounds < 100_000, "network did not settle")
            var moved = false
            for name in cores.keys.sorted() {
                let core = cores[name]!
                for action in core.takeActions() {
                    moved = true
                    handle(action, at: name)
                }
                if !core.inbox.isEmpty {
                    moved = true
                    var batch: [DataMessage] = []
                    core.takeInbox(swappingWith: &batch)
                    for m in batch { core.acceptDelivery(m, nowNs: nowNs) }   // a handler that takes everything
                    delivered[name, default: []] += batch.map(\.envelope)
                    deliveryBatches += 1
                }
                flushWriters(of: name)   // one "burst" per node per round, like a flush per read burst
            }
            if !inflight.isEmpty {
                moved = true
                let batch = inflight
                inflight = []
                for item in batch {
                    guard let core = cores[item.to], peers[item.to]?[item.link] != nil else { continue }
                    if let body = item.frame {
                        if relayInline {
                            if let r = core.receiveOrRelay(frameBody: body, from: item.link, nowNs: nowNs) {
                                inlineRelays += 1
                                if r.count == 0 {
                                    writers[Key(node: item.to, hop: r.hop), default: FrameWriter()].appendRelayed(r.raw, header: r.header, hopLimit: r.hopLimit)
                                } else {
                                    writers[Key(node: item.to, hop: r.hop), default: FrameWriter()].appendRawBatch(r.raw, hopLimitOffset: r.header.hopLimitOffset, hopLimit: r.hopLimit)
                                }
                            }
                            takeFastPublications(at: item.to)
                        } else {
                            core.receive(frameBody: body, from: item.link, nowNs: nowNs)
                        }
                    } else {
                        peers[item.to]?[item.link] = nil
                        core.linkDown(item.link, reason: "closed by peer", nowNs: nowNs)
                    }
                }
            }
            if !moved { return }
        }
    }

    private func handle(_ action: CoreAction, at name: String) {
        switch action {
        case let .send(link, frame):
            try! writers[Key(node: name, hop: Hop(link: link)), default: FrameWriter()].append(frame)
        case let .forward(hop, envelope):
            writers[Key(node: name, hop: hop), default: FrameWriter()].append(envelope)
        case let .forwardRaw(hop, raw, offset, limit):
            writers[Key(node: name, hop: hop), default: FrameWriter()].appendRaw(raw, hopLimitOffset: offset, hopLimit: limit)
            rawForwards += 1
        case let .forwardRawBatch(hop, raw, offset, limit):
            writers[Key(node: name, hop: hop), default: FrameWriter()].appendRawBatch(raw, hopLimitOffset: offset, hopLimit: limit)
            rawBatchForwards += 1
        case let .deliverPublish(envelope, ids):
            publishActions += 1
            published[name, default: []].append((envelope, ids))
        case let .close(link, reason):
            closes.append((name, reason))
            flushWriters(of: name)
            // Our side is gone now; the peer sees our FIN after what we already sent.
            guard let other = peers[name]?.removeValue(forKey: link) else { return }
            inflight.removeAll { $0.to == name && $0.link == link }
            cores[name]?.linkDown(link, reason: reason, nowNs: nowNs)
            if other.node != "raw" { inflight.append((other.node, other.link, nil)) }
        case let .log(_, text):
            logs[name, default: []].append(text)
        default:
            events[name, default: []].append(action)
        }
    }

    /// What a publish frame left on the fast path (`relays`, `publications`),
    /// taken as the Node does: the copies written first, then the deliveries.
    private func takeFastPublications(at name: String) {
        let core = cores[name]!
        var relays: [Relay] = []
        core.takeRelays(swappingWith: &relays)
        for r in relays {
            inlinePublishRelays += 1
            if r.count == 0 {
                writers[Key(node: name, hop: r.hop), default: FrameWriter()].appendRelayed(r.raw, header: r.header, hopLimit: r.hopLimit)
            } else {
                writers[Key(node: name, hop: r.hop), default: FrameWriter()].appendRawBatch(r.raw, hopLimitOffset: r.header.hopLimitOffset, hopLimit: r.hopLimit)
            }
        }
        var publications: [Publication] = []
        core.takePublications(swappingWith: &publications)
        for p in publications {
            fastPublications += 1
            published[name, default: []].append((p.message.envelope, p.subscriptions))
        }
    }

    /// Publish copies relayed through `relays`, and publications delivered
    /// through `publications` (the fast path, no actions).
    var inlinePublishRelays = 0
    /// Publications delivered through `.deliverPublish` actions (the slow path).
    var publishActions = 0
    var fastPublications = 0
    /// Publishes from a node written straight from header and payload (`publishFast`).
    var fastPublishWrites = 0

    /// Inbox batches taken (local deliveries are handed over in batches).
    var deliveryBatches = 0
    /// Drive relays as the Node does: `receiveOrRelay`, the relay written
    /// into the next hop's writer without an action.
    var relayInline = false
    /// Frames relayed that way.
    var inlineRelays = 0
    /// Frames relayed on the raw fast path (never decoded by the relay).
    var rawForwards = 0
    var rawBatchForwards = 0
    /// Batch frames seen on the wire, and envelopes inside them.
    var batchesSent = 0

    struct Key: Hashable { var node: String; var hop: Hop }
    var writers: [Key: FrameWriter] = [:]

    private func flushWriters(of name: String) {
        let keys = writers.keys.filter { $0.node == name }
            .sorted { ($0.hop.link, $0.hop.brother) < ($1.hop.link, $1.hop.brother) }
        for key in keys {
            let bytes = writers[key]!.take(allocator: ByteBufferAllocator())
            if key.hop.isBrother {
                transmitDirect(bytes, from: name, channel: key.hop.brother)
            } else {
                transmit(bytes, from: name, link: key.hop.link)
            }
        }
    }

    // MARK: brother p2p

    /// A brother table as a leaf's message-queue link gives it: names → channels.
    final class Brothers: BrotherDirectory {
        var names: [String: UInt64] = [:]
        var generation: UInt64 = 0
        var lookups = 0
        func channel(of name: String) -> UInt64? {
            lookups += 1
            return names[name]
        }
    }

    /// Channel → (node, the parent link it receives brother frames on).
    var channels: [UInt64: (node: String, link: LinkID)] = [:]
    /// Frames put straight onto a brother's channel.
    var directFrames = 0

    /// Connects `child` to `parent` as a leaf on a message queue: its parent
    /// link comes with `brothers`, and it owns `channel`.
    @discardableResult
    func connectLeaf(_ child: String, to parent: String, channel: UInt64, brothers: Brothers) -> (LinkID, LinkID) {
        let c = nextLink, p = nextLink + 1
        nextLink += 2
        peers[child, default: [:]][c] = End(node: parent, link: p)
        peers[parent, default: [:]][p] = End(node: child, link: c)
        channels[channel] = (child, c)
        cores[parent]!.linkUp(p, isParent: false, address: "mem:\(child)", nowNs: nowNs)
        cores[child]!.linkUp(c, isParent: true, address: "mem:\(parent)", brothers: brothers, nowNs: nowNs)
        pump()
        return (c, p)
    }

    private func transmitDirect(_ bytes: ByteBuffer, from name: String, channel: UInt64) {
        guard bytes.readableBytes > 0, !frozen.contains(name), let (node, link) = channels[channel], let core = cores[node] else { return }
        var reader = FrameReader(maxFrameBytes: 1 << 24)
        reader.append(bytes)
        while let body = try! reader.next() {
            directFrames += 1
            core.receiveDirect(frameBody: body, via: link, sender: name, nowNs: nowNs)
        }
    }

    /// Carries real frame bytes, split by the real `FrameReader`.
    private func transmit(_ bytes: ByteBuffer, from name: String, link: LinkID) {
        guard bytes.readableBytes > 0, !frozen.contains(name), let end = peers[name]?[link] else { return }
        wire.append((name, end.node, Array(bytes.readableBytesView)))
        var reader = FrameReader(maxFrameBytes: 1 << 24)
        reader.append(bytes)
        while let body = try! reader.next() {
            switch try? InboundFrame.classify(body) {
            case .batch(_, let header, let count)?:
                batchesSent += 1
                if header.kind == Dagent_Kind.publish.rawValue { publishFrames["\(name)->\(end.node)", default: 0] += count }
            case .envelope(_, let header)? where header.kind == Dagent_Kind.publish.rawValue:
                publishFrames["\(name)->\(end.node)", default: 0] += 1
            default: break
            }
            if end.node == "raw" {
                rawOut.append(try! Dagent_Frame(serializedBytes: Array(body.readableBytesView)))
            } else {
                inflight.append((end.node, end.link, body))
            }
        }
    }

    /// Publishes delivered to subscriptions, per node: the envelope and the subscription ids.
    var published: [String: [(envelope: Dagent_Envelope, ids: [UInt64])]] = [:]
    /// Publish envelopes seen on the wire per "from->to" (a batch counts its envelopes).
    var publishFrames: [String: Int] = [:]

    /// Connects two top nodes with a peer link (root replicas): `a` dials and says hello.
    func connectPeers(_ a: String, _ b: String) {
        let ca = nextLink, cb = nextLink + 1
        nextLink += 2
        peers[a, default: [:]][ca] = End(node: b, link: cb)
        peers[b, default: [:]][cb] = End(node: a, link: ca)
        cores[b]!.linkUp(cb, isParent: false, address: "mem:\(a)", nowNs: nowNs)
        var hello = Dagent_PeerHello()
        hello.service = "raft"
        hello.name = a
        cores[a]!.peerLinkUp(ca, address: "mem:\(b)", hello: hello, nowNs: nowNs)
        pump()
    }

    /// Three root replicas r1–r3 (fully peered), each with one leaf (l1–l3); l2 and l3
    /// subscribe to `t`, and the publish frames counted so far are reset.
    func addRootGroupWithSubscribedLeaves() throws(DAgentError) {
        for r in ["r1", "r2", "r3"] { add(r, role: .root, hasParent: false) }
        connectPeers("r1", "r2")
        connectPeers("r1", "r3")
        connectPeers("r2", "r3")
        for (leaf, root) in [("l1", "r1"), ("l2", "r2"), ("l3", "r3")] {
            add(leaf, role: .leaf, hasParent: true)
            connect(leaf, to: root)
        }
        _ = try subscribe("l2", "t")
        _ = try subscribe("l3", "t")
        publishFrames = [:]
    }

    func subscribe(_ node: String, _ pattern: String, queue: String = "") throws(DAgentError) -> UInt64 {
        let id = try cores[node]!.subscribe(pattern, queue: queue)
        pump()
        return id
    }

    func publish(_ from: String, _ topic: String, _ text: String = "x") throws(DAgentError) {
        try publishUnpumped(from, topic, text)
        pump()
    }

    /// `publish` without running the network (publishes in one burst share the writers).
    func publishUnpumped(_ from: String, _ topic: String, _ text: String = "x") throws(DAgentError) {
        var e = Dagent_Envelope()
        e.dst = topic
        e.payload = .init(text.utf8)
        if relayInline {
            // As the Node publishes: `publishFast`, then header and payload into each link's writer.
            let core = cores[from]!
            var h = MessageHeader(dst: topic, kind: .publish)
            var failure: DAgentError?
            Array(text.utf8).withUnsafeBytes { p in
                do throws(DAgentError) {
                    for hop in try core.publishFast(&h, payload: p, nowNs: nowNs) {
                        writers[Key(node: from, hop: hop), default: FrameWriter()].append(h, payload: p)
                        fastPublishWrites += 1
                    }
                } catch { failure = error }
            }
            if let failure { throw failure }
        } else {
            try cores[from]!.publish(e, nowNs: nowNs)
        }
    }

    /// Payloads delivered to subscriptions of `node` (once per delivery to a subscription).
    func received(_ node: String) -> [String] {
        (published[node] ?? []).flatMap { item in item.ids.map { _ in String(decoding: item.envelope.payload, as: UTF8.self) } }
    }

    /// Every byte written on a link, in order: (from, to, bytes).
    var wire: [(from: String, to: String, bytes: [UInt8])] = []

    /// Frames the core sent to test-driven raw links.
    var rawOut: [Dagent_Frame] = []

    func advance(seconds: Double, step: Double = 0.1) {
        var left = seconds
        while left > 1e-9 {
            let d = min(step, left)
            nowNs += UInt64(d * 1e9)
            left -= d
            for name in cores.keys.sorted() where !frozen.contains(name) { cores[name]!.tick(nowNs: nowNs) }
            pump()
        }
    }

    // MARK: helpers

    func send(_ from: String, to: String, type: UInt32 = 1, _ text: String = "x", kind: Dagent_Kind = .data) throws(DAgentError) {
        var e = Dagent_Envelope()
        e.dst = to
        e.type = type
        e.kind = kind
        e.payload = .init(text.utf8)
        try cores[from]!.sendLocal(e, nowNs: nowNs)
        pump()
    }

    func inbox(_ name: String) -> [Dagent_Envelope] { delivered[name] ?? [] }
    func texts(_ name: String) -> [String] { inbox(name).filter { $0.kind != .error }.map { String(decoding: $0.payload, as: UTF8.self) } }
    func errors(_ name: String) -> [Dagent_Envelope] { inbox(name).filter { $0.kind == .error } }

    func registered(_ name: String) -> Bool {
        events[name, default: []].contains { if case .registered = $0 { return true } else { return false } }
    }

    func failures(_ name: String) -> [(Dagent_ErrorCode, String)] {
        events[name, default: []].compactMap { if case let .registrationFailed(c, r) = $0 { return (c, r) } else { return nil } }
    }

    /// root ← a1, a2 ← ep1 (under a1), ep2 (under a2).
    static func standardTree() -> CoreNetwork {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false)
        net.add("a1", role: .agent, hasParent: true)
        net.add("a2", role: .agent, hasParent: true)
        net.add("ep1", role: .leaf, hasParent: true)
        net.add("ep2", role: .leaf, hasParent: true)
        net.connect("a1", to: "root")
        net.connect("a2", to: "root")
        net.connect("ep1", to: "a1")
        net.connect("ep2", to: "a2")
        return net
    }
}
