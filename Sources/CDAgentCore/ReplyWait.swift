import DAgentRouting
import DAgentWire
import NIOConcurrencyHelpers

/// The caller's side of a blocking request (`dagent_request`, `dagent_request_into`):
/// the node's loop completes it with the reply, and the caller's thread waits on its
/// condition. Unlike `EventLoopFuture.wait()` from a foreign thread, which hands the
/// loop a second task to attach its callback, a request costs the loop one task.
final class ReplyWait: @unchecked Sendable {
    private let condition = ConditionLock(value: 0)
    private var result: Result<DataMessage, DAgentError>?

    /// On the loop: the reply, or why there is none (each request is completed once).
    func complete(_ r: Result<DataMessage, DAgentError>) {
        condition.lock()
        result = r
        condition.unlock(withValue: 1)
    }

    /// On the caller's thread: blocks until `complete`. The request's own timeout
    /// (the RPC table's) bounds the wait; `atMost` seconds (longer) are a safety
    /// net should the node stop without completing it.
    func wait(atMost seconds: Double) -> Result<DataMessage, DAgentError> {
        let limit = seconds.isFinite ? max(0.001, seconds) : 86_400 * 2
        guard condition.lock(whenValue: 1, timeoutSeconds: limit) else {
            return .failure(DAgentError(.timeout, "no answer and no timeout from the node within \(limit)s"))
        }
        let r = result!
        condition.unlock()
        return r
    }
}
