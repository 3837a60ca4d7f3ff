import DAgentRaft
import Foundation
import XCTest
@testable import DAgentRaftStorage
import DAgentTestSupport

/// `DiskStorage` behaves like `MemoryStorage` and survives reopening.
final class DiskStorageTests: TempDirTestCase {
    private var dir: String { tmp + "/node" }

    private func open(segmentSize: Int = 512, keep: Int = 2) throws -> DiskStorage {
        try DiskStorage(directory: dir, options: DiskStorageOptions(segmentSize: segmentSize, keepSnapshots: keep))
    }

    private func snap(_ index: UInt64, _ term: UInt64, voters: [NodeID] = [1, 2, 3]) -> Snapshot {
        Snapshot(metadata: SnapshotMetadata(index: index, term: term, membership: Membership(voters: voters)),
                 data: Array("state@\(index)".utf8))
    }

    func testRoundTripAcrossSegmentsWithConflictsAndCompaction() throws {
        var s = try open()
        XCTAssertTrue(s.isEmpty)
        try s.save(Ready(hardState: HardState(term: 1, vote: 1, commit: 0), entries: makeEntries(1...10, term: 1)))
        try s.save(Ready(hardState: HardState(term: 2, vote: 2, commit: 5), entries: makeEntries(7...12, term: 2)))
        for i in stride(from: UInt64(13), through: 60, by: 3) {
            try s.save(Ready(hardState: HardState(term: 2, vote: 2, commit: i - 1), entries: makeEntries(i...(i + 2), term: 2, size: 20)))
        }
        XCTAssertGreaterThan(s.segmentPaths.count, 3)
        let before = try StorageState(s)
        XCTAssertEqual(before.entries.map(\.term), Array(repeating: 1, count: 6) + Array(repeating: 2, count: 54))
        s.close()
        s = try open()
        XCTAssertEqual(try StorageState(s), before)
        XCTAssertTrue(s.recoveryReport.isClean, "\(s.recoveryReport)")
        // Compact, reopen, compare again.
        try s.compact(with: snap(30, 2))
        let compacted = try StorageState(s)
        XCTAssertEqual(compacted.firstIndex, 31)
        s.close()
        s = try open()
        XCTAssertEqual(try StorageState(s), compacted)
        XCTAssertEqual(s.recoveryReport.snapshotIndex, 30)
    }

    /// Random operations applied to a MemoryStorage and a DiskStorage side by side; the
    /// states match after every operation and after every reopen.
    func testMatchesMemoryStorageUnderRandomOperations() throws {
        var rng = SplitMix64(seed: 99)
        let mem = MemoryStorage()
        var disk = try open(segmentSize: 300, keep: 2)
        var term: UInt64 = 1
        for step in 0..<150 {
            let last = try mem.lastIndex(), first = try mem.firstIndex()
            switch rng.next(below: 10) {
            case 0...4: // append, sometimes overwriting a suffix
                let start = last >= first && rng.chance(0.3) ? first + rng.next(below: last - first + 1) : last + 1
                if rng.chance(0.3) { term += 1 }
                let ents = makeEntries(start...(start + rng.next(below: 4)), term: term, size: Int(rng.next(below: 40)))
                let hs = HardState(term: term, vote: rng.next(below: 4), commit: min(start - 1, last))
                try mem.save(Ready(hardState: hs, entries: ents))
                try disk.save(Ready(hardState: hs, entries: ents))
            case 5, 6: // local snapshot
                guard last >= first else { continue }
                let idx = first + rng.next(below: last - first + 1)
                let s = snap(idx, try mem.term(at: idx))
                try mem.compact(with: s)
                try disk.compact(with: s)
            case 7: // snapshot from the leader
                term += 1
                let s = snap(last + 1 + rng.next(below: 5), term)
                try mem.applySnapshot(s)
                try disk.save(Ready(hardState: HardState(term: term, vote: 0, commit: s.metadata.index), snapshot: s))
                try mem.setHardState(HardState(term: term, vote: 0, commit: s.metadata.index))
            default: // reopen
                disk.close()
                disk = try open(segmentSize: 300, keep: 2)
                XCTAssertTrue(disk.recoveryReport.isClean, "\(disk.recoveryReport)")
            }
            XCTAssertEqual(try StorageState(disk), try StorageState(mem), "step \(step)")
        }
        XCTAssertLessThanOrEqual(try disk.snapshotFiles().count, 2)
    }

    func testRaftNodeRestartsFromDisk() throws {
        var s = try DiskStorage(directory: dir, bootstrapVoters: [1])
        var n = try RaftNode(config: RaftConfig(id: 1), storage: s)
        n.campaign()
        var applied: [String] = []
        func drain() throws {
            while n.hasReady() {
                let rd = n.ready()
                try s.save(rd)
                applied += rd.committedEntries.filter { $0.type == .normal }.map { String(decoding: $0.data, as: UTF8.self) }
                n.advance(rd)
            }
        }
        try drain()
        XCTAssertEqual(n.role, .leader)
        for i in 0..<20 { try n.propose(Array("v\(i)".utf8)) }
        try drain()
        try n.proposeConfChange(ConfChange(type: .addNode, nodeID: 2))
        try drain()
        try n.compact(upTo: n.appliedIndex - 5, snapshotData: Array("snap".utf8))
        let term = n.term, commit = n.commitIndex
        XCTAssertEqual(applied.count, 20)
        s.close()
        s = try DiskStorage(directory: dir, bootstrapVoters: [1])
        n = try RaftNode(config: RaftConfig(id: 1), storage: s)
        XCTAssertEqual(n.term, term)
        XCTAssertEqual(n.commitIndex, commit)
        XCTAssertEqual(n.membership.voters, [1, 2], "conf change replayed from the WAL")
        XCTAssertEqual(try s.snapshot().data, Array("snap".utf8))
    }

    func testGroupCommitUsesOneSync() throws {
        let s = try open(segmentSize: 1 << 20)
        let base = s.walStats.syncs
        try s.groupCommit {
            for i in UInt64(1)...10 { try s.save(Ready(hardState: HardState(term: 1, commit: i - 1), entries: makeEntries(i...i, term: 1))) }
        }
        XCTAssertEqual(s.walStats.syncs, base + 1)
        try s.save((11...20).map { Ready(entries: makeEntries(UInt64($0)...UInt64($0), term: 1)) })
        XCTAssertEqual(s.walStats.syncs, base + 2)
        try s.save(Ready(hardState: HardState(term: 1, commit: 20), entries: makeEntries(21...25, term: 1)))
        XCTAssertEqual(s.walStats.syncs, base + 3, "one Ready = one sync")
        let state = try StorageState(s)
        s.close()
        XCTAssertEqual(try StorageState(try open()), state)
    }

    func testSnapshotsAreReplacedAtomicallyAndOldSegmentsRemoved() throws {
        let s = try open(segmentSize: 300, keep: 2)
        var next: UInt64 = 1
        var firstSegments: [String] = []
        for round in 1...6 {
            for _ in 0..<8 {
                try s.save(Ready(hardState: HardState(term: 1, commit: next), entries: makeEntries(next...(next + 1), term: 1, size: 24)))
                next += 2
            }
            if round == 1 { firstSegments = s.segmentPaths }
            try s.compact(with: snap(next - 3, 1))
            let files = try s.snapshotFiles()
            XCTAssertEqual(files.first?.index, next - 3)
            XCTAssertLessThanOrEqual(files.count, 2, "only the newest 2 are kept")
            XCTAssertTrue(Disk.list(tmp + "/node/snap").allSatisfy { !$0.hasSuffix(".tmp") })
        }
        for p in firstSegments.dropLast() { XCTAssertFalse(Disk.exists(p), "\(p) was compacted away") }
        let created = s.walStats.segmentsCreated + 1
        let state = try StorageState(s)
        s.close()
        let r = try open(segmentSize: 300, keep: 2)
        XCTAssertEqual(try StorageState(r), state)
        XCTAssertLessThan(r.recoveryReport.segments, created / 2, "most segments were removed")
    }

    func testCorruptNewestSnapshotFallsBackToThePreviousOne() throws {
        var s = try open(segmentSize: 4096, keep: 2)
        try s.save(Ready(hardState: HardState(term: 1, commit: 40), entries: makeEntries(1...40, term: 1)))
        try s.compact(with: snap(10, 1))
        try s.compact(with: snap(30, 1))
        let newest = try s.snapshotFiles()[0]
        XCTAssertEqual(newest.index, 30)
        s.close()
        Disk.flipByte(newest.path, at: Disk.size(newest.path) - 2)
        var events: [RecoveryEvent] = []
        var opts = DiskStorageOptions(segmentSize: 4096, keepSnapshots: 2)
        opts.onRecoveryEvent = { events.append($0) }
        s = try DiskStorage(directory: dir, options: opts)
        XCTAssertEqual(try s.snapshot(), snap(10, 1), "fell back to the previous snapshot")
        XCTAssertEqual(try s.firstIndex(), 11, "entries after the older snapshot are still in the WAL")
        XCTAssertEqual(try s.lastIndex(), 40)
        XCTAssertEqual(try s.entries(from: 11, to: 41, maxBytes: .max), makeEntries(11...40, term: 1))
        XCTAssertEqual(events, s.recoveryReport.events)
        guard case let .corruptSnapshot(file, reason)? = events.first else { return XCTFail("\(events)") }
        XCTAssertEqual(file, newest.path)
        XCTAssertTrue(reason.contains("checksum"), reason)
        XCTAssertTrue(Disk.exists(newest.path + ".broken"))
        // A node started from it works, and the next compaction proceeds normally.
        try s.compact(with: snap(35, 1))
        s.close()
        s = try open(segmentSize: 4096, keep: 2)
        XCTAssertEqual(try s.snapshot().metadata.index, 35)
        XCTAssertTrue(s.recoveryReport.isClean)
    }

    func testNoUsableSnapshotIsAClearError() throws {
        let s = try open(segmentSize: 200, keep: 1)
        for i in stride(from: UInt64(1), through: 60, by: 2) {
            try s.save(Ready(hardState: HardState(term: 1, commit: i + 1), entries: makeEntries(i...(i + 1), term: 1, size: 30)))
        }
        try s.compact(with: snap(50, 1))
        XCTAssertEqual(try s.snapshotFiles().count, 1)
        let file = try s.snapshotFiles()[0]
        s.close()
        Disk.write(file.path, Array(Disk.read(file.path).prefix(10)))
        XCTAssertThrowsError(try open(segmentSize: 200, keep: 1)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("no usable snapshot") && text.contains(file.path), text)
        }
    }

    func testValidationErrorsDoNotPoison() throws {
        let s = try open()
        try s.append(makeEntries(1...5, term: 1))
        XCTAssertThrowsError(try s.append(makeEntries(9...9, term: 1))) { XCTAssertEqual($0 as? StorageError, .unavailable) }
        try s.compact(with: snap(3, 1))
        XCTAssertThrowsError(try s.compact(with: snap(3, 1))) { XCTAssertEqual($0 as? StorageError, .snapshotOutOfDate) }
        try s.append(makeEntries(6...6, term: 1))
        XCTAssertEqual(try s.lastIndex(), 6)
    }
}

extension DiskStorageTests {
    func testMissingWALWithSnapshotsIsAnErrorNotADeletion() throws {
        let s = try DiskStorage(directory: tmp + "/n", options: DiskStorageOptions(segmentSize: 4096))
        try s.append(makeEntries(1...5, term: 1))
        try s.compact(with: Snapshot(metadata: SnapshotMetadata(index: 3, term: 1, membership: Membership(voters: [1])), data: [7]))
        let file = try s.snapshotFiles()[0].path
        s.close()
        try FileManager.default.removeItem(atPath: tmp + "/n/wal")
        XCTAssertThrowsError(try DiskStorage(directory: tmp + "/n")) { error in
            XCTAssertTrue("\(error)".contains("no WAL segment"), "\(error)")
        }
        XCTAssertTrue(Disk.exists(file), "the snapshot is left alone")
    }
}

extension DiskStorageTests {
    /// Segments before a gap in the numbering (an interrupted removal) are ignored and
    /// deleted only if recovery works without them; a missing needed segment is an error.
    func testSegmentsBeforeAGapAreStaleOnlyIfNotNeeded() throws {
        let d = tmp + "/g"
        var s = try DiskStorage(directory: d, options: DiskStorageOptions(segmentSize: 200, keepSnapshots: 1))
        for i in stride(from: UInt64(1), through: 40, by: 2) {
            try s.save(Ready(hardState: HardState(term: 1, commit: i + 1), entries: makeEntries(i...(i + 1), term: 1, size: 30)))
        }
        let first = s.segmentPaths[0]
        let backup = Disk.read(first)
        try s.compact(with: snap(30, 1))
        XCTAssertFalse(Disk.exists(first))
        let state = try StorageState(s)
        s.close()
        Disk.write(first, backup) // its removal "did not persist", a later one did
        s = try DiskStorage(directory: d, options: DiskStorageOptions(segmentSize: 200, keepSnapshots: 1))
        XCTAssertEqual(try StorageState(s), state)
        XCTAssertEqual(s.recoveryReport.events, [.removedStaleSegment(first)])
        XCTAssertFalse(Disk.exists(first))
        // A lost segment that is still needed: recovery fails and deletes nothing.
        for i in stride(from: UInt64(41), through: 80, by: 2) {
            try s.save(Ready(hardState: HardState(term: 1, commit: i + 1), entries: makeEntries(i...(i + 1), term: 1, size: 30)))
        }
        let segs = s.segmentPaths
        s.close()
        try FileManager.default.removeItem(atPath: segs[segs.count - 2])
        XCTAssertThrowsError(try DiskStorage(directory: d)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("no usable snapshot") || text.contains("segments are missing"), text)
        }
        for p in segs.dropLast(2) { XCTAssertTrue(Disk.exists(p), "\(p) kept after a failed recovery") }
    }
}
