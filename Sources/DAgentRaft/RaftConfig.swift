/// Static configuration of one Raft node.
public struct RaftConfig: Sendable, Equatable {
    /// This node's id (must not be 0).
    public var id: NodeID
    /// Election timeout in ticks. The effective timeout is randomized in
    /// `[electionTick, 2 * electionTick)`. Also the check-quorum and lease period.
    public var electionTick: Int
    /// Heartbeat interval in ticks (must be < `electionTick`).
    public var heartbeatTick: Int
    /// Upper bound (approximate bytes) of entries in one append message; at least one
    /// entry is always sent.
    public var maxSizePerMsg: UInt64
    /// Upper bound (approximate bytes) of committed entries handed out in one `Ready`.
    public var maxCommittedSizePerReady: UInt64
    /// Maximum number of in-flight append messages per follower in replicate state.
    public var maxInflightMsgs: Int
    /// Run a pre-vote round before incrementing the term (prevents disruption by
    /// partitioned nodes rejoining).
    public var preVote: Bool
    /// Leader steps down if it has not heard from a quorum within an election timeout,
    /// and followers with a live leader ignore (pre-)vote requests (leader lease).
    public var checkQuorum: Bool
    /// Seed of the PRNG used for randomized election timeouts. Use a different seed per node.
    public var randomSeed: UInt64
    /// Last index the application has already applied durably (on restart). Committed
    /// entries up to this index are not handed out again. `0` = start from the snapshot.
    public var applied: UInt64
    /// A leader whose commit index moves does not send an append that would carry nothing
    /// but the new commit index (etcd does): the commit rides on the next append or
    /// heartbeat, or goes out when the application calls `sendCommitNotices()`
    /// (`hasDeferredCommitNotice` says one is due). A committed membership change is still
    /// broadcast at once. Off by default (the etcd behaviour); `RootReplica` turns it on.
    public var deferCommitNotices = false

    public init(id: NodeID, electionTick: Int = 10, heartbeatTick: Int = 1,
                maxSizePerMsg: UInt64 = 1 << 20, maxCommittedSizePerReady: UInt64 = 64 << 20,
                maxInflightMsgs: Int = 256, preVote: Bool = true, checkQuorum: Bool = true,
                randomSeed: UInt64 = 0, applied: UInt64 = 0) {
        self.id = id
        self.electionTick = electionTick
        self.heartbeatTick = heartbeatTick
        self.maxSizePerMsg = maxSizePerMsg
        self.maxCommittedSizePerReady = maxCommittedSizePerReady
        self.maxInflightMsgs = maxInflightMsgs
        self.preVote = preVote
        self.checkQuorum = checkQuorum
        self.randomSeed = randomSeed
        self.applied = applied
    }

    /// Throws `RaftError.invalidConfig` if a field is out of range.
    public func validate() throws {
        if id == noNode { throw RaftError.invalidConfig("id must not be 0") }
        if heartbeatTick <= 0 { throw RaftError.invalidConfig("heartbeatTick must be > 0") }
        if electionTick <= heartbeatTick {
            throw RaftError.invalidConfig("electionTick must be greater than heartbeatTick")
        }
        if maxInflightMsgs <= 0 { throw RaftError.invalidConfig("maxInflightMsgs must be > 0") }
        if maxSizePerMsg == 0 { throw RaftError.invalidConfig("maxSizePerMsg must be > 0") }
        if maxCommittedSizePerReady == 0 {
            throw RaftError.invalidConfig("maxCommittedSizePerReady must be > 0")
        }
    }
}
