import DAgentWire
import NIOCore

/// The routing core of one node: registration, the router cache, forwarding,
/// send queues and heartbeats, with no sockets, no threads and no clock.
///
/// Inputs are method calls (`linkUp`, `linkDown`, `receive`, `sendLocal`,
/// `tick`), each given the current time. Outputs are `CoreAction`s appended
/// to `actions`, which the driver performs in order (`drainActions`). The
/// same inputs always give the same outputs, which is what the unit tests
/// rely on. Not thread-safe: the driver calls it from one event loop.
public final class NodeCore {
    public let config: NodeCoreConfig
    /// Names in this node's subtree and the child link each sits behind.
    public package(set) var routes = RouteTable() { didSet { onRoutesChanged?() } }
    /// Envelopes waiting for the route up to become ready.
    public package(set) var queues: SendQueues
    /// The session of this node's own name (nil until the parent assigns one):
    /// a 128-bit secret, sent only to the parent (see `SessionSecret`).
    public package(set) var sessionSecret: SessionSecret?
    /// The session's verifier (0 without one): what names carry up the tree and
    /// what log lines show.
    public var session: UInt64 { sessionSecret?.verifier ?? 0 }
    /// Name of the parent this node registered with ("" at the top).
    public package(set) var parentName = ""
    /// True once the parent accepted our registration, until that link drops.
    public package(set) var parentReady = false { didSet { onRoutesChanged?() } }
    public package(set) var stats = CoreStats()
    /// Frames counted out on a link and not yet added to its `framesOut` (`countOut`).
    package var unsettledOut: (link: LinkID, frames: UInt64) = (0, 0)
    /// Set by the driver when the node is shutting down on purpose: links
    /// going away then are expected and logged quietly.
    public var stopping = false

    package var links: [LinkID: LinkState] = [:]
    package var parentLink: LinkID? { didSet { onRoutesChanged?() } }
    package var pendingUp: [UInt64: PendingUp] = [:]
    package var nextRequestID: UInt64 = 1
    package var nextMessageID: UInt64 = 1
    package var heartbeatSeq: UInt64 = 0
    /// Names added/withdrawn below us while our own registration was in flight.
    package var addedWhileRegistering: Set<String> = []
    package var withdrawnWhileRegistering: Set<String> = []
    package let newSession: () -> SessionSecret
    /// Cluster-secret handshakes in progress, by link (NodeCore-auth.swift).
    package var handshakes: [LinkID: AuthHandshake] = [:]
    /// Frames a link sends once its handshake is done (Register, PeerHello).
    package var afterAuth: [LinkID: Dagent_Frame.OneOf_Body] = [:]
    /// Source of handshake nonces (seeded in tests).
    public var authNonce: () -> [UInt8] = AuthHandshake.randomNonce
    /// Names (besides our own) delivered here, e.g. "@state" on a root replica.
    public var localServices: Set<String> = [] { didSet { onRoutesChanged?() } }
    /// At the top of a root group: the group's directory and peer links
    /// (names are confirmed and released through it; unknown names are
    /// routed to the replica it names). Nil elsewhere.
    public weak var authority: (any TopOfTreeAuthority)? { didSet { onRoutesChanged?() } }
    /// What the parent link reaches directly (brother p2p), given with the parent link.
    package var brothers: (any BrotherDirectory)? { didSet { onRoutesChanged?() } }
    /// Called whenever something `nextHop` reads may have changed (routes, the
    /// parent, local services, the top-of-tree directory, brothers): a driver that
    /// keeps routes for other threads (`Node.direct`) forgets them.
    package var onRoutesChanged: (() -> Void)?
    package var brotherCache: [String: UInt64] = [:]
    package var brotherGeneration: UInt64 = .max
    /// Registrations accepted per second (`registration_rate`).
    package lazy var registrationBucket = TokenBucket(ratePerSecond: config.limits.registrationRate,
                                                      burst: config.limits.registrationBurst)
    /// The last destination that passed `NameRules` (streams send to one name).
    package var lastValidDestination: String?
    /// Pub/sub: subscriptions, interest per link, the match table (NodeCore-pubsub.swift).
    /// (Stored, not lazy: a lazy property is read, changed and written back,
    /// which would copy its tables on every change.)
    package var pubsub: PubSubState

    /// Messages delivered to this node, in order; the driver takes them in
    /// batches (`takeInbox`) after each input.
    public package(set) var inbox: [DataMessage] = []
    /// Publications for this node's subscriptions that came in on the fast
    /// path (`receiveOrRelay`), in order; the driver takes them
    /// (`takePublications`) after each input (NodeCore-pubfast.swift).
    public package(set) var publications: [Publication] = []
    /// Copies of publish frames to write to other links, from the fast path
    /// (`receiveOrRelay`): the driver writes them (`takeRelays`) before it
    /// performs any action.
    public package(set) var relays: [Relay] = []
    /// Strings of the last publish decoded on the fast path (one topic and
    /// publisher per stream: no new String per message).
    package var publishStrings = EnvelopeCodec.StringCache()

    /// Pending actions; the driver takes them with `drainActions`.
    public package(set) var actions: [CoreAction] = []
    /// True while `drainActions` runs (its body may call back into the core).
    public private(set) var draining = false

    /// - Parameters:
    ///   - session: a session to present to the parent (a restarted node reclaiming its name), or nil.
    ///   - sessionGenerator: source of new sessions (seeded in tests).
    public init(config: NodeCoreConfig, session: SessionSecret? = nil,
                sessionGenerator: @escaping () -> SessionSecret = SessionSecret.random) {
        self.config = config
        self.sessionSecret = session
        self.newSession = sessionGenerator
        self.pubsub = PubSubState(limits: config.pubsub)
        self.queues = SendQueues(perDestinationLimit: config.sendQueueLength,
                                 destinationLimit: config.maxQueuedDestinations)
        actions.reserveCapacity(64)
    }

    /// Call once. The top of the tree is ready at once; other nodes wait for `linkUp` of a parent.
    public func start(nowNs: UInt64) {
        if !config.hasParent {
            if sessionSecret == nil { sessionSecret = newSession() }
            emit(.registered(session: session, parent: ""))
        }
    }

    /// Performs every pending action through `body`, including actions that
    /// `body` itself causes by calling back into the core.
    public func drainActions(_ body: (CoreAction) -> Void) {
        guard !draining else { return }
        draining = true
        var i = 0
        while i < actions.count {
            let action = actions[i]
            i += 1
            body(action)
        }
        actions.removeAll(keepingCapacity: true)
        draining = false
    }

    /// Returns the pending actions and clears them (tests use this).
    public func takeActions() -> [CoreAction] {
        let out = actions
        actions.removeAll(keepingCapacity: true)
        return out
    }

    @inline(__always)
    package func emit(_ action: CoreAction) {
        actions.append(action)
    }

    package func log(_ level: LogLevel, _ message: @autoclosure () -> String) {
        emit(.log(level, message()))
    }

    // MARK: links

    /// A link is connected. `isParent` links are dialed by this node. A parent
    /// link may come with the `brothers` its transport reaches directly (a
    /// leaf's message-queue link): `nextHop` then sends to them straight.
    /// In secret mode every link runs the handshake first, except one whose
    /// transport already limits who can reach it (`skipsHandshake`: message
    /// queues, which only processes of the same user can open).
    public func linkUp(_ id: LinkID, isParent: Bool, address: String, brothers: (any BrotherDirectory)? = nil,
                       skipsHandshake: Bool = false, nowNs: UInt64) {
        links[id] = LinkState(id: id, isParent: isParent, address: address, openedNs: nowNs,
                              lastHeardNs: nowNs, lastSentHeartbeatNs: nowNs)
        if isParent {
            parentLink = id
            self.brothers = brothers
            brotherCache.removeAll()
            brotherGeneration = .max
            parentReady = false
            addedWhileRegistering = []
            withdrawnWhileRegistering = []
            if skipsHandshake { sendFrame(id, .register(registration())) } else { authenticateThenSend(id, .register(registration())) }
        } else {
            admitUnregistered(id)
            if !skipsHandshake { expectAuthentication(id) }
        }
    }

    /// Our Register for the parent link.
    package func registration() -> Dagent_Register {
        var reg = Dagent_Register()
        reg.name = config.name
        reg.sessionSecretBytes = sessionSecret?.bytes ?? []
        reg.role = config.role
        reg.protocolVersion = WireConstants.protocolVersion
        reg.subtree = routes.records()
        reg.heartbeatMs = UInt32(clamping: config.heartbeatIntervalNs / 1_000_000)
        return reg
    }

    /// A peer link this node dialed is connected: say hello on it.
    public func peerLinkUp(_ id: LinkID, address: String, hello: Dagent_PeerHello, nowNs: UInt64) {
        var state = LinkState(id: id, isParent: false, address: address, openedNs: nowNs,
                              lastHeardNs: nowNs, lastSentHeartbeatNs: nowNs)
        state.isPeer = true
        state.registered = true
        state.peerName = "peer:\(hello.service)"
        links[id] = state
        var h = hello
        h.secret = ""
        authenticateThenSend(id, .peerHello(h))
    }

    /// A link is gone (closed by either side, or failed).
    public func linkDown(_ id: LinkID, reason: String, nowNs: UInt64) {
        if unsettledOut.link == id { unsettledOut = (0, 0) }   // its counters go with it
        guard let link = links.removeValue(forKey: id) else { return }
        handshakes[id] = nil
        afterAuth[id] = nil
        interestLinkDown(id)
        if link.isPeer {
            log(stopping ? .debug : .info, "peer link \(link.address) down: \(reason)")
            authority?.peerDown(id)
            return
        }
        if id == parentLink {
            parentLink = nil
            brothers = nil
            brotherCache.removeAll()
            let wasReady = parentReady
            parentReady = false
            acceptPendingProvisionally()
            if stopping {
                log(.debug, "parent link \(link.address) closed (node stopping)")
                return
            }
            log(wasReady ? .warning : .info, "parent link \(link.address) down: \(reason)")
            emit(.parentLost(reason: reason))
            return
        }
        let names = routes.removeAll(via: id)
        if link.registered {
            log(.info, "child '\(link.peerName)' (\(link.address)) left: \(reason); withdrew \(names.count) name(s)")
        } else {
            log(.debug, "unregistered link \(link.address) closed: \(reason)")
        }
        propagateWithdrawn(names, reason: "'\(link.peerName)' left: \(reason)")
    }

    /// The peer of `id` sent a frame body (the bytes after the length
    /// prefix). Envelopes take the fast path: only their routing header is read.
    public func receive(frameBody: ByteBuffer, from id: LinkID, nowNs: UInt64) {
        guard let authPending = links[id]?.authPending else { return }
        if authPending {
            receiveBeforeAuthentication(frameBody, from: id, nowNs: nowNs)
            return
        }
        do {
            switch try InboundFrame.classify(frameBody) {
            case let .envelope(raw, header):
                links[id]!.lastHeardNs = nowNs
                links[id]!.framesIn &+= 1
                if header.kind == Dagent_Kind.publish.rawValue {
                    receivePublishRaw(raw, header: header, from: id, nowNs: nowNs)
                } else {
                    receiveRaw(raw, header: header, from: id, nowNs: nowNs)
                }
            case let .batch(raw, header, count):
                links[id]!.lastHeardNs = nowNs
                links[id]!.framesIn &+= 1
                if header.kind == Dagent_Kind.publish.rawValue {
                    receivePublishBatch(raw, header: header, count: count, from: id, nowNs: nowNs)
                } else {
                    receiveRawBatch(raw, header: header, count: count, from: id, nowNs: nowNs)
                }
            case let .control(frame):
                receive(frame, from: id, nowNs: nowNs)
            }
        } catch {
            badFrame(id, error)
        }
    }

    /// A frame a brother put straight onto this node's channel (brother p2p on
    /// a message queue). It is routed as if it came in on the parent link `id`
    /// (usually: delivered here), but it does not count as hearing from the
    /// parent, and a bad one is dropped with a log line instead of closing the
    /// parent link: the brother, not the parent, sent it. Only envelopes and
    /// batches are accepted from brothers.
    public func receiveDirect(frameBody: ByteBuffer, via id: LinkID, sender: String, nowNs: UInt64) {
        guard links[id] != nil else { return }
        do {
            switch try InboundFrame.classify(frameBody) {
            case let .envelope(raw, _):
                stats.directIn &+= 1
                var cache = EnvelopeCodec.StringCache()
                if deliverRaw(raw, cache: &cache) { return }
                var envelope = try EnvelopeCodec.decode(raw)
                receiveEnvelope(&envelope, from: id, nowNs: nowNs)
            case let .batch(raw, header, count):
                stats.directIn &+= UInt64(count)
                deliverBatch(raw, header: header, from: id, direct: sender, nowNs: nowNs)
            case .control(let frame):
                dropDirect("a control frame (\(frame.body.map { "\($0)".prefix(40) } ?? "empty")); brothers send envelopes only", sender: sender)
            }
        } catch {
            dropDirect("malformed: \(error)", sender: sender)
        }
    }

    /// Counts and logs a frame from a brother that could not be used.
    public func dropDirect(_ problem: String, sender: String) {
        stats.directDropped &+= 1
        log(.warning, "dropped a frame sent directly by brother \(sender): \(problem)")
    }

    /// A frame this node wrote could not be delivered to the link's transport
    /// (a message queue stayed full): every envelope in it fails back to its
    /// sender with `code` and `reason`. Control frames are only counted.
    /// Returns the number of envelopes reported.
    @discardableResult
    public func undeliverable(frameBody: ByteBuffer, code: Dagent_ErrorCode, reason: String, nowNs: UInt64) -> Int {
        do {
            switch try InboundFrame.classify(frameBody) {
            case let .envelope(raw, _):
                fail(try EnvelopeCodec.decode(raw), code, reason, nowNs: nowNs)
                return 1
            case let .batch(raw, header, _):
                var n = 0
                for slice in try BatchCodec.envelopes(raw) {
                    var envelope = try EnvelopeCodec.decode(slice)
                    envelope.dst = envelope.dst.isEmpty ? header.dst : envelope.dst
                    fail(envelope, code, reason, nowNs: nowNs)
                    n += 1
                }
                return n
            case .control:
                return 0
            }
        } catch {
            return 0
        }
    }

    /// The link's byte stream cannot be framed or decoded: tell the peer, drop the link.
    public func badFrame(_ id: LinkID, _ error: FrameError) {
        let code: Dagent_ErrorCode
        if case .frameTooLarge = error { code = .tooLarge } else { code = .badFrame }
        refuseLink(id, code, "\(error); closing this link")
    }

    /// The peer of `id` sent a decoded frame.
    public func receive(_ frame: Dagent_Frame, from id: LinkID, nowNs: UInt64) {
        guard let authPending = links[id]?.authPending else { return }
        if authPending {
            receiveDuringAuthentication(frame, from: id, nowNs: nowNs)
            return
        }
        links[id]!.lastHeardNs = nowNs
        links[id]!.framesIn &+= 1
        switch frame.body {
        case .envelope(var envelope)?:
            receiveEnvelope(&envelope, from: id, nowNs: nowNs)
        case .batch(let batch)?:
            // A batch the fast path did not take (no dst): each envelope on its own.
            for var envelope in batch.envelopes {
                if !batch.dst.isEmpty {
                    envelope.hopLimit = batch.hopLimit
                }
                receiveEnvelope(&envelope, from: id, nowNs: nowNs)
            }
        case .heartbeat?:
            break
        case .register(let reg)?:
            handleChildRegister(reg, from: id, nowNs: nowNs)
        case .registerResult(let result)?:
            handleRegisterResult(result, from: id, nowNs: nowNs)
        case .nameAdded(let added)?:
            handleNameAdded(added, from: id)
        case .nameAck(let ack)?:
            handleNameAck(ack, from: id)
        case .nameWithdrawn(let withdrawn)?:
            handleNameWithdrawn(withdrawn, from: id)
        case .linkError(let error)?:
            linkErrorReceived(error, from: id)
        case .treeRequest(let request)?:
            // Only to a registered (and, in secret mode, authenticated) peer.
            // Answered by the driver, which knows the socket buffer depths.
            guard links[id]!.registered else {
                refuseLink(id, .unauthenticated, "tree query from a link that has not registered; "
                           + "register first (`dagent tree` does, with --name and the cluster secret)")
                return
            }
            emit(.treeRequested(id, requestID: request.requestID))
        case .peerHello(let hello)?:
            handlePeerHello(hello, from: id)
        case .service(let frame)?:
            if links[id]!.isPeer {
                authority?.serviceFrame(frame, on: id)
            } else {
                refuseLink(id, .refused, "service frame on a link that did not say PeerHello")
            }
        case .interest(let update)?:
            handleInterest(update, from: id)
        case .authHello?, .authChallenge?, .authProof?:
            authenticationFrameAfterwards(frame, from: id)
        case .treeReply?, nil:
            log(.debug, "ignoring unexpected frame from \(describe(id))")
        }
    }

    package func handlePeerHello(_ hello: Dagent_PeerHello, from id: LinkID) {
        guard let link = links[id], !link.isParent, !link.registered else {
            refuseLink(id, .refused, "PeerHello on a link that is already a tree link")
            return
        }
        if let problem = certificatePeerProblem(hello, on: id) {
            refuseLink(id, .refused, problem)
            return
        }
        links[id]!.isPeer = true
        links[id]!.registered = true
        links[id]!.peerName = hello.name.isEmpty ? "peer:\(hello.nodeID)" : hello.name
        authority?.peerUp(id, hello: hello)
        if authority?.peerCarriesInterest(hello) ?? true { interestLinkReady(id) }   // other streams' links carry only Raft
    }

    /// The driver's human-readable name for a link, for log lines.
    package func describe(_ id: LinkID) -> String {
        guard let link = links[id] else { return "link \(id)" }
        if link.peerName.isEmpty { return link.address }
        return "'\(link.peerName)' (\(link.address))"
    }

    package func sendFrame(_ id: LinkID, _ body: Dagent_Frame.OneOf_Body) {
        var frame = Dagent_Frame()
        frame.body = body
        links[id]?.framesOut &+= 1
        emit(.send(id, frame))
    }

    package func closeLink(_ id: LinkID, _ reason: String) {
        guard links[id] != nil, links[id]!.closing == false else { return }
        links[id]!.closing = true
        emit(.close(id, reason: reason))
    }

    /// Sends a LinkError to the peer, then closes the link.
    package func refuseLink(_ id: LinkID, _ code: Dagent_ErrorCode, _ reason: String) {
        var error = Dagent_LinkError()
        error.error = code
        error.reason = reason
        sendFrame(id, .linkError(error))
        log(.warning, "closing link \(describe(id)): \(reason)")
        closeLink(id, reason)
    }

    /// Registered child links (for limits and `dagent tree`).
    package var childCount: Int { links.values.filter { !$0.isParent && $0.registered }.count }

    /// IDs of all links, for the driver's tree report.
    public var linkIDs: [LinkID] { links.keys.sorted() }
}

/// Counters the core keeps (exported as metrics and shown by `dagent tree`).
public struct CoreStats: Equatable, Sendable {
    public var routed: UInt64 = 0
    public var delivered: UInt64 = 0
    public var noRoute: UInt64 = 0
    public var errorsSent: UInt64 = 0
    public var droppedErrors: UInt64 = 0
    public var queued: UInt64 = 0
    /// Envelopes a brother put straight onto this node's channel (brother p2p).
    public var directIn: UInt64 = 0
    /// Frames from brothers that were dropped (malformed, or not envelopes).
    public var directDropped: UInt64 = 0
    /// Envelopes from children whose `src` was not in their subtree (dropped).
    public var forgedSources: UInt64 = 0
    /// Envelopes this node put straight onto a brother's channel (brother p2p).
    public var directOut: UInt64 = 0
}

/// An upward name registration waiting for the parent's NameAck.
package enum PendingUp {
    /// A child's Register: answer it with RegisterResult.
    case childRegister(link: LinkID, name: String, session: SessionSecret?, refusedHere: [Dagent_NameRefusal])
    /// A child's NameAdded: answer it with NameAck carrying its request id.
    case childNames(link: LinkID, requestID: UInt64, refusedHere: [Dagent_NameRefusal])
    /// Names we added ourselves after (re)registering; nobody below waits.
    case resync
}
