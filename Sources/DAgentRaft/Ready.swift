/// A batch of work for the application, obtained with `RaftNode.ready()` and
/// acknowledged with `RaftNode.advance(_:)`.
///
/// The application MUST handle a `Ready` in this order:
/// 1. **Persist** `snapshot` (if any), then `entries`, then `hardState` (if any) to
///    stable storage — `RaftStorage.save(_:)` does exactly this — and make it durable
///    (fsync) when `mustSync` is true.
/// 2. **Send** `messages` (only after step 1 is durable: vote grants and append acks
///    promise that the state is on disk). Messages may be lost, duplicated or
///    reordered by the transport; Raft tolerates that.
/// 3. **Apply** `snapshot` (if any) to the state machine, then `committedEntries` in
///    order. `.noop` entries carry nothing; `.confChange` entries have already changed
///    the membership inside the core (it switches when the entry commits) and are
///    delivered for information (e.g. to connect to a new peer).
/// 4. Serve `readStates` once the applied index reaches each `ReadState.index`.
/// 5. Call `advance(ready)`.
///
/// `ready()` must not be called again before `advance` of the previous `Ready`.
///
/// Pipelining (Raft thesis §10.2.1, `RaftNode-pipeline.swift`): a leader may send
/// `RaftNode.messagesBeforePersist(of:)` before step 1, and messages queued meanwhile with
/// `RaftNode.takeMessagesBeforePersist()` while the save runs; any node may apply the
/// first `committedBeforePersist` committed entries (durable here already) during the save.
public struct Ready: Sendable, Equatable {
    /// Leader/role if they changed since the last `Ready` (not persisted).
    public var softState: SoftState?
    /// Term/vote/commit to persist if they changed since the last `Ready`.
    public var hardState: HardState?
    /// Entries to append to stable storage (may overwrite a conflicting suffix).
    public var entries: [Entry]
    /// Snapshot received from the leader: persist it, then restore the state machine from it.
    public var snapshot: Snapshot?
    /// Messages to send after persisting.
    public var messages: [Message]
    /// Committed entries to apply, in log order.
    public var committedEntries: [Entry]
    /// Results of ReadIndex requests issued on this node.
    public var readStates: [ReadState]

    public init(softState: SoftState? = nil, hardState: HardState? = nil, entries: [Entry] = [],
                snapshot: Snapshot? = nil, messages: [Message] = [], committedEntries: [Entry] = [],
                readStates: [ReadState] = []) {
        self.softState = softState
        self.hardState = hardState
        self.entries = entries
        self.snapshot = snapshot
        self.messages = messages
        self.committedEntries = committedEntries
        self.readStates = readStates
    }

    /// Whether the storage write of this `Ready` must be synced before sending messages.
    public var mustSync: Bool { hardState != nil || !entries.isEmpty || snapshot != nil }

    /// True if there is nothing to do.
    public var isEmpty: Bool {
        softState == nil && hardState == nil && entries.isEmpty && snapshot == nil
            && messages.isEmpty && committedEntries.isEmpty && readStates.isEmpty
    }
}

/// Read-only summary of a node, for diagnostics and tests.
public struct RaftStatus: Sendable, Equatable {
    public var id: NodeID
    public var term: UInt64
    public var vote: NodeID
    public var role: RaftRole
    public var leader: NodeID
    public var commit: UInt64
    public var applied: UInt64
    public var firstIndex: UInt64
    public var lastIndex: UInt64
    public var membership: Membership
    public var leadTransferee: NodeID
    /// Leader only: per-follower (match, next, state).
    public var progress: [NodeID: FollowerProgress]

    /// Leader's view of one follower.
    public struct FollowerProgress: Sendable, Equatable {
        public var match: UInt64
        public var next: UInt64
        public var state: ProgressState
        public var inflight: Int
    }
}
