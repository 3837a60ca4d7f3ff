import Foundation

/// Bounds the bytes that callers off the event loop (the C API, standalone
/// Python) have handed to a node and its links have not yet written to the
/// kernel (`send_window_bytes`). A caller that would go over the bound waits for
/// room, up to `send_window_timeout`, instead of piling bytes up until the
/// slow-consumer rule cuts the link (`slow_consumer_bytes`). Like a ZeroMQ high
/// water mark on send, except that it counts bytes, not messages.
///
/// Thread-safe: callers take room on their own thread; the event loop gives it
/// back once the link writes that carried the bytes have completed
/// (`Node.releaseWindowAfterFlush`).
public final class SendWindow: @unchecked Sendable {
    /// The bound in bytes; 0: no bound (every `acquire` succeeds at once).
    public let limit: Int
    private let condition = NSCondition()
    private var held = 0

    public init(limit: Int) { self.limit = limit }

    /// Bytes taken and not yet given back.
    public var heldBytes: Int {
        condition.lock(); defer { condition.unlock() }
        return held
    }

    /// Whether `acquire(n)` would have to wait now.
    public func wouldWait(_ n: Int) -> Bool {
        guard limit > 0 else { return false }
        condition.lock(); defer { condition.unlock() }
        return !fits(n)
    }

    /// Takes room for `n` bytes, waiting up to `timeout` seconds for it; false
    /// if the window stayed full that long. A message larger than the whole
    /// window goes through alone, once nothing else is held.
    public func acquire(_ n: Int, timeout: Double) -> Bool {
        guard limit > 0 else { return true }
        condition.lock(); defer { condition.unlock() }
        if !fits(n) {
            let deadline = Date(timeIntervalSinceNow: max(0, timeout))
            while !fits(n) {
                if !condition.wait(until: deadline) && !fits(n) { return false }
            }
        }
        held += n
        return true
    }

    /// Gives back room taken by `acquire` (the bytes are written, or dropped).
    public func release(_ n: Int) {
        guard limit > 0, n > 0 else { return }
        condition.lock()
        held = max(0, held - n)
        condition.broadcast()
        condition.unlock()
    }

    private func fits(_ n: Int) -> Bool { held == 0 || held + n <= limit }
}
