import DAgentRaft
import NIOCore

/// When the followers learn a new commit index (`RaftConfig.deferCommitNotices`).
///
/// etcd's leader sends every follower an append that carries only the new commit index as
/// soon as an entry commits; each follower wakes for it and answers it. Here the commit rides
/// on the next append instead, which under a steady load is at most one write away: a lone
/// put then costs the leader no writes besides its appends and the client's answer, and the
/// followers no wake-ups besides the append they fsync (docs/performance.md, "Commit notices
/// on the next append"). Two cases cannot wait for the next write:
///
/// - an entry another replica proposed was applied here: that replica answers its client
///   only when it learns the commit, so the followers are told at once;
/// - otherwise a timer sends them once the log has not grown for `commitNoticeDelayUs`, so
///   that a follower's state (its watchers, its `state status`) trails the leader's by at most
///   two such periods when the group falls idle. While entries keep coming, the timer sends
///   nothing: a notice sent then would cost as much as the ones saved.
///
/// ReadIndex reads served by a follower need neither: the leader's heartbeat for the read
/// carries the commit index.
extension RootReplica {
    /// Called at the end of every `processReady`.
    func tellDeferredCommit() {
        guard stoppedReason == nil, let raft, raft.hasDeferredCommitNotice else {
            appliedForeignEntry = false
            return
        }
        if appliedForeignEntry {
            appliedForeignEntry = false
            raft.sendCommitNotices()
            processReady()
            return
        }
        guard commitNoticeTask == nil else { return }
        armCommitNoticeTimer()
    }

    /// The timer sends the notices only once the log stopped growing: while entries keep
    /// being proposed, the next append carries the commit, and the timer waits another period.
    private func armCommitNoticeTimer() {
        let lastIndex = raft.lastIndex
        commitNoticeTask = node.eventLoop.scheduleTask(in: .microseconds(commitNoticeDelayUs)) { [weak self] in
            guard let self else { return }
            self.commitNoticeTask = nil
            guard self.stoppedReason == nil, self.raft.hasDeferredCommitNotice else { return }
            if self.raft.lastIndex != lastIndex {
                self.armCommitNoticeTimer()
                return
            }
            self.raft.sendCommitNotices()
            self.processReady()
        }
    }
}
