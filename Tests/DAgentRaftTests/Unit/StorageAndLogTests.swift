@testable import DAgentRaft
import XCTest
@testable import DAgentRaftStorage
import DAgentTestSupport

final class StorageAndLogTests: XCTestCase {
    func testMemoryStorageAppendTruncatesConflicts() throws {
        let s = MemoryStorage()
        try s.append([Entry(term: 1, index: 1), Entry(term: 1, index: 2), Entry(term: 1, index: 3)])
        try s.append([Entry(term: 2, index: 2)])
        XCTAssertEqual(try s.lastIndex(), 2)
        XCTAssertEqual(try s.term(at: 2), 2)
        XCTAssertThrowsError(try s.append([Entry(term: 2, index: 5)]), "gaps are rejected")
        XCTAssertEqual(try s.entries(from: 1, to: 3, maxBytes: .max).map(\.term), [1, 2])
        XCTAssertThrowsError(try s.entries(from: 1, to: 4, maxBytes: .max)) { XCTAssertEqual($0 as? StorageError, .unavailable) }
    }

    func testMemoryStorageCompactAndSnapshot() throws {
        let s = MemoryStorage()
        try s.append((1...10).map { Entry(term: 1, index: UInt64($0)) })
        let snap = Snapshot(metadata: SnapshotMetadata(index: 6, term: 1, membership: Membership(voters: [1, 2])), data: [1])
        try s.compact(with: snap)
        XCTAssertEqual(try s.firstIndex(), 7)
        XCTAssertEqual(try s.lastIndex(), 10)
        XCTAssertEqual(try s.term(at: 6), 1, "the snapshot term stays available")
        XCTAssertThrowsError(try s.term(at: 5)) { XCTAssertEqual($0 as? StorageError, .compacted) }
        XCTAssertThrowsError(try s.entries(from: 6, to: 8, maxBytes: .max)) { XCTAssertEqual($0 as? StorageError, .compacted) }
        XCTAssertEqual(try s.snapshot(), snap)
        XCTAssertThrowsError(try s.compact(with: snap)) { XCTAssertEqual($0 as? StorageError, .snapshotOutOfDate) }
        // Installing a newer snapshot from a leader replaces the log.
        let newer = Snapshot(metadata: SnapshotMetadata(index: 20, term: 3, membership: Membership(voters: [1])), data: [2])
        try s.applySnapshot(newer)
        XCTAssertEqual(try s.firstIndex(), 21)
        XCTAssertEqual(try s.lastIndex(), 20)
        XCTAssertEqual(try s.term(at: 20), 3)
    }

    func testMemoryStorageEntriesSizeLimit() throws {
        let s = MemoryStorage()
        try s.append((1...5).map { Entry(term: 1, index: UInt64($0), data: [UInt8](repeating: 0, count: 10)) })
        XCTAssertEqual(try s.entries(from: 1, to: 6, maxBytes: 1).count, 1, "at least one entry")
        XCTAssertEqual(try s.entries(from: 1, to: 6, maxBytes: 52).count, 2)
    }

    func testBootstrapWritesConfEntries() throws {
        let s = try MemoryStorage(bootstrapVoters: [3, 1, 2])
        XCTAssertEqual(try s.lastIndex(), 3)
        XCTAssertEqual(try s.hardState(), HardState(term: 1, vote: 0, commit: 3))
        let ccs = try s.allEntries().map { try ConfChange(bytes: $0.data) }
        XCTAssertEqual(ccs.map(\.nodeID), [1, 2, 3])
        XCTAssertThrowsError(try s.bootstrap(voters: [1]), "bootstrap twice")
        let n = try RaftNode(config: RaftConfig(id: 2), storage: s)
        XCTAssertEqual(n.membership.voters, [1, 2, 3])
        XCTAssertEqual(n.commitIndex, 3)
    }

    func testRestartRestoresHardStateAndMembership() throws {
        let s = try MemoryStorage(bootstrapVoters: [1])
        let n = try RaftNode(config: RaftConfig(id: 1), storage: s)
        n.campaign()
        try n.proposeConfChange(ConfChange(type: .addNode, nodeID: 2))
        let rd = try n.persistAll()
        XCTAssertEqual(rd.committedEntries.last?.type, .confChange)
        XCTAssertEqual(n.membership.voters, [1, 2])
        let restarted = try RaftNode(config: RaftConfig(id: 1), storage: s)
        XCTAssertEqual(restarted.term, n.term)
        XCTAssertEqual(restarted.vote, 1)
        XCTAssertEqual(restarted.commitIndex, n.commitIndex)
        XCTAssertEqual(restarted.membership.voters, [1, 2], "conf changes are replayed from the log")
        XCTAssertEqual(restarted.role, .follower)
        // All committed entries are handed out again (config.applied = 0).
        let rd2 = try restarted.persistAll()
        XCTAssertEqual(rd2.committedEntries.map(\.index), Array(1...3))
        let skip = try RaftNode(config: RaftConfig(id: 1, applied: 2), storage: s)
        XCTAssertEqual(try skip.persistAll().committedEntries.map(\.index), [3])
    }

    func testCorruptHardStateIsRejected() throws {
        let s = MemoryStorage()
        try s.append([Entry(term: 1, index: 1)])
        try s.setHardState(HardState(term: 1, vote: 0, commit: 5))
        XCTAssertThrowsError(try RaftNode(config: RaftConfig(id: 1), storage: s))
        XCTAssertThrowsError(try RaftNode(config: RaftConfig(id: 0), storage: MemoryStorage()))
        XCTAssertThrowsError(try RaftNode(config: RaftConfig(id: 1, electionTick: 1, heartbeatTick: 1), storage: MemoryStorage()))
    }

    func testUnstableStableToIgnoresTruncatedEntries() {
        var u = Unstable(offset: 5)
        u.truncateAndAppend([Entry(term: 1, index: 5), Entry(term: 1, index: 6)])
        u.truncateAndAppend([Entry(term: 2, index: 6)])
        XCTAssertEqual(u.entries.map(\.term), [1, 2])
        u.stableTo(index: 6, term: 1) // stale ack for the replaced entry
        XCTAssertEqual(u.entries.count, 2)
        u.stableTo(index: 5, term: 1)
        XCTAssertEqual(u.offset, 6)
        XCTAssertEqual(u.entries.map(\.index), [6])
        u.truncateAndAppend([Entry(term: 3, index: 4)])
        XCTAssertEqual(u.offset, 4)
        XCTAssertEqual(u.entries.map(\.index), [4])
    }

    func testInflightsAndProgressTransitions() {
        var inf = Inflights(capacity: 3)
        inf.add(2); inf.add(4); inf.add(6)
        XCTAssertTrue(inf.isFull)
        inf.freeLE(4)
        XCTAssertEqual(inf.indexes, [6])
        inf.freeFirstOne()
        XCTAssertEqual(inf.count, 0)

        var p = Progress(next: 11, match: 0, maxInflight: 2)
        XCTAssertFalse(p.isPaused)
        p.sentEntries(count: 1, lastIndex: 11)
        XCTAssertTrue(p.isPaused, "probe: one message at a time")
        XCTAssertFalse(p.maybeDecrTo(rejected: 5, matchHint: 3), "stale rejection")
        XCTAssertTrue(p.maybeDecrTo(rejected: 10, matchHint: 3))
        XCTAssertEqual(p.next, 4)
        XCTAssertFalse(p.isPaused)
        XCTAssertTrue(p.maybeUpdate(8))
        p.becomeReplicate()
        XCTAssertEqual(p.next, 9)
        p.sentEntries(count: 2, lastIndex: 10)
        p.sentEntries(count: 1, lastIndex: 11)
        XCTAssertTrue(p.isPaused, "window full")
        XCTAssertEqual(p.next, 12)
        XCTAssertTrue(p.maybeDecrTo(rejected: 11, matchHint: 9))
        XCTAssertEqual(p.next, 9, "replicate: fall back to match + 1")
        p.becomeSnapshot(20)
        XCTAssertTrue(p.isPaused)
        p.becomeProbe()
        XCTAssertEqual(p.next, 21)
    }

    func testQuorumMath() {
        var t = ProgressTracker(membership: Membership(voters: [1, 2, 3, 4, 5]), maxInflight: 4)
        t.resetProgress(lastIndex: 10, selfID: 1)
        t.progress[2]!.match = 7
        t.progress[3]!.match = 5
        t.progress[4]!.match = 9
        XCTAssertEqual(t.committedIndex(), 7)
        XCTAssertTrue(t.isQuorum([1, 2, 3]))
        XCTAssertFalse(t.isQuorum([1, 2, 9]))
        XCTAssertEqual(Membership(voters: [1, 2, 3, 4]).quorum, 3)
    }
}
