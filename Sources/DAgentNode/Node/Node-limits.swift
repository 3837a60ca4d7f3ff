import DAgentRouting

/// The node-level limits of docs/security.md that the routing core does not hold.
extension Node {
    /// An error naming `max_pending_requests` when that many requests already wait.
    func pendingRequestsFull() -> DAgentError? {
        let count = rpcLock.withLock { rpc.count }
        guard count >= config.maxPendingRequests else { return nil }
        return DAgentError(.queueFull, "node '\(config.name)' has \(count) requests waiting for an answer; max_pending_requests=\(config.maxPendingRequests)")
    }

    /// A request timeout in nanoseconds, bounded (1 ms ... 1 day) so that no
    /// caller's value can overflow the conversion.
    func rpcTimeoutNs(_ timeout: Double) -> UInt64 {
        guard timeout.isFinite else { return 86_400_000_000_000 }
        return UInt64(min(86_400, max(0.001, timeout)) * 1e9)
    }
}
