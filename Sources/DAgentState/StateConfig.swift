// Limits of the state machine. They decide whether a command succeeds, so every replica of
// a group must run with the same values (they are not carried in snapshots).

/// Named limits of `KVStateMachine`, with sane defaults.
///
/// Every replica of a Raft group must use identical values: a limit decides whether a
/// command succeeds, and replicas must agree on every result. A command that exceeds a
/// limit fails with `StateFailure.limitExceeded` naming the option.
public struct KVStateConfig: Equatable, Sendable {
    /// How many change events the watch history retains (`historyRetention`, default
    /// 100 000). Older events are compacted away whole revisions at a time; a watch that
    /// resumes before the compaction point gets `.compacted`.
    public var historyRetention: Int
    /// Longest key, lock name, owner, directory name or agent, in bytes (`maxKeyBytes`, default 4 096).
    public var maxKeyBytes: Int
    /// Longest value, in bytes (`maxValueBytes`, default 1 MiB).
    public var maxValueBytes: Int
    /// Most compares plus ops in one transaction (`maxTxnOps`, default 128).
    public var maxTxnOps: Int
    /// Most bytes of watch history a snapshot (and so a backup or an InstallSnapshot)
    /// carries (`snapshot_history_bytes`, default 16 MiB): the newest whole revisions that
    /// fit; a watch on a replica restored from it, from an older revision, gets
    /// `.compacted`. Affects no command's result, so replicas may differ.
    public var snapshotHistoryBytes: Int

    /// Creates a configuration; every argument defaults to the documented value.
    public init(historyRetention: Int = 100_000, maxKeyBytes: Int = 4_096,
                maxValueBytes: Int = 1 << 20, maxTxnOps: Int = 128, snapshotHistoryBytes: Int = 16 << 20) {
        self.snapshotHistoryBytes = max(0, snapshotHistoryBytes)
        self.historyRetention = max(0, historyRetention)
        self.maxKeyBytes = maxKeyBytes
        self.maxValueBytes = maxValueBytes
        self.maxTxnOps = maxTxnOps
    }
}
