/// The kinds of messages exchanged between Raft nodes.
public enum MessageType: UInt8, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// Leader -> follower: append `entries` after (`index`, `logTerm`); carries `commit`.
    case append = 1
    /// Follower -> leader: ack (`index` = last matching index) or rejection with a hint.
    case appendResponse = 2
    /// Candidate -> voter: request a vote for `term` with last log (`index`, `logTerm`).
    case vote = 3
    /// Voter -> candidate.
    case voteResponse = 4
    /// Pre-candidate -> voter: "would you vote for me in `term`?" (does not change terms).
    case preVote = 5
    /// Voter -> pre-candidate.
    case preVoteResponse = 6
    /// Leader -> follower: keep-alive; carries `commit` and an optional ReadIndex `context`.
    case heartbeat = 7
    /// Follower -> leader: heartbeat ack echoing `context`.
    case heartbeatResponse = 8
    /// Leader -> follower: InstallSnapshot carrying `snapshot`.
    case snapshot = 9
    /// Follower -> leader: forwarded client proposal (term 0).
    case propose = 10
    /// Follower -> leader: forwarded ReadIndex request (term 0).
    case readIndex = 11
    /// Leader -> follower: result of a forwarded ReadIndex (`index`, `context`).
    case readIndexResponse = 12
    /// Follower -> leader: forwarded leadership-transfer request; target in `index` (term 0).
    case transferLeader = 13
    /// Leader -> transferee: campaign immediately, bypassing pre-vote and leases.
    case timeoutNow = 14

    public var description: String {
        switch self {
        case .append: return "append"
        case .appendResponse: return "append-resp"
        case .vote: return "vote"
        case .voteResponse: return "vote-resp"
        case .preVote: return "prevote"
        case .preVoteResponse: return "prevote-resp"
        case .heartbeat: return "heartbeat"
        case .heartbeatResponse: return "heartbeat-resp"
        case .snapshot: return "snapshot"
        case .propose: return "propose"
        case .readIndex: return "read-index"
        case .readIndexResponse: return "read-index-resp"
        case .transferLeader: return "transfer-leader"
        case .timeoutNow: return "timeout-now"
        }
    }

    /// The response type for a vote-like request.
    package var voteResponseType: MessageType {
        self == .preVote ? .preVoteResponse : .voteResponse
    }
}

/// A message between two Raft nodes. Which fields are meaningful depends on `type`
/// (see `MessageType`). Unused fields are zero/empty and cost one byte on the wire.
public struct Message: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    public var type: MessageType
    public var from: NodeID
    public var to: NodeID
    /// Sender's term (0 for forwarded proposals / read requests, which are term-less).
    public var term: UInt64
    /// Term of the entry at `index` (append), or of the sender's last entry (votes),
    /// or the hint term (rejected append responses).
    public var logTerm: UInt64
    /// Log index; meaning depends on `type`.
    public var index: UInt64
    public var entries: [Entry]
    /// Leader's commit index (append/heartbeat).
    public var commit: UInt64
    public var reject: Bool
    /// For rejected append responses: the follower's suggested probe index.
    public var rejectHint: UInt64
    public var snapshot: Snapshot?
    /// Opaque context (ReadIndex request id, campaign-transfer marker).
    public var context: [UInt8]

    public init(type: MessageType, from: NodeID = 0, to: NodeID = 0, term: UInt64 = 0,
                logTerm: UInt64 = 0, index: UInt64 = 0, entries: [Entry] = [], commit: UInt64 = 0,
                reject: Bool = false, rejectHint: UInt64 = 0, snapshot: Snapshot? = nil,
                context: [UInt8] = []) {
        self.type = type
        self.from = from
        self.to = to
        self.term = term
        self.logTerm = logTerm
        self.index = index
        self.entries = entries
        self.commit = commit
        self.reject = reject
        self.rejectHint = rejectHint
        self.snapshot = snapshot
        self.context = context
    }

    public var description: String {
        var s = "\(from)->\(to) \(type) t\(term)"
        switch type {
        case .append:
            s += " prev=\(index)/\(logTerm) n=\(entries.count) commit=\(commit)"
        case .appendResponse:
            s += reject ? " reject idx=\(index) hint=\(rejectHint)/\(logTerm)" : " idx=\(index)"
        case .vote, .preVote:
            s += " last=\(index)/\(logTerm)"
        case .voteResponse, .preVoteResponse:
            s += reject ? " reject" : " grant"
        case .heartbeat:
            s += " commit=\(commit)"
        case .snapshot:
            s += " snap=\(snapshot?.metadata.index ?? 0)/\(snapshot?.metadata.term ?? 0)"
        case .readIndexResponse:
            s += " idx=\(index)"
        case .transferLeader:
            s += " target=\(index)"
        default:
            break
        }
        return s
    }
}

/// Context marker on vote requests sent because of a leadership transfer; such requests
/// bypass the leader lease of other voters.
package let campaignTransferContext: [UInt8] = Array("CampaignTransfer".utf8)
