/// Role transitions, timers and elections (pre-vote, vote, check-quorum).
extension RaftNode {
    package enum CampaignKind {
        case preElection, election, transfer
    }

    package func resetRandomizedElectionTimeout() {
        if let fixed = electionTimeoutOverride {
            randomizedElectionTimeout = fixed
            return
        }
        randomizedElectionTimeout = config.electionTick + Int(rng.next(below: UInt64(config.electionTick)))
    }

    /// Test hook: use a fixed election timeout from now on.
    package func setElectionTimeoutForTesting(_ ticks: Int) {
        electionTimeoutOverride = ticks
        randomizedElectionTimeout = ticks
    }

    /// Common reset on every role change.
    package func reset(term newTerm: UInt64) {
        if term != newTerm {
            term = newTerm
            vote = noNode
        }
        leader = noNode
        electionElapsed = 0
        heartbeatElapsed = 0
        resetRandomizedElectionTimeout()
        abortLeaderTransfer()
        tracker.resetVotes()
        tracker.resetProgress(lastIndex: log.lastIndex, selfID: id)
        pendingConfIndex = 0
        commitNoticeDue = false
        readOnly.reset()
        pendingReadIndexMessages = []
    }

    package func becomeFollower(term newTerm: UInt64, leader newLeader: NodeID) {
        reset(term: newTerm)
        leader = newLeader
        role = .follower
    }

    package func becomePreCandidate() {
        precondition(role != .leader, "DAgentRaft: leader cannot become pre-candidate")
        // Pre-vote does not change term or vote.
        tracker.resetVotes()
        leader = noNode
        role = .preCandidate
    }

    package func becomeCandidate() {
        precondition(role != .leader, "DAgentRaft: leader cannot become candidate")
        reset(term: term + 1)
        vote = id
        role = .candidate
    }

    package func becomeLeader() {
        precondition(role == .candidate, "DAgentRaft: only a candidate can become leader")
        reset(term: term)
        leader = id
        role = .leader
        tracker.progress[id]?.becomeReplicate()
        // Conf changes are allowed only after everything up to the election is committed.
        pendingConfIndex = log.lastIndex
        // A no-op entry of the new term lets the leader commit earlier entries (§5.4.2).
        appendEntries([Entry(type: .noop)])
    }

    package func tickElection() {
        electionElapsed += 1
        if promotable && electionElapsed >= randomizedElectionTimeout {
            electionElapsed = 0
            hup(transfer: false)
        }
    }

    package func tickHeartbeat() {
        if !promotable {
            // Safety net: a leader whose removal has committed steps down.
            becomeFollower(term: term, leader: noNode)
            return
        }
        heartbeatElapsed += 1
        electionElapsed += 1
        if electionElapsed >= config.electionTick {
            electionElapsed = 0
            if config.checkQuorum {
                if !tracker.quorumActive(selfID: id) {
                    // Lost contact with a quorum: stop acting as leader.
                    becomeFollower(term: term, leader: noNode)
                    return
                }
                tracker.resetRecentActive(selfID: id)
            }
            if leadTransferee != noNode { abortLeaderTransfer() }
        }
        guard role == .leader else { return }
        if heartbeatElapsed >= config.heartbeatTick {
            heartbeatElapsed = 0
            bcastHeartbeat()
        }
    }

    /// Election timeout (or explicit campaign / TimeoutNow).
    package func hup(transfer: Bool) {
        guard role != .leader else { return }
        guard promotable else { return }
        if transfer {
            campaign(.transfer)
        } else if config.preVote {
            campaign(.preElection)
        } else {
            campaign(.election)
        }
    }

    package func campaign(_ kind: CampaignKind) {
        guard promotable else { return }
        let voteType: MessageType
        let voteTerm: UInt64
        if kind == .preElection {
            becomePreCandidate()
            voteType = .preVote
            voteTerm = term + 1 // the term we would campaign in; our term is unchanged
        } else {
            becomeCandidate()
            voteType = .vote
            voteTerm = term
        }
        tracker.recordVote(id, granted: true)
        if tracker.tallyVotes() == .won {
            // Single-voter cluster.
            if kind == .preElection { campaign(.election) } else { becomeLeader() }
            return
        }
        let lastIndex = log.lastIndex
        let lastTerm = log.lastTerm
        for peer in tracker.voters where peer != id {
            send(Message(type: voteType, to: peer, term: voteTerm, logTerm: lastTerm, index: lastIndex,
                         context: kind == .transfer ? campaignTransferContext : []))
        }
    }

    /// Vote and pre-vote requests (after term handling in `step`).
    package func handleVoteRequest(_ m: Message) {
        // We can vote for the sender if we already voted for it, or we have not voted and
        // know no leader in this term, or it is a pre-vote for a future term.
        let canVote = vote == m.from
            || (vote == noNode && leader == noNode)
            || (m.type == .preVote && m.term > term)
        if canVote && log.isUpToDate(lastIndex: m.index, term: m.logTerm) {
            send(Message(type: m.type.voteResponseType, to: m.from, term: m.term))
            if m.type == .vote {
                electionElapsed = 0
                vote = m.from
            }
        } else {
            send(Message(type: m.type.voteResponseType, to: m.from, term: term, reject: true))
        }
    }

    /// Vote responses while (pre-)candidate.
    package func handleVoteResponse(_ m: Message) {
        if role == .preCandidate {
            guard m.type == .preVoteResponse else { return }
            // Only grants for the term we are pre-campaigning for count.
            if !m.reject && m.term != term + 1 { return }
        } else {
            guard m.type == .voteResponse, m.term == term else { return }
        }
        tracker.recordVote(m.from, granted: !m.reject)
        switch tracker.tallyVotes() {
        case .won:
            if role == .preCandidate {
                campaign(.election)
            } else {
                becomeLeader()
            }
        case .lost:
            becomeFollower(term: term, leader: noNode)
        case .pending:
            break
        }
    }
}
