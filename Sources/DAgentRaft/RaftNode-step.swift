/// Message dispatch: term rules first (Raft §5.1), then role-specific handling.
extension RaftNode {
    /// Feeds a message received from a peer into the state machine. Messages not
    /// addressed to this node, and messages that make no sense in the current state,
    /// are ignored (the network may duplicate, reorder and delay messages).
    public func step(_ m: Message) {
        guard m.to == id || m.to == noNode, m.from != noNode, m.from != id else { return }
        if m.term == 0 {
            // Term-less forwarded requests (propose, read index, transfer).
            guard m.type == .propose || m.type == .readIndex || m.type == .transferLeader else { return }
        } else if m.term > term {
            if m.type == .vote || m.type == .preVote {
                let force = m.context == campaignTransferContext
                let inLease = config.checkQuorum && leader != noNode && electionElapsed < config.electionTick
                if !force && inLease {
                    // Leader lease: we heard from a live leader within the election
                    // timeout, so ignore this (pre-)vote without bumping our term.
                    return
                }
            }
            if m.type == .preVote {
                // Never change term because of a pre-vote.
            } else if m.type == .preVoteResponse && !m.reject {
                // A granted pre-vote carries the future term; no term change.
            } else if m.type == .append || m.type == .heartbeat || m.type == .snapshot {
                becomeFollower(term: m.term, leader: m.from)
            } else {
                becomeFollower(term: m.term, leader: noNode)
            }
        } else if m.term < term {
            if (config.checkQuorum || config.preVote) && (m.type == .heartbeat || m.type == .append) {
                // A stale leader: tell it our term so it steps down. Without this, a node
                // with a higher term could never rejoin under pre-vote/check-quorum.
                send(Message(type: .appendResponse, to: m.from))
            } else if m.type == .preVote {
                send(Message(type: .preVoteResponse, to: m.from, term: term, reject: true))
            }
            return
        }

        switch m.type {
        case .vote, .preVote:
            handleVoteRequest(m)
        default:
            switch role {
            case .leader: stepLeader(m)
            case .candidate, .preCandidate: stepCandidate(m)
            case .follower: stepFollower(m)
            }
        }
    }

    package func stepLeader(_ m: Message) {
        switch m.type {
        case .propose:
            // Forwarded proposal: accepted if possible, silently dropped otherwise.
            guard tracker.progress[id] != nil, leadTransferee == noNode else { return }
            var ents: [Entry] = []
            for e in m.entries {
                if e.type == .confChange {
                    guard let cc = try? ConfChange(bytes: e.data), (try? validateConfChange(cc)) != nil else {
                        continue
                    }
                    pendingConfIndex = log.lastIndex + UInt64(ents.count) + 1
                }
                ents.append(Entry(type: e.type, data: e.data))
            }
            if !ents.isEmpty { appendEntries(ents) }
        case .readIndex:
            handleReadIndex(m)
        case .transferLeader:
            handleTransferLeader(target: m.index)
        case .appendResponse:
            handleAppendResponse(m)
        case .heartbeatResponse:
            handleHeartbeatResponse(m)
        default:
            break
        }
    }

    package func stepCandidate(_ m: Message) {
        switch m.type {
        case .append:
            becomeFollower(term: m.term, leader: m.from)
            handleAppendEntries(m)
        case .heartbeat:
            becomeFollower(term: m.term, leader: m.from)
            handleHeartbeat(m)
        case .snapshot:
            becomeFollower(term: m.term, leader: m.from)
            handleSnapshot(m)
        case .voteResponse, .preVoteResponse:
            handleVoteResponse(m)
        default:
            break // proposals, reads, timeoutNow: no leader to act on them
        }
    }

    package func stepFollower(_ m: Message) {
        switch m.type {
        case .append:
            electionElapsed = 0
            leader = m.from
            handleAppendEntries(m)
        case .heartbeat:
            electionElapsed = 0
            leader = m.from
            handleHeartbeat(m)
        case .snapshot:
            electionElapsed = 0
            leader = m.from
            handleSnapshot(m)
        case .timeoutNow:
            // Leadership transfer: campaign now, skipping pre-vote and leases.
            hup(transfer: true)
        case .readIndexResponse:
            readStates.append(ReadState(index: m.index, context: m.context))
        default:
            // Forwarded proposals/reads that reached a non-leader are dropped; the
            // originator retries after its timeout.
            break
        }
    }

    /// Appends and replicates a leader's local proposal.
    package func proposeLocal(_ ents: [Entry]) throws {
        switch role {
        case .leader:
            guard tracker.progress[id] != nil else { throw RaftError.proposalDropped(.notMember) }
            guard leadTransferee == noNode else { throw RaftError.proposalDropped(.transferInProgress) }
            if ents.contains(where: { $0.type == .confChange }) {
                pendingConfIndex = log.lastIndex + UInt64(ents.count)
            }
            appendEntries(ents)
        case .follower:
            guard leader != noNode else { throw RaftError.proposalDropped(.noLeader) }
            send(Message(type: .propose, to: leader, entries: ents))
        case .candidate, .preCandidate:
            throw RaftError.proposalDropped(.noLeader)
        }
    }
}
