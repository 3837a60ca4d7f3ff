import DAgentRaft
import DAgentTestSupport
import Foundation
import XCTest
@testable import DAgentRaftStorage

/// WAL segments the fuzzer (`scripts/fuzz wal`, docs/testing.md#fuzzing) found to break replay,
/// written as real files and opened as a restarted node would. Each trapped before its fix.
final class WALFuzzRegressionTests: TempDirTestCase {
    /// A segment: the header every segment starts with, then `records`, all with valid checksums.
    func writeSegment(_ records: [WALRecord]) throws -> String {
        var bytes: [UInt8] = []
        for r in [WALRecord.metadata(formatVersion: WALRecord.formatVersion, segment: 1),
                  .snapshot(kind: .base, index: 0, term: 0), .hardState(HardState())] + records {
            WALFrame.append(r, to: &bytes)
        }
        try FileManager.default.createDirectory(atPath: tmp + "/wal", withIntermediateDirectories: true)
        Disk.write(tmp + "/wal/" + WAL.segmentName(1), bytes)
        return tmp
    }

    /// fuzz target `wal`: two entries at index UInt64.max. The second one's conflict check
    /// computed `lastIndex + 1` and trapped on overflow; now the log is refused as inconsistent.
    func testEntryAtTheLargestIndexIsRefused() throws {
        let dir = try writeSegment([.entry(Entry(term: 1, index: .max, data: [0x41])),
                                    .entry(Entry(term: 1, index: .max, data: [0x41]))])
        XCTAssertThrowsError(try DiskStorage(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains("index 18446744073709551615"), "\(error)")
        }
    }

    /// One such entry is refused too: Raft could never append after it.
    func testSingleEntryAtTheLargestIndexIsRefused() throws {
        let dir = try writeSegment([.entry(Entry(term: 1, index: .max))])
        XCTAssertThrowsError(try DiskStorage(directory: dir))
    }

    /// Conflict semantics still hold just below it (the replay itself, no snapshot file needed).
    func testReplayNearTheLargestIndex() throws {
        let top = UInt64.max - 1
        var replay = WALReplay()
        for r in [WALRecord.entry(Entry(term: 1, index: top - 1)), .entry(Entry(term: 1, index: top)),
                  .entry(Entry(term: 2, index: top))] {
            try replay.apply(r)
        }
        XCTAssertEqual(replay.lastIndex, top)
        XCTAssertEqual(replay.term(at: top), 2)
        XCTAssertEqual(replay.term(at: top - 1), 1)
        XCTAssertThrowsError(try replay.apply(.entry(Entry(term: 2, index: .max))))
    }
}
