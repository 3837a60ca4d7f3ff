@testable import DAgentRaft
import XCTest
@testable import DAgentRaftStorage
import DAgentTestSupport

/// Ready/advance contract, ReadIndex, leadership transfer and membership-change rules.
final class ReadyAndFeatureTests: XCTestCase {
    func testReadyCarriesHardStateEntriesMessagesAndIsEmptyAfterAdvance() throws {
        let n = try makeNode(1, voters: [1, 2, 3])
        XCTAssertFalse(n.hasReady())
        n.campaign()
        XCTAssertTrue(n.hasReady())
        let rd = n.ready()
        XCTAssertEqual(rd.hardState, HardState(term: 1, vote: 1, commit: 0))
        XCTAssertEqual(rd.softState, SoftState(leader: 0, role: .candidate))
        XCTAssertEqual(rd.messages.count, 2)
        XCTAssertTrue(rd.mustSync)
        try n.log.storage.save(rd)
        n.advance(rd)
        XCTAssertFalse(n.hasReady())
        n.step(Message(type: .voteResponse, from: 2, to: 1, term: 1))
        let rd2 = n.ready()
        XCTAssertEqual(rd2.softState?.role, .leader)
        XCTAssertEqual(rd2.entries.map(\.type), [.noop])
        XCTAssertNil(rd2.hardState, "term/vote/commit unchanged")
        n.advance(rd2)
        XCTAssertEqual(try n.log.storage.lastIndex(), 0, "advance does not write: the app persists")
    }

    func testCommittedEntriesAreHandedOutOnce() throws {
        let n = try makeNode(1, voters: [1, 2])
        n.electSelf()
        try n.persistAll()
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 1))
        let rd = try n.persistAll()
        XCTAssertEqual(rd.committedEntries.map(\.index), [1])
        XCTAssertEqual(rd.hardState?.commit, 1)
        XCTAssertEqual(n.appliedIndex, 1)
        XCTAssertTrue(try n.persistAll().committedEntries.isEmpty)
    }

    func testReadIndexWaitsForCurrentTermCommitAndQuorumAck() throws {
        let n = try makeNode(1, voters: [1, 2, 3], terms: [1, 1])
        n.electSelf()
        _ = n.takeMessages()
        try n.readIndex(context: [1])
        XCTAssertTrue(n.takeMessages().isEmpty, "no heartbeat round before the no-op commits")
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 3))
        XCTAssertEqual(n.commitIndex, 3)
        let hbs = n.takeMessages().filter { $0.type == .heartbeat }
        XCTAssertEqual(hbs.count, 2)
        XCTAssertTrue(hbs.allSatisfy { $0.context == [1] })
        XCTAssertTrue(n.readStates.isEmpty)
        n.step(Message(type: .heartbeatResponse, from: 3, to: 1, term: n.term, context: [1]))
        XCTAssertEqual(n.readStates, [ReadState(index: 3, context: [1])])
    }

    func testForwardedReadIndexIsAnsweredToFollower() throws {
        let n = try makeNode(1, voters: [1, 2, 3])
        n.electSelf()
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 1))
        _ = n.takeMessages()
        n.step(Message(type: .readIndex, from: 3, to: 1, context: [9]))
        _ = n.takeMessages()
        n.step(Message(type: .heartbeatResponse, from: 2, to: 1, term: n.term, context: [9]))
        let resp = n.takeMessages().filter { $0.type == .readIndexResponse }
        XCTAssertEqual(resp.map(\.to), [3])
        XCTAssertEqual(resp.first?.index, 1)
        XCTAssertEqual(resp.first?.context, [9])
        XCTAssertTrue(n.readStates.isEmpty)
    }

    func testTransferSendsTimeoutNowWhenTargetIsUpToDate() throws {
        let n = try makeNode(1, voters: [1, 2, 3])
        n.electSelf()
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 1))
        _ = n.takeMessages()
        n.transferLeadership(to: 2)
        XCTAssertEqual(n.takeMessages().map(\.type), [.timeoutNow])
        XCTAssertThrowsError(try n.propose([1])) { XCTAssertEqual($0 as? RaftError, .proposalDropped(.transferInProgress)) }
        // Target side: campaigns immediately, skipping pre-vote, with the force marker.
        let t = try makeNode(2, voters: [1, 2, 3], preVote: true, checkQuorum: true)
        t.step(Message(type: .heartbeat, from: 1, to: 2, term: 1))
        _ = t.takeMessages()
        t.step(Message(type: .timeoutNow, from: 1, to: 2, term: 1))
        XCTAssertEqual(t.role, .candidate)
        XCTAssertEqual(t.term, 2)
        let votes = t.takeMessages()
        XCTAssertTrue(votes.allSatisfy { $0.type == .vote && $0.context == campaignTransferContext })
        // The transfer is aborted after an election timeout.
        for _ in 0..<10 { n.tick() }
        XCTAssertNoThrow(try n.propose([2]))
    }

    func testTransferToLaggingTargetCatchesUpFirst() throws {
        let n = try makeNode(1, voters: [1, 2, 3])
        n.electSelf()
        _ = n.takeMessages()
        n.transferLeadership(to: 3)
        XCTAssertFalse(n.takeMessages().contains { $0.type == .timeoutNow })
        n.step(Message(type: .appendResponse, from: 3, to: 1, term: n.term, index: 1))
        XCTAssertTrue(n.takeMessages().contains { $0.type == .timeoutNow && $0.to == 3 })
    }

    func testConfChangeRules() throws {
        let n = try makeNode(1, voters: [1, 2, 3])
        n.electSelf()
        XCTAssertThrowsError(try n.proposeConfChange(ConfChange(type: .addNode, nodeID: 4))) {
            XCTAssertEqual($0 as? RaftError, .confChangePending, "no entry of the leader's term is committed yet")
        }
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 1))
        XCTAssertThrowsError(try n.proposeConfChange(ConfChange(type: .addNode, nodeID: 2)))
        XCTAssertThrowsError(try n.proposeConfChange(ConfChange(type: .removeNode, nodeID: 9)))
        try n.proposeConfChange(ConfChange(type: .addNode, nodeID: 4))
        XCTAssertThrowsError(try n.proposeConfChange(ConfChange(type: .removeNode, nodeID: 3))) {
            XCTAssertEqual($0 as? RaftError, .confChangePending)
        }
        XCTAssertEqual(n.membership.voters, [1, 2, 3], "takes effect only when committed")
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 2))
        XCTAssertEqual(n.membership.voters, [1, 2, 3, 4])
        XCTAssertTrue(n.takeMessages().contains { $0.to == 4 && $0.type == .append }, "new member is replicated to")
        // Quorum is now 3 of 4.
        try n.propose([1])
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 3))
        XCTAssertEqual(n.commitIndex, 2)
        n.step(Message(type: .appendResponse, from: 4, to: 1, term: n.term, index: 3))
        XCTAssertEqual(n.commitIndex, 3)
        let follower = try makeNode(2, voters: [1, 2, 3])
        XCTAssertThrowsError(try follower.proposeConfChange(ConfChange(type: .addNode, nodeID: 5)))
    }

    func testRemovedLeaderStepsDownAfterCommit() throws {
        let n = try makeNode(1, voters: [1, 2, 3])
        n.electSelf()
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 1))
        _ = n.takeMessages()
        try n.proposeConfChange(ConfChange(type: .removeNode, nodeID: 1))
        XCTAssertEqual(n.role, .leader)
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 2))
        XCTAssertEqual(n.role, .follower)
        XCTAssertEqual(n.membership.voters, [2, 3])
        let out = n.takeMessages()
        XCTAssertTrue(out.contains { $0.type == .append && $0.to == 2 && $0.commit == 2 },
                      "the commit of the removal is broadcast before stepping down")
        n.campaign()
        XCTAssertEqual(n.role, .follower, "a removed node cannot campaign")
    }

    func testCompactRules() throws {
        let n = try makeNode(1, voters: [1])
        n.campaign()
        try n.propose([1])
        XCTAssertThrowsError(try n.compact(upTo: 2, snapshotData: [])) {
            XCTAssertEqual($0 as? RaftError, .compactBeyondApplied(index: 2, applied: 0))
        }
        try n.persistAll()
        let snap = try n.compact(upTo: 2, snapshotData: [5])
        XCTAssertEqual(snap.metadata.index, 2)
        XCTAssertEqual(snap.metadata.membership.voters, [1])
        XCTAssertEqual(n.firstIndex, 3)
        XCTAssertThrowsError(try n.compact(upTo: 1, snapshotData: []))
    }
}
