/// Why a proposal or request was not accepted. The caller may retry later
/// (typically after a leader is known again).
public enum DropReason: String, Sendable, Equatable, Codable {
    /// This node does not know a leader (election in progress or partitioned).
    case noLeader
    /// The leader is transferring leadership; proposals are paused.
    case transferInProgress
    /// This node is no longer a member of the cluster.
    case notMember
}

/// Errors returned by the public `RaftNode` API.
public enum RaftError: Error, Sendable, Equatable {
    /// The proposal/read was dropped; nothing was appended. Retry later.
    case proposalDropped(DropReason)
    /// Another membership change is still uncommitted, or the leader has not yet
    /// committed an entry of its own term. Retry later.
    case confChangePending
    /// The membership change makes no sense (adding an existing voter, removing a
    /// non-member, removing the last voter).
    case invalidConfChange(String)
    /// Only a leader can accept membership changes.
    case notLeader
    /// `compact(upTo:)` was asked to compact beyond the applied index.
    case compactBeyondApplied(index: UInt64, applied: UInt64)
    /// `compact(upTo:)` was asked to compact an index that is already compacted.
    case alreadyCompacted(index: UInt64)
    /// The configuration is invalid.
    case invalidConfig(String)
    /// The persisted state is inconsistent (for example commit beyond the last index).
    case corruptState(String)
}
