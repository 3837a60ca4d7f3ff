/// Pipelining a leader's writes (Raft thesis §10.2.1): a leader may send its appends
/// while its own fsync of them is still running, and an application may apply committed
/// entries that are already durable here while the next `Ready` is being saved.
///
/// Neither may let a commit escape that the leader's own disk does not back yet: the
/// leader counts its own entries towards the quorum when they are appended (before they
/// are durable), so a message sent before the save carries a commit index capped at the
/// last entry that is durable on the leader. A follower therefore only ever learns (and
/// applies) entries stored on a quorum, leader included.
extension RaftNode {
    /// Messages queued since the last `ready()`, for a leader to send while that `Ready`
    /// is still being persisted (between `ready()` and `advance(_:)`), with `commit`
    /// capped at the last entry durable here (the log below the unstable tail).
    ///
    /// Empty unless this node leads in a term and with a vote that are already durable
    /// (then every queued message is an append, heartbeat, snapshot, read-index answer,
    /// transfer or rejection, none of which promises anything about this node's disk).
    /// Messages not taken here stay queued for the next `Ready`.
    public func takeMessagesBeforePersist() -> [Message] {
        guard readyOutstanding, role == .leader, !msgs.isEmpty, log.unstable.snapshot == nil,
              prevHardState.term == term, prevHardState.vote == vote, vote == id else { return [] }
        var out = msgs
        msgs = []
        capCommit(&out, at: log.unstable.offset - 1)
        return out
    }

    /// Entries committed since the outstanding Ready was taken that are durable here (below
    /// the unstable tail), for the application to apply now, while that Ready is still being
    /// saved: what the followers acknowledge during a leader's fsync is answered at once
    /// instead of after the next one. They count as applied when returned (the caller
    /// applies them before anything else), so no later Ready hands them out again.
    ///
    /// The caller must have applied the outstanding Ready's `committedBeforePersist` prefix
    /// already; while that Ready holds committed entries that wait for its save (or a
    /// snapshot), this returns nothing, so entries always apply in log order.
    public func takeCommittedBeforePersist() -> [Entry] {
        guard readyOutstanding, readyCommitted.allDurable, log.unstable.snapshot == nil else { return [] }
        let from = max(log.applied, readyCommitted.last) + 1
        let to = min(log.committed, log.unstable.offset - 1)
        guard to >= from, from >= log.firstIndex,
              let ents = log.slice(from, to + 1, maxBytes: log.maxApplyBytes), let last = ents.last else { return [] }
        log.appliedTo(last.index)
        return ents
    }

    /// The messages of `rd` (just taken with `ready()`) as a leader may send them before
    /// persisting it: the commit index of appends and heartbeats is capped at the last
    /// entry durable before `rd` (the one before its `entries`). Sent after the save,
    /// `rd.messages` is right.
    public func messagesBeforePersist(of rd: Ready) -> [Message] {
        guard let first = rd.entries.first?.index else { return rd.messages }
        var out = rd.messages
        capCommit(&out, at: first - 1)
        return out
    }

    /// Caps the commit index carried by appends and heartbeats at `durable`. When it
    /// lowered one, the next `advance` broadcasts the commit (`commitCappedAt`), so that the
    /// followers learn it once the leader's save is done rather than at the next heartbeat
    /// (`broadcastCommit`: with `deferCommitNotices`, only where an append is due anyway).
    package func capCommit(_ messages: inout [Message], at durable: UInt64) {
        for i in messages.indices where messages[i].type == .append || messages[i].type == .heartbeat {
            if messages[i].commit > durable {
                messages[i].commit = durable
                commitCappedAt = min(commitCappedAt ?? durable, durable)
            }
        }
    }
}

extension Ready {
    /// How many of `committedEntries` (a prefix) lie below `entries`, i.e. are durable in
    /// this node's storage already (from earlier Readys): the application may apply them,
    /// and answer their clients, while it persists this Ready. They are committed and, being
    /// durable here as well, stored on a quorum. None when a snapshot is to be installed
    /// first (entries apply on top of it).
    public var committedBeforePersist: Int {
        guard snapshot == nil else { return 0 }
        guard let first = entries.first?.index else { return committedEntries.count }
        var n = 0
        while n < committedEntries.count && committedEntries[n].index < first { n += 1 }
        return n
    }
}
