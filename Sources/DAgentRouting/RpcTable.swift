import DAgentWire

/// Outstanding requests of a local node: cookie → deadline and continuation.
///
/// Pure bookkeeping: the owner calls `expire(nowNs:)` from its timer and
/// `complete(cookie:)` when a RESPONSE or ERROR with that cookie arrives.
public struct RpcTable<Waiter>: Sendable where Waiter: Sendable {
    public struct Pending: Sendable {
        public var waiter: Waiter
        public var deadlineNs: UInt64
        public var dst: String
        public var type: UInt32
        public var timeoutNs: UInt64
    }

    private var pending: [UInt64: Pending] = [:]
    private var nextCookie: UInt64 = 1

    public init() {}

    public var count: Int { pending.count }

    /// Registers a request and returns the cookie to put on its envelope.
    public mutating func add(_ waiter: Waiter, dst: String, type: UInt32, nowNs: UInt64, timeoutNs: UInt64) -> UInt64 {
        let cookie = nextCookie
        nextCookie &+= 1
        pending[cookie] = Pending(waiter: waiter, deadlineNs: nowNs &+ timeoutNs, dst: dst, type: type, timeoutNs: timeoutNs)
        return cookie
    }

    /// Removes and returns the request waiting on `cookie` (nil if unknown or already done).
    public mutating func complete(cookie: UInt64) -> Pending? { pending.removeValue(forKey: cookie) }

    /// Removes and returns every request whose deadline has passed.
    public mutating func expire(nowNs: UInt64) -> [Pending] {
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
