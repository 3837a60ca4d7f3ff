import DAgentRaft
import Foundation
import XCTest
@testable import DAgentRaftStorage
import DAgentTestSupport

/// A compaction split in two (`stageSnapshotFile` on the storage thread, then `compact(with:)`
/// on the Raft loop): the snapshot is effective only once its marker is synced, and a crash at
/// any point in between loses nothing but the snapshot.
final class StagedSnapshotTests: TempDirTestCase {
    private var dir: String { tmp + "/node" }

    private func open() throws -> DiskStorage {
        try DiskStorage(directory: dir, options: DiskStorageOptions(segmentSize: 4096, keepSnapshots: 2))
    }

    private func snap(_ index: UInt64) -> Snapshot {
        Snapshot(metadata: SnapshotMetadata(index: index, term: 1, membership: Membership(voters: [1, 2, 3])),
                 data: Array("state@\(index)".utf8))
    }

    func testAStagedFileWithoutItsCompactionIsIgnoredOnRecovery() throws {
        var s = try open()
        try s.save(Ready(hardState: HardState(term: 1, commit: 40), entries: makeEntries(1...40, term: 1)))
        try s.compact(with: snap(10))
        try s.stageSnapshotFile(snap(30))
        XCTAssertEqual(try s.snapshotFiles().first?.index, 30, "the file is on disk")
        let before = try StorageState(s)
        s.close()   // a crash before compact(with:)
        s = try open()
        XCTAssertEqual(s.recoveryReport.snapshotIndex, 10, "the staged file is not acknowledged")
        XCTAssertEqual(try StorageState(s), before)
        XCTAssertEqual(s.allEntries().count, 30, "entries 11...40 are all still there")
    }

    func testTheMarkerRidesWithTheNextSyncAndCleanupWaitsForIt() throws {
        var s = try open()
        try s.save(Ready(hardState: HardState(term: 1, commit: 40), entries: makeEntries(1...40, term: 1)))
        try s.compact(with: snap(10))
        let syncs = s.walStats.syncs
        try s.stageSnapshotFile(snap(30))
        try s.compact(with: snap(30))
        XCTAssertEqual(s.walStats.syncs, syncs, "compact(with:) of a staged snapshot does not sync")
        XCTAssertEqual(try s.firstIndex(), 31)
        // A crash now: the marker was never synced, so the snapshot at 10 and the log are used.
        let snapDir = dir + "/snap"
        XCTAssertEqual(Disk.list(snapDir).filter { $0.hasSuffix(".snap") }.count, 2)
        s.close()
        s = try open()
        XCTAssertEqual(s.recoveryReport.snapshotIndex, 10)
        XCTAssertEqual(try s.lastIndex(), 40)
        // Again, this time followed by a synced save: the snapshot at 30 is in effect after a restart.
        try s.stageSnapshotFile(snap(30))
        try s.compact(with: snap(30))
        try s.save(Ready(hardState: HardState(term: 1, commit: 41), entries: makeEntries(41...41, term: 1)))
        let state = try StorageState(s)
        s.close()
        s = try open()
        XCTAssertEqual(s.recoveryReport.snapshotIndex, 30)
        XCTAssertEqual(try StorageState(s), state)
    }

    func testADiscardedStagedFileIsRemoved() throws {
        let s = try open()
        try s.save(Ready(hardState: HardState(term: 1, commit: 20), entries: makeEntries(1...20, term: 1)))
        try s.stageSnapshotFile(snap(15))
        try s.discardStagedSnapshot()
        XCTAssertEqual(try s.snapshotFiles().map(\.index), [])
        try s.discardStagedSnapshot()   // nothing staged: a no-op
    }

    /// The file of a large state takes seconds to write: WAL saves must not wait for it,
    /// and old snapshots are not pruned while it is staged.
    func testSavesGoOnWhileASnapshotFileIsBeingWritten() throws {
        let entered = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        var options = DiskStorageOptions(segmentSize: 4096, keepSnapshots: 1)
        options.crashHook = { step in
            guard case .beforeSnapshotRename = step else { return }
            entered.signal()
            _ = release.wait(timeout: .now() + 60)
        }
        let s = try DiskStorage(directory: dir, options: options)
        try s.save(Ready(hardState: HardState(term: 1, commit: 40), entries: makeEntries(1...40, term: 1)))
        let staged = snap(30)
        let done = DispatchSemaphore(value: 0)
        let failure = LockedBox<Error?>(nil)
        DispatchQueue.global().async {
            do { try s.stageSnapshotFile(staged) } catch { failure.set(error) }
            done.signal()
        }
        XCTAssertEqual(entered.wait(timeout: .now() + 30), .success, "the staging reached its rename")
        // The staging thread is inside its file write: these saves do not wait for it.
        try s.save(Ready(hardState: HardState(term: 1, commit: 41), entries: makeEntries(41...41, term: 1)))
        try s.save(Ready(hardState: HardState(term: 1, commit: 42), entries: makeEntries(42...42, term: 1)))
        XCTAssertEqual(try s.lastIndex(), 42)
        release.signal()
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        XCTAssertNil(failure.get())
        try s.compact(with: staged)
        try s.save(Ready(hardState: HardState(term: 1, commit: 43), entries: makeEntries(43...43, term: 1)))
        let state = try StorageState(s)
        s.close()
        let r = try open()
        XCTAssertEqual(r.recoveryReport.snapshotIndex, 30)
        XCTAssertEqual(try StorageState(r), state)
    }
}

/// A value shared with a test's helper thread.
private final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
}
