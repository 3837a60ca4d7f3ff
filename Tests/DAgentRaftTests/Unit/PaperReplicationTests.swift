@testable import DAgentRaft
import XCTest
@testable import DAgentRaftStorage
import DAgentTestSupport

/// Log replication and commit rules from the Raft paper (§5.3, §5.4.2) plus the
/// etcd-style optimizations (reject hints, batching, flow control).
final class PaperReplicationTests: XCTestCase {
    func testNewLeaderAppendsNoopAndReplicatesIt() throws {
        let n = try makeNode(1, voters: [1, 2, 3], terms: [1, 1])
        n.electSelf()
        XCTAssertEqual(n.role, .leader)
        XCTAssertEqual(n.lastIndex, 3)
        XCTAssertEqual(n.logEntries(from: 3, to: 4)?.first?.type, .noop)
        XCTAssertEqual(n.logTerm(at: 3), n.term)
        let apps = n.takeMessages().filter { $0.type == .append }
        XCTAssertEqual(apps.map(\.to).sorted(), [2, 3])
        for m in apps {
            XCTAssertEqual(m.index, 2, "prev index")
            XCTAssertEqual(m.logTerm, 1, "prev term")
            XCTAssertEqual(m.entries.map(\.index), [3])
        }
    }

    func testFollowerRejectsMissingPrevWithLastIndexHint() throws {
        let n = try makeNode(1, voters: [1, 2, 3], terms: [1, 1])
        n.step(Message(type: .append, from: 2, to: 1, term: 2, logTerm: 2, index: 5, entries: [Entry(term: 2, index: 6)]))
        let r = n.takeMessages()
        XCTAssertEqual(r.count, 1)
        XCTAssertTrue(r[0].reject)
        XCTAssertEqual(r[0].index, 5, "echoes the rejected prev index")
        XCTAssertEqual(r[0].rejectHint, 2, "hint: our last index")
        XCTAssertEqual(r[0].logTerm, 1, "hint term: term at the hint index")
        XCTAssertEqual(n.lastIndex, 2)
    }

    func testFollowerRejectHintSkipsConflictingTerm() throws {
        // Follower: terms [1, 1, 2, 2, 2]; leader claims prev (5, term 3).
        let n = try makeNode(1, voters: [1, 2, 3], terms: [1, 1, 2, 2, 2])
        n.step(Message(type: .append, from: 2, to: 1, term: 3, logTerm: 3, index: 5))
        let r = n.takeMessages()
        XCTAssertEqual(r.first?.reject, true)
        XCTAssertEqual(r.first?.rejectHint, 5)
        XCTAssertEqual(r.first?.logTerm, 2, "last index with term <= 3 is 5 (term 2)")
        // Follower: terms [1, 4, 4, 4]; leader claims prev (4, term 3): skip the whole term-4 run.
        let m = try makeNode(1, voters: [1, 2, 3], terms: [1, 4, 4, 4])
        m.step(Message(type: .append, from: 2, to: 1, term: 5, logTerm: 3, index: 4))
        let r2 = m.takeMessages()
        XCTAssertEqual(r2.first?.rejectHint, 1)
        XCTAssertEqual(r2.first?.logTerm, 1)
    }

    func testLeaderUsesRejectHintToSkipEntries() throws {
        // Leader log terms [1, 1, 3, 3, 3, 3] + no-op in term 4 at index 7.
        let n = try makeNode(1, voters: [1, 2, 3], terms: [1, 1, 3, 3, 3, 3], hardTerm: 3)
        n.electSelf()
        XCTAssertEqual(n.term, 4)
        _ = n.takeMessages()
        // Follower 2 has [1, 1, 2, 2, 2, 2, 2, 2]: rejects prev (6, 3) with hint (6, term 2).
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: 4, logTerm: 2, index: 6, reject: true, rejectHint: 6))
        let next = n.takeMessages().filter { $0.to == 2 && $0.type == .append }
        XCTAssertEqual(next.count, 1)
        XCTAssertEqual(next.first?.index, 2, "leader's last index with term <= 2 is 2: probe from there")
        XCTAssertEqual(next.first?.logTerm, 1)
        XCTAssertEqual(next.first?.entries.map(\.index), [3, 4, 5, 6, 7])
    }

    func testFollowerTruncatesConflictingSuffix() throws {
        let n = try makeNode(1, voters: [1, 2, 3], terms: [1, 2, 2, 2])
        n.step(Message(type: .append, from: 2, to: 1, term: 3, logTerm: 1, index: 1,
                       entries: [Entry(term: 3, index: 2, data: [9])], commit: 0))
        XCTAssertEqual(n.lastIndex, 2)
        XCTAssertEqual(n.logTerm(at: 2), 3)
        XCTAssertEqual(n.takeMessages().map(\.index), [2])
        let rd = try n.persistAll()
        XCTAssertEqual(rd.entries.map(\.index), [2])
        XCTAssertEqual(try n.log.storage.lastIndex(), 2, "storage drops the conflicting suffix")
    }

    func testFollowerIgnoresDuplicateOldAppend() throws {
        let n = try makeNode(1, voters: [1, 2, 3], terms: [1, 1, 1])
        // An old, reordered append covering entries we already have must not truncate.
        n.step(Message(type: .append, from: 2, to: 1, term: 1, logTerm: 1, index: 1,
                       entries: [Entry(term: 1, index: 2, data: [1])]))
        XCTAssertEqual(n.lastIndex, 3)
        XCTAssertEqual(n.takeMessages().map(\.index), [2])
    }

    /// §5.3: the follower's commit index is min(leaderCommit, index of last new entry) —
    /// entries beyond what this message proved to match may be stale.
    func testFollowerCommitIsBoundedByLastNewEntry() throws {
        // Follower holds [1, 2, 2] where index 3 (term 2) is stale; the leader (term 3)
        // has index 3 in term 3 and has committed it.
        let n = try makeNode(1, voters: [1, 2, 3], terms: [1, 2, 2])
        n.step(Message(type: .append, from: 2, to: 1, term: 3, logTerm: 1, index: 1,
                       entries: [Entry(term: 2, index: 2, data: [1])], commit: 3))
        XCTAssertEqual(n.commitIndex, 2, "index 3 was not covered by this append")
        n.step(Message(type: .heartbeat, from: 2, to: 1, term: 3, commit: 2))
        XCTAssertEqual(n.commitIndex, 2)
    }

    /// Figure 8: a leader does not commit an entry from a previous term by counting
    /// replicas; it does so only indirectly by committing an entry of its own term.
    func testLeaderCommitsOnlyEntriesOfItsTerm() throws {
        let n = try makeNode(1, voters: [1, 2, 3, 4, 5], terms: [1, 2], hardTerm: 3)
        n.electSelf()
        XCTAssertEqual(n.term, 4)
        XCTAssertEqual(n.lastIndex, 3)
        _ = n.takeMessages()
        // Majority (1, 2, 3) has index 2 (term 2): not enough.
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: 4, index: 2))
        n.step(Message(type: .appendResponse, from: 3, to: 1, term: 4, index: 2))
        XCTAssertEqual(n.commitIndex, 0)
        // Majority has index 3 (term 4): commits 3 and, with it, 1 and 2.
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: 4, index: 3))
        XCTAssertEqual(n.commitIndex, 0)
        n.step(Message(type: .appendResponse, from: 3, to: 1, term: 4, index: 3))
        XCTAssertEqual(n.commitIndex, 3)
    }

    func testLeaderCommitBroadcastAndHeartbeatCommitBoundedByMatch() throws {
        let n = try makeNode(1, voters: [1, 2, 3], terms: [1])
        n.electSelf()
        _ = n.takeMessages()
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 2))
        XCTAssertEqual(n.commitIndex, 2)
        let bc = n.takeMessages().filter { $0.type == .append }
        // Broadcast to replicating followers; node 3 is still probing (paused until it
        // answers) and will learn the commit from a later append or heartbeat.
        XCTAssertEqual(bc.map(\.to), [2], "the new commit index is broadcast")
        XCTAssertTrue(bc.allSatisfy { $0.commit == 2 })
        n.tick()
        let hbs = n.takeMessages().filter { $0.type == .heartbeat }
        XCTAssertEqual(hbs.first { $0.to == 2 }?.commit, 2)
        XCTAssertEqual(hbs.first { $0.to == 3 }?.commit, 0, "node 3 has not acked anything")
    }

    func testBatchingRespectsMaxSizePerMessage() throws {
        let n = try makeNode(1, voters: [1, 2], maxSizePerMsg: 100)
        n.electSelf()
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 1))
        _ = n.takeMessages()
        for i in 0..<10 { try n.propose([UInt8](repeating: UInt8(i), count: 30)) }
        let apps = n.takeMessages().filter { $0.type == .append }
        XCTAssertEqual(apps.count, 10, "one append per proposal while replicating")
        // A lagging follower gets batches limited by size (each entry ~46 bytes -> 2 per message).
        let m = try makeNode(1, voters: [1, 2], terms: Array(repeating: 1, count: 10), maxSizePerMsg: 100)
        m.electSelf()
        _ = m.takeMessages()
        // The follower has nothing: it rejects prev=10 with hint (0, term 0).
        m.step(Message(type: .appendResponse, from: 2, to: 1, term: m.term, logTerm: 0, index: 10, reject: true, rejectHint: 0))
        let probe = m.takeMessages().filter { $0.type == .append }
        XCTAssertEqual(probe.count, 1, "probe state: one message at a time")
        let first = try XCTUnwrap(probe.first)
        XCTAssertEqual(first.index, 0)
        XCTAssertEqual(first.entries.map(\.index), [1, 2, 3, 4, 5], "5 x 17 bytes fit in 100")
    }

    func testFlowControlLimitsInflightAppendsInReplicateState() throws {
        let n = try makeNode(1, voters: [1, 2], maxInflight: 3)
        n.electSelf()
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 1))
        XCTAssertEqual(n.status.progress[2]?.state, .replicate)
        _ = n.takeMessages()
        for i in 0..<6 { try n.propose([UInt8(i)]) }
        let sent = n.takeMessages().filter { $0.type == .append && $0.to == 2 }
        XCTAssertEqual(sent.count, 3, "window of 3 in-flight appends")
        XCTAssertEqual(sent.map { $0.entries.first?.index }, [2, 3, 4], "pipelined: next advanced optimistically")
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 3))
        let more = n.takeMessages().filter { $0.type == .append && $0.to == 2 }
        XCTAssertEqual(more.count, 1, "ack frees two slots; all remaining entries fit one message")
        XCTAssertEqual(more.first?.entries.map(\.index), [5, 6, 7])
    }

    func testProbeStatePausesUntilAnswered() throws {
        let n = try makeNode(1, voters: [1, 2, 3], terms: [1])
        n.electSelf()
        _ = n.takeMessages()
        try n.propose([1])
        try n.propose([2])
        XCTAssertTrue(n.takeMessages().filter { $0.type == .append }.isEmpty,
                      "followers in probe state already have an unanswered append")
        n.tick() // heartbeat
        let hb = n.takeMessages()
        XCTAssertEqual(hb.filter { $0.type == .heartbeat }.count, 2)
        n.step(Message(type: .heartbeatResponse, from: 2, to: 1, term: n.term))
        let resumed = n.takeMessages().filter { $0.type == .append }
        XCTAssertEqual(resumed.map(\.to), [2], "a heartbeat response un-pauses probing")
    }

    func testLaggingFollowerGetsSnapshotWhenLogIsCompacted() throws {
        let n = try makeNode(1, voters: [1, 2, 3], terms: [1, 1, 1, 1])
        n.electSelf()
        n.step(Message(type: .appendResponse, from: 3, to: 1, term: n.term, index: 5))
        let rd = try n.persistAll()
        XCTAssertEqual(rd.committedEntries.last?.index, 5)
        try n.compact(upTo: 5, snapshotData: [7, 7])
        XCTAssertEqual(n.firstIndex, 6)
        // Node 2 (empty log) rejects the initial probe (prev=4) with hint 0: entries 1...5
        // are gone, so the leader must send the snapshot.
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 4, reject: true, rejectHint: 0))
        let out = n.takeMessages()
        let snap = try XCTUnwrap(out.first { $0.type == .snapshot && $0.to == 2 })
        XCTAssertEqual(snap.snapshot?.metadata.index, 5)
        XCTAssertEqual(snap.snapshot?.metadata.membership.voters, [1, 2, 3])
        XCTAssertEqual(snap.snapshot?.data, [7, 7])
        XCTAssertEqual(n.status.progress[2]?.state, .snapshot)
        // Follower side: install it.
        let f = try makeNode(2, voters: [1, 2, 3])
        f.step(snap)
        XCTAssertEqual(f.commitIndex, 5)
        XCTAssertEqual(f.takeMessages().map(\.index), [5])
        let frd = try f.persistAll()
        XCTAssertEqual(frd.snapshot?.metadata.index, 5)
        XCTAssertEqual(f.appliedIndex, 5)
        // Leader: the ack moves the follower back to replicating.
        n.step(Message(type: .appendResponse, from: 2, to: 1, term: n.term, index: 5))
        XCTAssertEqual(n.status.progress[2]?.state, .replicate)
    }

    func testFollowerProposalIsForwardedAndDroppedWithoutLeader() throws {
        let n = try makeNode(2, voters: [1, 2, 3])
        XCTAssertThrowsError(try n.propose([1])) { err in
            XCTAssertEqual(err as? RaftError, .proposalDropped(.noLeader))
        }
        n.step(Message(type: .heartbeat, from: 1, to: 2, term: 1))
        _ = n.takeMessages()
        try n.propose([1])
        let fwd = n.takeMessages()
        XCTAssertEqual(fwd.map(\.type), [.propose])
        XCTAssertEqual(fwd.first?.to, 1)
        XCTAssertEqual(fwd.first?.term, 0)
    }
}
