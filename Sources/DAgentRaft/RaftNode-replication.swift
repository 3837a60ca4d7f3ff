/// Log replication: sending appends/snapshots/heartbeats (leader), accepting them
/// (follower), processing acks, and the commit rule.
extension RaftNode {
    // MARK: Leader side

    /// Appends entries of the current term to the leader's log and replicates them.
    package func appendEntries(_ ents: [Entry]) {
        var ents = ents
        let li = log.lastIndex
        for i in ents.indices {
            ents[i].term = term
            ents[i].index = li + 1 + UInt64(i)
        }
        log.append(ents)
        // The leader's own copy counts towards the quorum. It is durable before any
        // follower can ack it, because the app persists a Ready before sending it.
        _ = tracker.progress[id]?.maybeUpdate(log.lastIndex)
        if maybeCommit() { afterLeaderCommit() }
        bcastAppend()
    }

    package func bcastAppend() {
        for peer in tracker.voters where peer != id {
            _ = sendAppend(to: peer)
        }
        commitNoticeDue = false
    }

    /// Tells the followers that the commit index moved (etcd's `bcastAppend` after a commit).
    /// With `deferCommitNotices`, a follower that has no entries to be sent gets nothing now:
    /// the commit rides on its next append or heartbeat, or on `sendCommitNotices()`. A
    /// membership change among the newly committed entries is broadcast at once, so that
    /// every member applies it without waiting.
    package func broadcastCommit(from oldCommit: UInt64) {
        let committedConfChange = pendingConfIndex > oldCommit && pendingConfIndex <= log.committed
        guard config.deferCommitNotices, !committedConfChange else {
            bcastAppend()
            return
        }
        for peer in tracker.voters where peer != id {
            if !sendAppend(to: peer, sendIfEmpty: false) { commitNoticeDue = true }
        }
    }

    /// Sends an append (or a snapshot when the needed entries are compacted) to `peer`.
    /// Returns whether a message was sent.
    @discardableResult
    package func sendAppend(to peer: NodeID, sendIfEmpty: Bool = true) -> Bool {
        guard let pr = tracker.progress[peer], !pr.isPaused else { return false }
        let prevIndex = pr.next - 1
        guard let prevTerm = log.term(prevIndex),
              let ents = log.entries(from: pr.next, maxBytes: config.maxSizePerMsg) else {
            return sendSnapshot(to: peer)
        }
        if ents.isEmpty && !sendIfEmpty { return false }
        send(Message(type: .append, to: peer, logTerm: prevTerm, index: prevIndex, entries: ents,
                     commit: log.committed))
        tracker.progress[peer]!.sentEntries(count: ents.count, lastIndex: ents.last?.index ?? prevIndex)
        return true
    }

    package func sendSnapshot(to peer: NodeID) -> Bool {
        guard let snap = log.snapshot(), !snap.isEmpty else { return false }
        send(Message(type: .snapshot, to: peer, snapshot: snap))
        tracker.progress[peer]!.becomeSnapshot(snap.metadata.index)
        return true
    }

    package func bcastHeartbeat() {
        let ctx = readOnly.lastPendingContext ?? []
        for peer in tracker.voters where peer != id {
            sendHeartbeat(to: peer, context: ctx)
        }
    }

    /// Whether this leader's commit index moved without every follower being told
    /// (`RaftConfig.deferCommitNotices`); `sendCommitNotices()` tells them.
    public var hasDeferredCommitNotice: Bool { commitNoticeDue && role == .leader }

    /// Sends the deferred commit notices: an append (empty where the follower has every
    /// entry) to each follower, carrying the commit index. Nothing if none is due.
    public func sendCommitNotices() {
        guard hasDeferredCommitNotice else { return }
        bcastAppend()
    }

    package func sendHeartbeat(to peer: NodeID, context: [UInt8]) {
        // Never tell a follower to commit beyond what it is known to have.
        let commit = min(tracker.progress[peer]?.match ?? 0, log.committed)
        send(Message(type: .heartbeat, to: peer, commit: commit, context: context))
    }

    /// Commit rule (§5.3, §5.4.2): advance commit to the highest index replicated on a
    /// quorum, but only if that entry is from the current term (Figure 8).
    /// Loops because committing a membership change can change the quorum.
    package func maybeCommit() -> Bool {
        var advanced = false
        while true {
            let mci = tracker.committedIndex()
            guard mci > log.committed, log.term(mci) == term else { return advanced }
            commitTo(mci)
            advanced = true
        }
    }

    /// Follow-ups after the leader's commit index moved.
    package func afterLeaderCommit() {
        releasePendingReadIndexMessages()
    }

    package func handleAppendResponse(_ m: Message) {
        guard tracker.progress[m.from] != nil else { return }
        tracker.progress[m.from]!.recentActive = true
        if m.reject {
            // Fast backtracking: skip every entry the follower cannot match.
            var nextProbe = m.rejectHint
            if m.logTerm > 0 {
                nextProbe = log.findConflictByTerm(index: m.rejectHint, term: m.logTerm).index
            }
            if tracker.progress[m.from]!.maybeDecrTo(rejected: m.index, matchHint: nextProbe) {
                if tracker.progress[m.from]!.state == .replicate {
                    tracker.progress[m.from]!.becomeProbe()
                }
                sendAppend(to: m.from)
            }
            return
        }
        let oldPaused = tracker.progress[m.from]!.isPaused
        var pr = tracker.progress[m.from]!
        let updated = pr.maybeUpdate(m.index)
        guard updated || (pr.match == m.index && pr.state == .probe) else {
            tracker.progress[m.from] = pr
            return
        }
        switch pr.state {
        case .probe:
            pr.becomeReplicate()
        case .snapshot:
            if pr.match + 1 >= log.firstIndex {
                pr.becomeProbe()
                pr.becomeReplicate()
            }
        case .replicate:
            pr.inflights.freeLE(m.index)
        }
        tracker.progress[m.from] = pr
        let oldCommit = log.committed
        if maybeCommit() {
            afterLeaderCommit()
            if role == .leader && !tracker.membership.contains(id) {
                // Our removal is committed: broadcast it, then step down.
                bcastAppend()
                becomeFollower(term: term, leader: noNode)
                return
            }
            broadcastCommit(from: oldCommit)
        } else if oldPaused {
            sendAppend(to: m.from)
        }
        guard role == .leader, tracker.progress[m.from] != nil else { return }
        while sendAppend(to: m.from, sendIfEmpty: false) {}
        if m.from == leadTransferee && tracker.progress[m.from]!.match == log.lastIndex {
            sendTimeoutNow(to: m.from)
        }
    }

    package func handleHeartbeatResponse(_ m: Message) {
        guard var pr = tracker.progress[m.from] else { return }
        pr.recentActive = true
        pr.probeSent = false
        // A live follower with a full window has lost messages: free a slot so the
        // next append discovers the gap instead of stalling.
        if pr.state == .replicate && pr.inflights.isFull { pr.inflights.freeFirstOne() }
        tracker.progress[m.from] = pr
        if pr.match < log.lastIndex { sendAppend(to: m.from) }
        guard !m.context.isEmpty, let acks = readOnly.recvAck(from: m.from, context: m.context) else { return }
        guard tracker.isQuorum(acks) else { return }
        for status in readOnly.advance(through: m.context) {
            respondToReadIndex(status.request, index: status.index)
        }
    }

    // MARK: Follower side

    package func handleAppendEntries(_ m: Message) {
        if m.index < log.committed {
            send(Message(type: .appendResponse, to: m.from, index: log.committed))
            return
        }
        if let lastNew = log.maybeAppend(index: m.index, logTerm: m.logTerm, entries: m.entries) {
            commitTo(min(m.commit, lastNew))
            send(Message(type: .appendResponse, to: m.from, index: lastNew))
        } else {
            // Reject with a hint: the largest index <= m.index whose term is <= m.logTerm.
            // The leader can then skip whole terms of conflicting entries at once.
            let hintIndex = min(m.index, log.lastIndex)
            let hint = log.findConflictByTerm(index: hintIndex, term: m.logTerm)
            send(Message(type: .appendResponse, to: m.from, logTerm: hint.term, index: m.index,
                         reject: true, rejectHint: hint.index))
        }
    }

    package func handleHeartbeat(_ m: Message) {
        // The leader sends min(match, commit), so entries up to it are ours already.
        if m.commit <= log.lastIndex { commitTo(m.commit) }
        send(Message(type: .heartbeatResponse, to: m.from, context: m.context))
    }

    package func handleSnapshot(_ m: Message) {
        guard let snap = m.snapshot else { return }
        if restore(snap) {
            send(Message(type: .appendResponse, to: m.from, index: log.lastIndex))
        } else {
            send(Message(type: .appendResponse, to: m.from, index: log.committed))
        }
    }

    /// Installs `snap` if it is ahead of us. Returns false if it was not needed.
    package func restore(_ snap: Snapshot) -> Bool {
        let meta = snap.metadata
        if meta.index <= log.committed { return false }
        if log.matchTerm(meta.index, meta.term) {
            // We already have the entry: just fast-forward the commit index.
            commitTo(meta.index)
            return false
        }
        log.restore(snap)
        membershipHistory = [(meta.index, meta.membership)]
        tracker.setMembership(meta.membership, lastIndex: log.lastIndex)
        tracker.resetProgress(lastIndex: log.lastIndex, selfID: id)
        return true
    }

    // MARK: Commit

    /// Moves the commit index forward and applies committed membership changes.
    package func commitTo(_ index: UInt64) {
        guard index > log.committed else { return }
        precondition(index <= log.lastIndex, "DAgentRaft: commit \(index) beyond last index \(log.lastIndex)")
        let old = log.committed
        log.committed = index
        guard let ents = log.slice(old + 1, index + 1, maxBytes: .max) else {
            fatalError("DAgentRaft: newly committed entries are compacted")
        }
        for e in ents where e.type == .confChange {
            applyConfChange(entry: e)
        }
    }
}
