import DAgentRaft

/// Configuration of a `DiskStorage`.
public struct DiskStorageOptions {
    /// WAL segment size: a new segment starts once the current one reached it (64 MiB).
    public var segmentSize: Int = 64 << 20
    /// Snapshot files kept (newest first, at least 1; default 2). WAL segments are kept
    /// back to the oldest of them, so recovery can fall back if the newest is corrupt.
    public var keepSnapshots: Int = 2
    /// Sync WAL appends with `fdatasync` (default) instead of `fsync`.
    public var dataSyncOnly = true
    /// Zero-fill the WAL's current segment this many bytes ahead of its end (0 = off; see
    /// `WALOptions.preallocateBytes`): group commits then sync without a journal commit.
    public var preallocateBytes = 0
    /// Fault injection for tests: called at every `PersistStep`; throwing simulates a
    /// crash at that point (the storage is poisoned afterwards; reopen the directory).
    public var crashHook: ((PersistStep) throws -> Void)?
    /// Called with every repair/notice of recovery (also in `DiskStorage.recoveryReport`).
    public var onRecoveryEvent: ((RecoveryEvent) -> Void)?

    public init(segmentSize: Int = 64 << 20, keepSnapshots: Int = 2) {
        self.segmentSize = segmentSize
        self.keepSnapshots = keepSnapshots
    }

    package var walOptions: WALOptions {
        var o = WALOptions(segmentSize: segmentSize)
        o.dataSyncOnly = dataSyncOnly
        o.preallocateBytes = preallocateBytes
        o.crashHook = crashHook
        return o
    }
}

/// What `DiskStorage` found and did when it opened a data directory.
public struct RecoveryReport: Sendable, Equatable, CustomStringConvertible {
    /// Repairs and notices (torn tail truncated, snapshot fallback, temp files removed...).
    public var events: [RecoveryEvent] = []
    /// WAL segment files and records read.
    public var segments = 0
    public var records = 0
    /// Recovered state.
    public var hardState = HardState()
    public var snapshotIndex: UInt64 = 0
    public var firstIndex: UInt64 = 1
    public var lastIndex: UInt64 = 0

    /// True when nothing had to be repaired.
    public var isClean: Bool { events.isEmpty }

    public var description: String {
        var s = "recovered \(records) WAL record(s) from \(segments) segment(s): snapshot \(snapshotIndex), " +
            "entries \(firstIndex)...\(lastIndex), term \(hardState.term) vote \(hardState.vote) commit \(hardState.commit)"
        for e in events { s += "\n  " + e.description }
        return s
    }
}
