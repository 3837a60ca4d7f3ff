/// Result of counting votes.
package enum VoteResult: Equatable {
    case pending, won, lost
}

/// Membership-aware bookkeeping: per-follower progress, votes, quorum math.
/// All iteration is over sorted ids so behaviour is deterministic.
package struct ProgressTracker {
    private(set) var membership: Membership
    package var progress: [NodeID: Progress] = [:]
    package var votes: [NodeID: Bool] = [:]
    package let maxInflight: Int

    package init(membership: Membership, maxInflight: Int) {
        self.membership = membership
        self.maxInflight = maxInflight
    }

    package var voters: [NodeID] { membership.voters }

    /// Fresh progress for every voter (called on every term/role change).
    package mutating func resetProgress(lastIndex: UInt64, selfID: NodeID) {
        progress = [:]
        for id in membership.voters {
            progress[id] = Progress(next: lastIndex + 1, match: id == selfID ? lastIndex : 0,
                                    maxInflight: maxInflight)
        }
    }

    /// Switches membership, keeping progress of remaining members and adding fresh
    /// (recently active) progress for new ones.
    package mutating func setMembership(_ m: Membership, lastIndex: UInt64) {
        membership = m
        for id in Array(progress.keys) where !m.contains(id) {
            progress[id] = nil
            votes[id] = nil
        }
        for id in m.voters where progress[id] == nil {
            var p = Progress(next: lastIndex + 1, maxInflight: maxInflight)
            p.recentActive = true
            progress[id] = p
        }
    }

    /// The highest index replicated on a quorum of voters.
    package func committedIndex() -> UInt64 {
        guard !voters.isEmpty else { return 0 }
        let matches = voters.map { progress[$0]?.match ?? 0 }.sorted(by: >)
        return matches[membership.quorum - 1]
    }

    package mutating func resetVotes() { votes = [:] }

    package mutating func recordVote(_ id: NodeID, granted: Bool) {
        if votes[id] == nil { votes[id] = granted }
    }

    package func tallyVotes() -> VoteResult {
        var granted = 0
        var rejected = 0
        for id in voters {
            switch votes[id] {
            case true?: granted += 1
            case false?: rejected += 1
            case nil: break
            }
        }
        if granted >= membership.quorum { return .won }
        if voters.count - rejected < membership.quorum { return .lost }
        return .pending
    }

    /// Whether `ids` contains a quorum of voters.
    package func isQuorum(_ ids: Set<NodeID>) -> Bool {
        voters.filter { ids.contains($0) }.count >= membership.quorum
    }

    /// Check-quorum: did a quorum (counting the leader itself) talk to us recently?
    package func quorumActive(selfID: NodeID) -> Bool {
        var active = Set<NodeID>()
        for id in voters where id == selfID || (progress[id]?.recentActive ?? false) {
            active.insert(id)
        }
        return isQuorum(active)
    }

    package mutating func resetRecentActive(selfID: NodeID) {
        for id in voters where id != selfID {
            progress[id]?.recentActive = false
        }
    }
}
