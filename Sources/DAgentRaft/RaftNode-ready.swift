/// The Ready/advance handshake with the application (see `Ready` for the contract).
extension RaftNode {
    /// Whether `ready()` would return something to do.
    public func hasReady() -> Bool {
        if !msgs.isEmpty || !readStates.isEmpty { return true }
        if !log.unstable.entries.isEmpty || log.unstable.snapshot != nil { return true }
        if hardState != prevHardState || softState != prevSoftState { return true }
        return log.hasNextCommittedEntries
    }

    /// Collects the pending work. Messages and read states are handed over now; the rest
    /// is considered done only when `advance(_:)` is called with this value.
    public func ready() -> Ready {
        precondition(!readyOutstanding, "DAgentRaft: ready() called again before advance()")
        var rd = Ready()
        rd.entries = log.unstable.entries
        rd.snapshot = log.unstable.snapshot
        rd.committedEntries = log.nextCommittedEntries()
        let hs = hardState
        if hs != prevHardState { rd.hardState = hs }
        let ss = softState
        if ss != prevSoftState { rd.softState = ss }
        rd.messages = msgs
        msgs = []
        rd.readStates = readStates
        readStates = []
        readyOutstanding = true
        readyCommitted = (rd.committedEntries.last?.index ?? 0, rd.committedEntries.last.map { $0.index < (rd.entries.first?.index ?? .max) && rd.snapshot == nil } ?? true)
        return rd
    }

    /// Acknowledges that `rd` was persisted, sent and applied.
    public func advance(_ rd: Ready) {
        readyOutstanding = false
        if let hs = rd.hardState { prevHardState = hs }
        if let ss = rd.softState { prevSoftState = ss }
        if let snap = rd.snapshot {
            log.stableSnapTo(snap.metadata.index)
            log.appliedTo(snap.metadata.index)
        }
        if let last = rd.entries.last {
            log.stableTo(index: last.index, term: last.term)
        }
        if let last = rd.committedEntries.last {
            log.appliedTo(last.index)
        }
        if let told = commitCappedAt {
            // Followers were told a lower commit than the leader's while its save ran.
            commitCappedAt = nil
            if role == .leader { broadcastCommit(from: told) }
        }
    }
}
