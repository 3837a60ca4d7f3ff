import DAgentWire

/// Brother p2p: the hop straight onto a brother's channel, decided here from
/// the `BrotherDirectory` the driver gave with the parent link.
extension NodeCore {
    /// The brother channel for `dst`, or 0 (via the parent). Cached per name;
    /// the cache is dropped whenever the directory's generation moves.
    @inline(__always)
    package func brotherChannel(_ dst: String) -> UInt64 {
        guard let directory = brothers else { return 0 }
        let generation = directory.generation
        if generation != brotherGeneration {
            brotherCache.removeAll(keepingCapacity: true)
            brotherGeneration = generation
        }
        if let c = brotherCache[dst] { return c }
        let found = directory.channel(of: dst) ?? 0
        brotherCache[dst] = found
        return found
    }

    /// The name last seen on brother channel `channel` (for error messages), if any.
    public func brotherName(channel: UInt64) -> String? {
        brotherCache.first { $0.value == channel }?.key
    }

    /// True if messages to `name` go straight to a brother (brother p2p).
    public func isBrother(_ name: String) -> Bool {
        if case .link(let hop) = nextHop(name) { return hop.isBrother }
        return false
    }
}
