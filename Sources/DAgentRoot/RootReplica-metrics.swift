import CoreMetrics
import DAgentRaft

/// The replica's Raft figures as swift-metrics handlers (Prometheus names, base units,
/// `_total` on counters; every series carries `stream`):
///
/// - `dagent_raft_term`, `dagent_raft_commit_index`, `dagent_raft_applied_index`,
///   `dagent_raft_apply_lag_entries` (commit − applied), `dagent_raft_leader` (1 on the
///   leader), `dagent_raft_snapshot_index` — gauges, brought up to date on every tick;
/// - `dagent_raft_fsync_duration_seconds` — histogram of each storage-thread write that
///   ended with an fsync (a group commit, or a snapshot file);
/// - `dagent_raft_wal_bytes_total` — WAL bytes written (framing included);
/// - `dagent_raft_proposals_total` — writes proposed at this replica.
///
/// The node's metrics registry documents them from `RootReplica.metricsHelp`.
struct RaftMetrics {
    let term, commit, applied, lag, leader, snapshotIndex: Gauge
    let fsync: CoreMetrics.Timer
    let walBytes, proposals: Counter

    init(factory: any MetricsFactory, stream: UInt64) {
        let d = [("stream", "\(stream)")]
        term = Gauge(label: "dagent_raft_term", dimensions: d, factory: factory)
        commit = Gauge(label: "dagent_raft_commit_index", dimensions: d, factory: factory)
        applied = Gauge(label: "dagent_raft_applied_index", dimensions: d, factory: factory)
        lag = Gauge(label: "dagent_raft_apply_lag_entries", dimensions: d, factory: factory)
        leader = Gauge(label: "dagent_raft_leader", dimensions: d, factory: factory)
        snapshotIndex = Gauge(label: "dagent_raft_snapshot_index", dimensions: d, factory: factory)
        fsync = CoreMetrics.Timer(label: "dagent_raft_fsync_duration_seconds", dimensions: d, factory: factory)
        walBytes = Counter(label: "dagent_raft_wal_bytes_total", dimensions: d, factory: factory)
        proposals = Counter(label: "dagent_raft_proposals_total", dimensions: d, factory: factory)
    }
}

extension RootReplica {
    /// Help texts (and the fsync histogram's buckets, in seconds) of the Raft metrics.
    public static let metricsHelp: [(name: String, help: String, buckets: [Double]?)] = [
        ("dagent_raft_term", "Current Raft term of this replica", nil),
        ("dagent_raft_commit_index", "Highest log index this replica knows committed", nil),
        ("dagent_raft_applied_index", "Highest log index applied to this replica's state machine", nil),
        ("dagent_raft_apply_lag_entries", "Committed log entries not yet applied (commit index minus applied index)", nil),
        ("dagent_raft_leader", "1 while this replica is the leader of its stream, else 0", nil),
        ("dagent_raft_snapshot_index", "Log index of this replica's latest snapshot", nil),
        ("dagent_raft_fsync_duration_seconds", "Time of each fsync'd Raft storage write (group commit or snapshot file)",
         [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]),
        ("dagent_raft_wal_bytes_total", "Bytes appended to the Raft write-ahead log", nil),
        ("dagent_raft_proposals_total", "Writes proposed to Raft at this replica", nil),
    ]

    /// Reports this replica's Raft figures through `factory` (the node's registry). Call
    /// before `start()`.
    public func installMetrics(factory: any MetricsFactory) {
        metrics = RaftMetrics(factory: factory, stream: streamID)
    }

    /// Brings the gauges up to date (on the event loop, every tick).
    func updateRaftGauges() {
        guard let metrics, let raft else { return }
        let commit = raft.commitIndex, applied = raft.appliedIndex
        metrics.term.record(Int64(clamping: raft.term))
        metrics.commit.record(Int64(clamping: commit))
        metrics.applied.record(Int64(clamping: applied))
        metrics.lag.record(Int64(clamping: commit > applied ? commit - applied : 0))
        metrics.leader.record(raft.role == .leader ? 1 : 0)
        metrics.snapshotIndex.record(Int64(clamping: raft.firstIndex > 0 ? raft.firstIndex - 1 : 0))
    }
}
