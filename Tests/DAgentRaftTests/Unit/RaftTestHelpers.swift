@testable import DAgentRaft
import XCTest
@testable import DAgentRaftStorage
import DAgentTestSupport

/// Builds storage whose log holds entries with the given terms at indexes 1...n and whose
/// membership (from an index-0 snapshot) is `voters`.
func makeStorage(voters: [NodeID], terms: [UInt64] = [], hardTerm: UInt64? = nil) throws -> MemoryStorage {
    let s = MemoryStorage()
    try s.applySnapshot(Snapshot(metadata: SnapshotMetadata(index: 0, term: 0, membership: Membership(voters: voters))))
    let ents = terms.enumerated().map { Entry(term: $0.element, index: UInt64($0.offset + 1), data: [UInt8($0.offset % 256)]) }
    try s.append(ents)
    if let t = hardTerm ?? terms.last { try s.setHardState(HardState(term: t)) }
    return s
}

func makeNode(_ id: NodeID, voters: [NodeID], terms: [UInt64] = [], hardTerm: UInt64? = nil,
              preVote: Bool = false, checkQuorum: Bool = false, maxSizePerMsg: UInt64 = 1 << 20,
              maxInflight: Int = 256, electionTick: Int = 10, deferCommitNotices: Bool = false) throws -> RaftNode {
    let storage = try makeStorage(voters: voters, terms: terms, hardTerm: hardTerm)
    var cfg = RaftConfig(id: id, electionTick: electionTick, heartbeatTick: 1, maxSizePerMsg: maxSizePerMsg,
                         maxInflightMsgs: maxInflight, preVote: preVote, checkQuorum: checkQuorum, randomSeed: id)
    cfg.deferCommitNotices = deferCommitNotices
    return try RaftNode(config: cfg, storage: storage)
}

/// A leader of term 1 over [1, 2, 3] whose no-op (index 1) is durable and committed, both
/// followers in replicate state, nothing queued.
func makeReplicatingLeader(deferCommitNotices: Bool = false,
                           file: StaticString = #filePath, line: UInt = #line) throws -> RaftNode {
    let n = try makeNode(1, voters: [1, 2, 3], deferCommitNotices: deferCommitNotices)
    n.electSelf()
    try n.persistAll()
    n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 1))
    n.step(Message(type: .appendResponse, from: 3, to: 1, term: n.term, index: 1))
    try n.persistAll()
    _ = n.takeMessages()
    n.sendCommitNotices()   // what a deferred no-op commit left due
    _ = n.takeMessages()
    XCTAssertEqual(n.commitIndex, 1, file: file, line: line)
    XCTAssertEqual(n.status.progress[2]?.state, .replicate, file: file, line: line)
    XCTAssertEqual(n.status.progress[3]?.state, .replicate, file: file, line: line)
    XCTAssertFalse(n.hasDeferredCommitNotice, file: file, line: line)
    return n
}

extension RaftNode {
    /// Takes the queued outgoing messages (test helper, bypasses Ready).
    func takeMessages() -> [Message] {
        defer { msgs = [] }
        return msgs
    }

    /// Persists and acknowledges everything pending, returning the Ready.
    @discardableResult
    func persistAll() throws -> Ready {
        let rd = ready()
        try log.storage.save(rd)
        advance(rd)
        return rd
    }

    /// Makes this node leader of `term` quickly: campaign and receive grants from everyone.
    /// Leaves the new leader's own messages (appends) queued.
    func electSelf() {
        campaign()
        for _ in 0..<2 where role != .leader {
            for m in takeMessages() where m.type == .vote || m.type == .preVote {
                step(Message(type: m.type.voteResponseType, from: m.to, to: id, term: m.term))
            }
        }
    }
}
