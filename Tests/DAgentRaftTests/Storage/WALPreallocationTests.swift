import DAgentRaft
import Foundation
import XCTest
@testable import DAgentRaftStorage
import DAgentTestSupport

/// A WAL whose current segment is zero-filled ahead of its end (`preallocateBytes`): the
/// zeros end the log without a repair, records still survive a torn write, and a segment
/// left for a new one holds its records only.
final class WALPreallocationTests: TempDirTestCase {
    private var walDir: String { tmp + "/wal" }

    private func open(preallocate: Int = 4096, segmentSize: Int = 1 << 20) throws -> (WAL, [WALRecord], [RecoveryEvent]) {
        var o = WALOptions(segmentSize: segmentSize)
        o.preallocateBytes = preallocate
        let r = try WAL.open(directory: walDir, options: o)
        return (r.wal, r.records, r.events)
    }

    private func entry(_ i: Int) -> WALRecord {
        .entry(Entry(term: 1, index: UInt64(i), data: Array(repeating: UInt8(truncatingIfNeeded: i), count: 40)))
    }

    func testZeroFilledTailEndsTheLogAndAppendsGoOnAtItsEnd() throws {
        var written: [WALRecord] = []
        do {
            let (wal, _, events) = try open()
            XCTAssertTrue(events.isEmpty)
            for i in 1...10 { try wal.append([entry(i)]); written.append(entry(i)) }
            XCTAssertEqual(wal.stats.syncs, 10)
            let path = wal.segmentPaths.last!
            let end = logicalEnd(Disk.read(path))
            XCTAssertGreaterThan(Disk.size(path), end + 3000, "zeros ahead of the records")
            XCTAssertTrue(Disk.read(path)[end...].allSatisfy { $0 == 0 })
            wal.close()
        }
        do {
            let (wal, records, events) = try open()
            XCTAssertTrue(events.isEmpty, "a zero tail is not a torn write: \(events)")
            XCTAssertEqual(walPayload(records), written)
            // Enough to outgrow the first preallocation: the file is extended again.
            for i in 11...200 { try wal.append([entry(i)]); written.append(entry(i)) }
            wal.close()
        }
        let (_, records, events) = try open()
        XCTAssertTrue(events.isEmpty, "\(events)")
        XCTAssertEqual(walPayload(records), written)
    }

    func testTornRecordInThePreallocatedTailIsCutAndReported() throws {
        let (wal, _, _) = try open()
        for i in 1...5 { try wal.append([entry(i)]) }
        let path = wal.segmentPaths.last!
        wal.close()
        // The bytes of a sixth record that only half reached the disk, inside the zeros.
        var bytes = Disk.read(path)
        let end = logicalEnd(bytes)
        XCTAssertGreaterThan(bytes.count, end + 100, "zeros follow the records")
        var frame: [UInt8] = []
        WALFrame.append(entry(6), to: &frame)
        bytes.replaceSubrange(end..<(end + frame.count / 2), with: frame.prefix(frame.count / 2))
        Disk.write(path, bytes)
        let (_, records, events) = try open()
        XCTAssertEqual(walPayload(records), (1...5).map(entry))
        XCTAssertEqual(events.count, 1, "\(events)")
        XCTAssertEqual(Disk.size(path), end, "cut back to the last intact record")
    }

    func testALeftSegmentHoldsItsRecordsOnly() throws {
        var written: [WALRecord] = []
        do {
            let (wal, _, _) = try open(segmentSize: 600)
            for i in 1...40 { try wal.append([entry(i)]); written.append(entry(i)) }
            let paths = wal.segmentPaths
            XCTAssertGreaterThan(paths.count, 3)
            for p in paths.dropLast() {
                XCTAssertEqual(logicalEnd(Disk.read(p)), Disk.size(p), "\(p) was cut to its records")
            }
            wal.close()
        }
        let (_, records, events) = try open(segmentSize: 600)
        XCTAssertTrue(events.isEmpty, "\(events)")
        XCTAssertEqual(walPayload(records), written)
    }

    func testAPreallocatedWALOpenedWithoutPreallocationLosesNothing() throws {
        do {
            let (wal, _, _) = try open()
            for i in 1...5 { try wal.append([entry(i)]) }
            wal.close()
        }
        let (_, records, events) = try open(preallocate: 0)
        XCTAssertEqual(walPayload(records), (1...5).map(entry))
        XCTAssertEqual(events.count, 1, "the zeros are cut as a torn tail would be: \(events)")
    }

    /// Offset just after the last intact record of a segment's bytes.
    private func logicalEnd(_ bytes: [UInt8]) -> Int {
        var pos = 0
        while case let .record(_, next) = WALFrame.parse(bytes, at: pos, maxBody: 1 << 20) { pos = next }
        return pos
    }
}
