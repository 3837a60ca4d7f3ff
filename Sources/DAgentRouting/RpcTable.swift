import DAgentWire

/// Outstanding requests of a local node: cookie → deadline and continuation.
///
/// Pure bookkeeping: the owner calls `expire(nowNs:)` from its timer and
/// `complete(cookie:)` when a RESPONSE or ERROR with that cookie arrives.
/// The per-request calls are `@inlinable`, so the node's `RpcTable<RpcWaiter>`
/// is specialized where it is used (unspecialized, every request and reply
/// looked up generic metadata at run time: 3% of a brother round trip's CPU).
public struct RpcTable<Waiter>: Sendable where Waiter: Sendable {
    public struct Pending: Sendable {
        public var waiter: Waiter
        public var deadlineNs: UInt64
        public var dst: String
        public var type: UInt32
        public var timeoutNs: UInt64
        /// The link the request was written to, when the sender knew it (the fast path);
        /// nil while it waits in a send queue or took the core's actions.
        public var link: LinkID?

        @usableFromInline
        init(waiter: Waiter, deadlineNs: UInt64, dst: String, type: UInt32, timeoutNs: UInt64, link: LinkID? = nil) {
            self.waiter = waiter
            self.deadlineNs = deadlineNs
            self.dst = dst
            self.type = type
            self.timeoutNs = timeoutNs
            self.link = link
        }
    }

    @usableFromInline var pending: [UInt64: Pending] = [:]
    @usableFromInline var nextCookie: UInt64 = 1

    public init() {}

    public var count: Int { pending.count }

    /// Registers a request and returns the cookie to put on its envelope.
    /// Cookies are unpredictable (`RpcCookies`), so a node that sees none of
    /// the traffic cannot guess one.
    @inlinable
    public mutating func add(_ waiter: Waiter, dst: String, type: UInt32, nowNs: UInt64, timeoutNs: UInt64) -> UInt64 {
        var cookie = RpcCookies.cookie(nextCookie)
        nextCookie &+= 1
        while cookie == 0 || pending[cookie] != nil {
            cookie = RpcCookies.cookie(nextCookie)
            nextCookie &+= 1
        }
        pending[cookie] = Pending(waiter: waiter, deadlineNs: nowNs &+ timeoutNs, dst: dst, type: type, timeoutNs: timeoutNs)
        return cookie
    }

    /// Removes and returns the request waiting on `cookie` (nil if unknown or
    /// already done). For cleanup by the requester itself; answers go through
    /// `complete(answer:)`.
    @inlinable
    public mutating func complete(cookie: UInt64) -> Pending? { pending.removeValue(forKey: cookie) }

    /// The request an answer completes, matched on (cookie, responder): a
    /// RESPONSE must come from the node the request went to; an ERROR may
    /// also come from a node on the way (no route, hop limit, queue full),
    /// which the unpredictable cookie guards. nil if it matches nothing:
    /// the answer is then not for a pending request (or forged).
    public mutating func complete(answer: Dagent_Envelope) -> Pending? {
        complete(answerCookie: answer.cookie, kind: answer.kind, src: answer.src)
    }

    /// `complete(answer:)` from the answer's fields.
    @inlinable
    public mutating func complete(answerCookie cookie: UInt64, kind: Dagent_Kind, src: String) -> Pending? {
        guard cookie != 0, let p = pending[cookie] else { return nil }
        if kind == .response && src != p.dst { return nil }
        return pending.removeValue(forKey: cookie)
    }

    /// Records that the request on `cookie` was written to `link`.
    @inlinable
    public mutating func sent(cookie: UInt64, on link: LinkID) {
        pending[cookie]?.link = link
    }

    /// Removes and returns the requests written to `link` (it went down: their frames, or the
    /// answers' way back, went with it), oldest cookie first.
    public mutating func removeAll(sentOn link: LinkID) -> [Pending] {
        if pending.isEmpty { return [] }   // the common case: nothing to filter, sort or copy
        let lost = pending.filter { $0.value.link == link }
        for cookie in lost.keys { pending[cookie] = nil }
        return lost.sorted { $0.key < $1.key }.map(\.value)
    }

    /// Removes and returns every request whose deadline has passed.
    public mutating func expire(nowNs: UInt64) -> [Pending] {
        if pending.isEmpty { return [] }   // every node's tick: no request in flight, no work
        let late = pending.filter { $0.value.deadlineNs <= nowNs }
        for cookie in late.keys { pending[cookie] = nil }
        return late.sorted { $0.key < $1.key }.map(\.value)
    }

    /// Removes and returns everything (node shutdown).
    public mutating func removeAll() -> [Pending] {
        let all = pending.values.map { $0 }
        pending = [:]
        return all
    }
}

/// Request cookies: a per-process keyed permutation of a counter
/// (SipHash through `Hasher`, whose key is random per process), so that
/// cookies neither repeat soon nor can be predicted from earlier ones.
public enum RpcCookies {
    @inlinable
    public static func cookie(_ counter: UInt64) -> UInt64 {
        var h = Hasher()
        h.combine(counter)
        return UInt64(bitPattern: Int64(h.finalize()))
    }
}
