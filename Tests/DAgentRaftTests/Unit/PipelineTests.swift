@testable import DAgentRaft
import XCTest

/// Pipelining a leader's writes (`RaftNode-pipeline.swift`): sending before and during a
/// save never lets a commit escape that the leader's disk does not back, and committed
/// entries that are durable already may apply while the next Ready is saved.
final class PipelineTests: XCTestCase {
    private func leader() throws -> RaftNode { try makeReplicatingLeader() }

    func testMessagesDuringASaveCarryOnlyTheDurableCommit() throws {
        let n = try leader()
        try n.propose([7])
        let rd = n.ready()                      // entry 2: its save is under way
        XCTAssertEqual(rd.entries.map(\.index), [2])
        XCTAssertEqual(n.messagesBeforePersist(of: rd).filter { $0.type == .append }.map(\.commit), [1, 1])
        // A follower acknowledges entry 2 before the leader's own fsync of it is done: the
        // leader counts itself, so its commit moves to 2 ...
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 2))
        XCTAssertEqual(n.commitIndex, 2)
        try n.propose([8])                      // entry 3, for the next Ready
        let early = n.takeMessagesBeforePersist()
        XCTAssertFalse(early.isEmpty)
        XCTAssertEqual(early.filter { $0.type == .append && !$0.entries.isEmpty }.flatMap { $0.entries.map(\.index) }, [3, 3],
                       "entry 3 goes to both followers while entry 2 is still being saved")
        // ... but no message tells a follower more than the leader's disk holds (index 1).
        XCTAssertTrue(early.allSatisfy { $0.commit <= 1 }, "\(early)")
        XCTAssertTrue(n.takeMessagesBeforePersist().isEmpty, "taken once")

        // The save is done: the leader broadcasts the commit it held back.
        try n.log.storage.save(rd)
        n.advance(rd)
        let after = n.takeMessages().filter { $0.type == .append }
        XCTAssertEqual(Set(after.map(\.to)), [2, 3])
        XCTAssertTrue(after.allSatisfy { $0.commit == 2 }, "\(after)")
    }

    func testDurableCommittedEntriesMayApplyBeforeTheSave() throws {
        let n = try leader()
        try n.propose([7])
        let rd = n.ready()
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 2))
        try n.propose([8])
        try n.log.storage.save(rd)
        n.advance(rd)
        let next = n.ready()
        XCTAssertEqual(next.entries.map(\.index), [3])
        XCTAssertEqual(next.committedEntries.map(\.index), [2])
        XCTAssertEqual(next.committedBeforePersist, 1, "entry 2 is durable here and committed: apply it during the save of 3")
    }

    func testEntriesCommittedDuringASaveApplyAtOnceIfDurable() throws {
        let n = try leader()
        try n.propose([7])
        let rd = n.ready()
        try n.log.storage.save(rd)              // entry 2 durable, not yet acknowledged
        n.advance(rd)
        try n.propose([8])
        let rd2 = n.ready()                     // entry 3: its save is under way
        XCTAssertTrue(rd2.committedEntries.isEmpty)
        XCTAssertTrue(n.takeCommittedBeforePersist().isEmpty)
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 2))
        XCTAssertEqual(n.takeCommittedBeforePersist().map(\.index), [2], "acknowledged during the save, durable here")
        XCTAssertEqual(n.appliedIndex, 2)
        XCTAssertTrue(n.takeCommittedBeforePersist().isEmpty, "handed out once")
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 3))
        XCTAssertEqual(n.commitIndex, 3)
        XCTAssertTrue(n.takeCommittedBeforePersist().isEmpty, "entry 3 waits for the leader's own save")
        try n.log.storage.save(rd2)
        n.advance(rd2)
        XCTAssertEqual(n.ready().committedEntries.map(\.index), [3], "2 is not handed out again")
    }

    func testNothingAppliesAheadOfAReadyWhoseEntriesWaitForItsSave() throws {
        let f = try makeNode(2, voters: [1, 2, 3])
        f.step(Message(type: .append, from: 1, to: 2, term: 1, logTerm: 0, index: 0,
                       entries: [Entry(term: 1, index: 1, data: [1])], commit: 1))
        let rd = f.ready()
        XCTAssertEqual(rd.committedBeforePersist, 0)
        f.step(Message(type: .heartbeat, from: 1, to: 2, term: 1, commit: 1))
        XCTAssertTrue(f.takeCommittedBeforePersist().isEmpty, "entry 1 is committed but applies after its save")
    }

    func testEntriesCommittedInTheSameReadyWaitForTheSave() throws {
        // A follower receives entries and a commit covering them in one append.
        let f = try makeNode(2, voters: [1, 2, 3])
        f.step(Message(type: .append, from: 1, to: 2, term: 1, logTerm: 0, index: 0,
                       entries: [Entry(term: 1, index: 1, data: [1]), Entry(term: 1, index: 2, data: [2])], commit: 2))
        let rd = f.ready()
        XCTAssertEqual(rd.entries.map(\.index), [1, 2])
        XCTAssertEqual(rd.committedEntries.map(\.index), [1, 2])
        XCTAssertEqual(rd.committedBeforePersist, 0)
        XCTAssertTrue(f.takeMessagesBeforePersist().isEmpty, "a follower's acks wait for its save")
        XCTAssertEqual(rd.messages.map(\.type), [.appendResponse])
    }

    func testOnlyALeaderOfADurableTermSendsEarly() throws {
        let n = try makeNode(1, voters: [1, 2, 3])
        n.campaign()
        let rd = n.ready()                      // term 1 and the vote for itself: not yet durable
        XCTAssertEqual(rd.hardState?.term, 1)
        n.step(Message(type: .voteResponse, from: 2, to: 1, term: 1))
        XCTAssertEqual(n.role, .leader)
        XCTAssertTrue(n.takeMessagesBeforePersist().isEmpty, "its term and vote are still being saved")
        try n.log.storage.save(rd)
        n.advance(rd)
        XCTAssertTrue(n.takeMessagesBeforePersist().isEmpty, "no Ready outstanding: messages go through ready()")
        let rd2 = n.ready()                     // the no-op (index 1) and the probes: being saved
        XCTAssertEqual(rd2.entries.map(\.index), [1])
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: 1, index: 1))
        try n.propose([5])
        let early = n.takeMessagesBeforePersist()
        XCTAssertEqual(early.filter { $0.type == .append && $0.to == 2 }.flatMap { $0.entries.map(\.index) }, [2])
        XCTAssertTrue(early.allSatisfy { $0.commit == 0 }, "nothing is durable here yet: \(early)")
    }
}
