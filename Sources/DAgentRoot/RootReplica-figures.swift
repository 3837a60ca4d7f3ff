import DAgentRaft

/// Running totals of one replica's storage work (kept on the event loop, from the
/// costs the storage thread measures): what `/metrics` and `@state status` report.
public struct RaftStorageFigures: Sendable, Equatable {
    /// fsync'd writes (group commits and snapshot files) and their total time.
    public var syncs: UInt64 = 0
    public var syncNanoseconds: UInt64 = 0
    /// WAL bytes appended through the storage thread.
    public var walBytes: UInt64 = 0
    public init() {}
}

extension RootReplica {
    /// Called on the event loop after each storage-thread write.
    func persisted(_ cost: PersistCost) {
        if cost.synced {
            figures.syncs += 1
            figures.syncNanoseconds &+= cost.nanoseconds
        }
        figures.walBytes &+= UInt64(max(0, cost.walBytes))
        if let metrics {
            if cost.synced { metrics.fsync.recordNanoseconds(Int64(clamping: cost.nanoseconds)) }
            if cost.walBytes > 0 { metrics.walBytes.increment(by: cost.walBytes) }
        }
        onPersisted?(cost)
    }
}
