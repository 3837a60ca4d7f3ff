import DAgentRouting
import DAgentWire
import NIOConcurrencyHelpers
import NIOCore

/// Routes for direct sends: destinations the loop has sent to over a
/// plaintext TCP link, for threads other than the loop to write their
/// requests and replies to that link's socket themselves (`Node.trySendDirect`,
/// `Node.tryRequestDirect`), saving the wake-up of the loop per message.
///
/// A route is learned on the loop after a send to `dst` took the loop's path
/// (`Node.learnDirectRoute`), and all of them are forgotten whenever the core's
/// routing changes (`NodeCore.onRoutesChanged`). While any caller has handed
/// the loop a task that may send (`beginHandoff` … `endHandoff`), no route is
/// given out: a caller's later message never overtakes its earlier one.
public final class DirectRoutes: @unchecked Sendable {
    struct Route {
        let link: LinkID
        let state: LinkWriteState
    }

    private let lock = NIOLock()
    private var routes: [String: Route] = [:]
    private var handoffs = 0
    private var lastID: UInt64 = 0
    private var writes: UInt64 = 0

    /// Messages written from callers' threads so far.
    public var written: UInt64 { lock.withLock { writes } }

    /// The route to `dst` if a direct send may be tried now.
    func route(_ dst: String) -> Route? {
        lock.withLock { handoffs == 0 ? routes[dst] : nil }
    }

    func knows(_ dst: String) -> Bool { lock.withLock { routes[dst] != nil } }

    func learn(_ dst: String, _ route: Route) {
        lock.withLock {
            if routes.count >= 1024 { routes.removeAll() }   // a bound, not a cache policy
            routes[dst] = route
        }
    }

    func forgetAll() {
        lock.withLock { if !routes.isEmpty { routes.removeAll() } }
    }

    /// A task that may send is being handed to the loop (call before scheduling it).
    public func beginHandoff() { lock.withLock { handoffs += 1 } }

    /// On the loop, at the end of such a task: what it sent is appended to its links.
    public func endHandoff() { lock.withLock { handoffs -= 1 } }

    /// Ids of directly sent messages: their own range (top bit set), as the
    /// core's counter is the loop's. Ids are informational (error replies echo them).
    func nextMessageID() -> UInt64 {
        lock.withLock {
            lastID &+= 1
            return (1 << 63) | lastID
        }
    }

    func countWrite() { lock.withLock { writes &+= 1 } }
}

extension Node {
    /// From a thread other than the loop: runs `body` (which may send) on the loop, as a
    /// task no later direct send of this node overtakes (`DirectRoutes.beginHandoff`); then,
    /// with `dst`, learns the route the loop took to it (`learnDirectRoute`).
    public func executeHandingOff(learning dst: String? = nil, _ body: @escaping @Sendable () -> Void) {
        direct.beginHandoff()
        eventLoop.execute {
            body()
            if let dst { self.learnDirectRoute(dst) }
            self.direct.endHandoff()
        }
    }

    /// On the loop, after a send to `dst` from another thread took the loop's
    /// path: remembers the link it would take now, if direct sends may use it
    /// (a plaintext TCP link that is not closing, chosen by the routes or the
    /// parent alone, with nothing queued in the core).
    public func learnDirectRoute(_ dst: String) {
        guard allowsDirectWrites, core.authority == nil, core.brothers == nil, core.actions.isEmpty, !core.draining,
              NameRules.problem(with: dst) == nil, core.routesNow(dst), !direct.knows(dst),
              case .link(let hop) = core.nextHop(dst), !hop.isBrother,
              let io = links[hop.link] as? TCPLinkIO, !io.closing, io.shared.allowsDirect else { return }
        direct.learn(dst, DirectRoutes.Route(link: hop.link, state: io.shared))
    }

    /// From a thread other than the loop: writes `header` (a RESPONSE or a
    /// one-way message; source, id and hop limit stamped here) and `payload` to
    /// the socket of the link a learned route names, if that link is quiet.
    /// Returns the link, or nil when nothing was written: then take the loop's path.
    public func trySendDirect(_ header: MessageHeader, payload: UnsafeRawBufferPointer) -> LinkID? {
        guard allowsDirectWrites, payload.count <= config.maxMessageBytes, let route = direct.route(header.dst) else { return nil }
        return write(header, payload: payload, on: route) ? route.link : nil
    }

    /// Stamps `header` (source, id, hop limit) and writes its frame to `route`'s socket if the
    /// link is quiet; counts it when written.
    private func write(_ header: MessageHeader, payload: UnsafeRawBufferPointer, on route: DirectRoutes.Route) -> Bool {
        var h = header
        h.src = config.name
        h.id = direct.nextMessageID()
        h.hopLimit = core.config.hopLimit
        var frame = ByteBuffer()
        EnvelopeCodec.encodeFrame(h, payload: payload, into: &frame)
        guard frame.withUnsafeReadableBytes({ route.state.tryWriteDirect($0) }) else { return false }
        direct.countWrite()
        return true
    }

    /// From a thread other than the loop: a request written as `trySendDirect`
    /// writes, its waiter registered in the request table first (so the loop
    /// completes it with the answer, at its timeout or when the link goes down,
    /// as for any request). False when it was not written (the waiter is not
    /// registered then): take the loop's path with the same waiter.
    public func tryRequestDirect(to dst: String, type: UInt32, payload: UnsafeRawBufferPointer, timeout: Double,
                                 waiter: RpcWaiter) -> Bool {
        guard allowsDirectWrites, payload.count <= config.maxMessageBytes, let route = direct.route(dst) else { return false }
        let now = nowNs
        let limit = config.maxPendingRequests
        let timeoutNs = rpcTimeoutNs(timeout)
        let cookie: UInt64? = rpcLock.withLock {
            guard rpc.count < limit else { return nil }   // the loop's path gives the error
            let cookie = rpc.add(waiter, dst: dst, type: type, nowNs: now, timeoutNs: timeoutNs)
            rpc.sent(cookie: cookie, on: route.link)
            return cookie
        }
        guard let cookie else { return false }
        if write(Self.header(to: dst, type: type, kind: .request, cookie: cookie), payload: payload, on: route) { return true }
        // Not written. If the loop failed the waiter meanwhile (its link went down), that is its outcome.
        return rpcLock.withLock { rpc.complete(cookie: cookie) == nil }
    }
}
