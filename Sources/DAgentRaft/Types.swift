/// Identifier of a Raft node. `0` is reserved and means "none" (no leader, no vote).
public typealias NodeID = UInt64

/// The node id that means "nobody".
public let noNode: NodeID = 0

/// The kind of a log entry.
public enum EntryType: UInt8, Sendable, Codable, CaseIterable {
    /// Application command; `data` is opaque to Raft.
    case normal = 0
    /// Membership change; `data` is a serialized `ConfChange`.
    case confChange = 1
    /// Empty entry appended by a new leader so it can commit an entry of its own term.
    case noop = 2
}

/// One replicated log entry.
public struct Entry: Sendable, Equatable, Hashable, Codable {
    /// Term of the leader that created the entry.
    public var term: UInt64
    /// Position of the entry in the log (first real entry is 1).
    public var index: UInt64
    /// What kind of entry this is.
    public var type: EntryType
    /// Payload (application command or serialized `ConfChange`).
    public var data: [UInt8]

    public init(term: UInt64 = 0, index: UInt64 = 0, type: EntryType = .normal, data: [UInt8] = []) {
        self.term = term
        self.index = index
        self.type = type
        self.data = data
    }

    /// Approximate size used for batching limits (payload plus a fixed header estimate).
    package var byteSize: UInt64 { UInt64(data.count) + 16 }
}

/// State that must be durably persisted before any message of the same `Ready` is sent.
public struct HardState: Sendable, Equatable, Hashable, Codable {
    /// Current term.
    public var term: UInt64
    /// Candidate voted for in `term` (`0` = none).
    public var vote: NodeID
    /// Highest log index known to be committed.
    public var commit: UInt64

    public init(term: UInt64 = 0, vote: NodeID = 0, commit: UInt64 = 0) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }

    /// True for the all-zero state of a node that never ran.
    public var isEmpty: Bool { term == 0 && vote == 0 && commit == 0 }
}

/// The role a node currently plays.
public enum RaftRole: UInt8, Sendable, Codable, CustomStringConvertible {
    case follower = 0
    case preCandidate = 1
    case candidate = 2
    case leader = 3

    public var description: String {
        switch self {
        case .follower: return "follower"
        case .preCandidate: return "precandidate"
        case .candidate: return "candidate"
        case .leader: return "leader"
        }
    }
}

/// Volatile state that is useful to the application (not persisted).
public struct SoftState: Sendable, Equatable, Hashable, Codable {
    /// Leader this node currently follows (`0` if unknown).
    public var leader: NodeID
    /// Current role.
    public var role: RaftRole

    public init(leader: NodeID, role: RaftRole) {
        self.leader = leader
        self.role = role
    }
}

/// The set of voting members. Stored sorted so that iteration is deterministic.
public struct Membership: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    /// Voter ids, sorted ascending, without duplicates.
    public private(set) var voters: [NodeID]

    public init<S: Sequence>(voters: S) where S.Element == NodeID {
        self.voters = Array(Set(voters)).filter { $0 != noNode }.sorted()
    }

    public init() { self.voters = [] }

    /// Whether `id` is a voter.
    public func contains(_ id: NodeID) -> Bool { voters.contains(id) }

    /// Number of votes needed for a majority.
    public var quorum: Int { voters.count / 2 + 1 }

    /// A copy with `id` added.
    public func adding(_ id: NodeID) -> Membership { Membership(voters: voters + [id]) }

    /// A copy with `id` removed.
    public func removing(_ id: NodeID) -> Membership { Membership(voters: voters.filter { $0 != id }) }

    public var description: String { "{" + voters.map(String.init).joined(separator: ",") + "}" }
}

/// Describes the log prefix that a snapshot replaces.
public struct SnapshotMetadata: Sendable, Equatable, Hashable, Codable {
    /// Index of the last entry covered by the snapshot.
    public var index: UInt64
    /// Term of the entry at `index`.
    public var term: UInt64
    /// Membership in effect at `index`.
    public var membership: Membership

    public init(index: UInt64 = 0, term: UInt64 = 0, membership: Membership = Membership()) {
        self.index = index
        self.term = term
        self.membership = membership
    }
}

/// A state-machine snapshot plus the metadata Raft needs to continue the log after it.
public struct Snapshot: Sendable, Equatable, Hashable, Codable {
    /// Position of the snapshot in the log and membership at that point.
    public var metadata: SnapshotMetadata
    /// Opaque application state.
    public var data: [UInt8]

    public init(metadata: SnapshotMetadata = SnapshotMetadata(), data: [UInt8] = []) {
        self.metadata = metadata
        self.data = data
    }

    /// True for the "no snapshot yet" value (index 0).
    public var isEmpty: Bool { metadata.index == 0 }
}

/// The kind of single-server membership change.
public enum ConfChangeType: UInt8, Sendable, Codable {
    /// Add a voter.
    case addNode = 0
    /// Remove a voter.
    case removeNode = 1
}

/// A single-server membership change, carried as the data of a `.confChange` entry.
public struct ConfChange: Sendable, Equatable, Hashable, Codable {
    /// Add or remove.
    public var type: ConfChangeType
    /// The node being added or removed.
    public var nodeID: NodeID
    /// Opaque application data (for example the new node's address).
    public var context: [UInt8]

    public init(type: ConfChangeType, nodeID: NodeID, context: [UInt8] = []) {
        self.type = type
        self.nodeID = nodeID
        self.context = context
    }

    /// The membership obtained by applying this change to `m`.
    public func applied(to m: Membership) -> Membership {
        switch type {
        case .addNode: return m.adding(nodeID)
        case .removeNode: return m.removing(nodeID)
        }
    }
}

/// The result of a ReadIndex request: once the application has applied up to `index`,
/// a read issued with `context` is linearizable.
public struct ReadState: Sendable, Equatable, Hashable, Codable {
    /// Commit index at the time leadership was confirmed.
    public var index: UInt64
    /// The opaque request context passed to `readIndex(context:)`.
    public var context: [UInt8]

    public init(index: UInt64, context: [UInt8]) {
        self.index = index
        self.context = context
    }
}
