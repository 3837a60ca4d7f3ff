@testable import DAgentRaft
import XCTest

/// Deferred commit notices (`RaftConfig.deferCommitNotices`): a leader whose commit index
/// moves sends no append that would carry only the commit; the next append, a heartbeat or
/// `sendCommitNotices()` carries it, and a committed membership change goes out at once.
final class CommitNoticeTests: XCTestCase {
    private func leader(deferring: Bool = true) throws -> RaftNode {
        try makeReplicatingLeader(deferCommitNotices: deferring)
    }

    /// Entry 2 proposed, saved, sent; follower 2 acknowledges it: committed. Returns the
    /// appends that carried it.
    @discardableResult
    private func commitEntry2(_ n: RaftNode) throws -> [Message] {
        try n.propose([7])
        let appends = try n.persistAll().messages.filter { $0.type == .append }
        XCTAssertEqual(appends.map(\.to).sorted(), [2, 3])
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 2))
        XCTAssertEqual(n.commitIndex, 2)
        return appends
    }

    func testACommitSendsNoAppendThatCarriesOnlyTheCommit() throws {
        let n = try leader()
        try commitEntry2(n)
        XCTAssertEqual(n.takeMessages(), [], "no follower needs an entry, so nothing is sent")
        XCTAssertTrue(n.hasDeferredCommitNotice)
        XCTAssertEqual(n.ready().committedEntries.map(\.index), [2], "the leader applies (and answers) at once")
    }

    func testWithoutTheOptionTheCommitIsBroadcastAtOnce() throws {
        let n = try leader(deferring: false)
        try commitEntry2(n)
        let sent = n.takeMessages()
        XCTAssertEqual(sent.map(\.to).sorted(), [2, 3])
        XCTAssertTrue(sent.allSatisfy { $0.type == .append && $0.entries.isEmpty && $0.commit == 2 }, "\(sent)")
        XCTAssertFalse(n.hasDeferredCommitNotice)
    }

    func testTheNextAppendCarriesTheCommit() throws {
        let n = try leader()
        try commitEntry2(n)
        try n.propose([8])
        let sent = n.takeMessages()
        XCTAssertEqual(sent.map(\.to).sorted(), [2, 3])
        XCTAssertTrue(sent.allSatisfy { $0.type == .append && $0.entries.map(\.index) == [3] && $0.commit == 2 }, "\(sent)")
        XCTAssertFalse(n.hasDeferredCommitNotice, "every follower was told")
    }

    func testSendCommitNoticesTellsEveryFollowerOnce() throws {
        let n = try leader()
        try commitEntry2(n)
        _ = n.takeMessages()
        n.sendCommitNotices()
        let sent = n.takeMessages()
        XCTAssertEqual(sent.map(\.to).sorted(), [2, 3])
        XCTAssertTrue(sent.allSatisfy { $0.type == .append && $0.commit == 2 }, "\(sent)")
        // Follower 3 has not acknowledged entry 2 yet: its append still carries it.
        XCTAssertEqual(sent.first { $0.to == 3 }?.entries.map(\.index), [], "entry 2 is in flight to 3 already")
        XCTAssertFalse(n.hasDeferredCommitNotice)
        n.sendCommitNotices()
        XCTAssertEqual(n.takeMessages(), [], "nothing is due any more")
    }

    func testAFollowerLearnsTheCommitFromTheNextAppend() throws {
        let n = try leader()
        let f = try makeNode(2, voters: [1, 2, 3])
        f.step(Message(type: .append, from: 1, to: 2, term: n.term, logTerm: 0, index: 0,
                       entries: n.logEntries(from: 1, to: 2)!, commit: 1))
        try f.persistAll()
        let toF = try commitEntry2(n).filter { $0.to == 2 }
        for m in toF { f.step(m) }
        try f.persistAll()
        XCTAssertEqual(f.commitIndex, 1)
        try n.propose([8])
        for m in n.takeMessages() where m.to == 2 { f.step(m) }
        XCTAssertEqual(f.commitIndex, 2, "entry 2 is committed on the follower with entry 3's append")
        XCTAssertEqual(f.ready().committedEntries.map(\.index), [2])
    }

    func testAHeartbeatCarriesTheCommitToAFollowerThatHasTheEntry() throws {
        let n = try leader()
        try commitEntry2(n)
        _ = n.takeMessages()
        n.tick()
        let beats = n.takeMessages().filter { $0.type == .heartbeat }
        XCTAssertEqual(beats.first { $0.to == 2 }?.commit, 2)
        XCTAssertEqual(beats.first { $0.to == 3 }?.commit, 1, "3 has not acknowledged entry 2: never told beyond its match")
    }

    func testACommittedMembershipChangeIsBroadcastAtOnce() throws {
        let n = try leader()
        try n.proposeConfChange(ConfChange(type: .addNode, nodeID: 4))
        try n.persistAll()
        _ = n.takeMessages()
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 2))
        XCTAssertEqual(n.commitIndex, 2)
        let sent = n.takeMessages().filter { $0.type == .append && $0.commit == 2 }
        XCTAssertTrue(Set(sent.map(\.to)).isSuperset(of: [2, 3]), "\(sent)")
        XCTAssertFalse(n.hasDeferredCommitNotice)
    }

    func testAnAckDuringTheLeadersSaveSendsNoCappedNotice() throws {
        let n = try leader()
        try n.propose([7])
        let rd = n.ready()                      // entry 2: its save is under way
        _ = n.messagesBeforePersist(of: rd)
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 2))
        XCTAssertEqual(n.commitIndex, 2)
        XCTAssertEqual(n.takeMessagesBeforePersist(), [], "no notice of a commit the leader's disk does not back yet")
        try n.log.storage.save(rd)
        n.advance(rd)
        XCTAssertEqual(n.takeMessages(), [])
        XCTAssertTrue(n.hasDeferredCommitNotice)
        n.sendCommitNotices()
        XCTAssertTrue(n.takeMessages().allSatisfy { $0.commit == 2 })
    }

    func testANewTermForgetsADueNotice() throws {
        let n = try leader()
        try commitEntry2(n)
        XCTAssertTrue(n.hasDeferredCommitNotice)
        n.step(Message(type: .append, from: 2, to: 1, term: n.term + 1, logTerm: n.term, index: 2, commit: 2))
        XCTAssertEqual(n.role, .follower)
        XCTAssertFalse(n.hasDeferredCommitNotice)
        n.sendCommitNotices()
        XCTAssertFalse(n.takeMessages().contains { $0.type == .append }, "a follower sends no appends")
    }
}
