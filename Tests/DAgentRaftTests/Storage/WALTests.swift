import DAgentRaft
import Foundation
import XCTest
@testable import DAgentRaftStorage
import DAgentTestSupport

/// WAL framing, group commit, segment rollover and torn-tail / corruption recovery.
final class WALTests: TempDirTestCase {
    private var walDir: String { tmp + "/wal" }

    private func open(segmentSize: Int = 1 << 20) throws -> (WAL, [WALRecord], [RecoveryEvent]) {
        let r = try WAL.open(directory: walDir, options: WALOptions(segmentSize: segmentSize))
        return (r.wal, r.records, r.events)
    }

    func testCRC32CKnownValues() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8]()), 0)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum(Array((0..<32).map { UInt8($0) })), 0x46DD_794E)
    }

    func testRoundTripAcrossSegmentsAndGroupCommit() throws {
        var written: [WALRecord] = []
        do {
            let (wal, records, events) = try open(segmentSize: 400)
            XCTAssertTrue(events.isEmpty)
            XCTAssertEqual(walPayload(records), [])
            var index: UInt64 = 1
            for batch in 0..<30 {
                var recs: [WALRecord] = makeEntries(index...(index + UInt64(batch % 4)), term: UInt64(1 + batch / 10)).map { .entry($0) }
                index += UInt64(batch % 4) + 1
                recs.append(.hardState(HardState(term: UInt64(1 + batch / 10), vote: 2, commit: index - 2)))
                try wal.append(recs)
                written += recs
            }
            XCTAssertEqual(wal.stats.syncs, 30, "one sync per group commit")
            XCTAssertGreaterThan(wal.segmentPaths.count, 3, "small segments roll over")
            wal.close()
        }
        let (wal, records, events) = try open(segmentSize: 400)
        XCTAssertTrue(events.isEmpty, "\(events)")
        XCTAssertEqual(walPayload(records), written)
        // Buffered appends are written by the next sync, all in one go.
        try wal.append([.hardState(HardState(term: 9))], sync: false)
        try wal.append([.hardState(HardState(term: 10))], sync: false)
        XCTAssertTrue(wal.hasUnsynced)
        XCTAssertEqual(walPayload(try WAL.open(directory: walDir).records).count, written.count, "nothing written before sync")
        try wal.sync()
        XCTAssertEqual(wal.stats.syncs, 1)
        XCTAssertEqual(walPayload(try WAL.open(directory: walDir).records).suffix(2),
                       [.hardState(HardState(term: 9)), .hardState(HardState(term: 10))])
    }

    /// Writes `count` records, one sync each; returns the segment path and the file size
    /// before each record (so record i spans `offsets[i] ..< offsets[i + 1]`).
    private func writeRecords(_ count: Int) throws -> (path: String, offsets: [Int], records: [WALRecord]) {
        let (wal, _, _) = try open()
        let path = wal.segmentPaths.last!
        var offsets: [Int] = []
        var recs: [WALRecord] = []
        for i in 1...count {
            offsets.append(Disk.size(path))
            let r: WALRecord = i % 3 == 0 ? .hardState(HardState(term: UInt64(i), vote: 1, commit: UInt64(i - 1)))
                : .entry(Entry(term: 1, index: UInt64(i), data: Array(repeating: UInt8(i), count: 30)))
            try wal.append([r])
            recs.append(r)
        }
        offsets.append(Disk.size(path))
        wal.close()
        return (path, offsets, recs)
    }

    func testTornTailAtEveryOffsetOfTheLastRecord() throws {
        let (path, offsets, recs) = try writeRecords(5)
        let original = Disk.read(path)
        let lastStart = offsets[4]
        XCTAssertGreaterThan(original.count - lastStart, 30)
        for cut in lastStart..<original.count {
            Disk.write(path, Array(original[..<cut]))
            let (wal, records, events) = try open()
            XCTAssertEqual(walPayload(records), Array(recs.dropLast()), "cut at \(cut)")
            XCTAssertEqual(Disk.size(path), lastStart, "truncated back to the last good record (cut \(cut))")
            if cut == lastStart {
                XCTAssertTrue(events.isEmpty)
            } else {
                XCTAssertEqual(events.count, 1)
                guard case let .truncatedTornTail(file, offset, dropped, _)? = events.first else { return XCTFail("\(events)") }
                XCTAssertEqual(file, path)
                XCTAssertEqual(offset, lastStart)
                XCTAssertEqual(dropped, cut - lastStart)
            }
            // The log continues cleanly after the repair.
            try wal.append([.hardState(HardState(term: 77))])
            wal.close()
            XCTAssertEqual(walPayload(try open().1).last, .hardState(HardState(term: 77)))
        }
    }

    func testFlippedByteInLastRecordIsTruncated() throws {
        let (path, offsets, recs) = try writeRecords(5)
        let original = Disk.read(path)
        for pos in offsets[4]..<original.count {
            Disk.write(path, original)
            Disk.flipByte(path, at: pos)
            let (_, records, events) = try open()
            XCTAssertEqual(walPayload(records), Array(recs.dropLast()), "flip at \(pos)")
            XCTAssertEqual(events.count, 1, "flip at \(pos)")
            XCTAssertEqual(Disk.size(path), offsets[4])
        }
        // Garbage or zeros appended after the last good record are a torn tail too.
        for junk in [[UInt8](repeating: 0, count: 100), (0..<77).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }] {
            Disk.write(path, original + junk)
            let (_, records, events) = try open()
            XCTAssertEqual(walPayload(records), recs)
            XCTAssertEqual(events.count, 1)
            XCTAssertEqual(Disk.size(path), original.count)
        }
    }

    func testFlippedByteInEarlierRecordIsAHardErrorNamingFileAndOffset() throws {
        let (path, offsets, _) = try writeRecords(5)
        let original = Disk.read(path)
        for rec in 1..<4 {
            for pos in [offsets[rec], offsets[rec] + 5, offsets[rec + 1] - 1] {
                Disk.write(path, original)
                Disk.flipByte(path, at: pos)
                XCTAssertThrowsError(try open(), "flip at \(pos)") { error in
                    guard case let DurableStorageError.corruptRecord(file, offset, _)? = error as? DurableStorageError else {
                        return XCTFail("\(error)")
                    }
                    XCTAssertEqual(file, path)
                    XCTAssertEqual(offset, offsets[rec])
                    let text = "\(error)"
                    XCTAssertTrue(text.contains(path) && text.contains("offset \(offsets[rec])"), text)
                }
                XCTAssertEqual(Disk.read(path).count, original.count, "a hard error does not truncate anything")
            }
        }
    }

    func testDamageInAnOlderSegmentIsAHardError() throws {
        let (wal, _, _) = try open(segmentSize: 200)
        for i in 1...20 { try wal.append([.entry(Entry(term: 1, index: UInt64(i), data: Array(repeating: 1, count: 40)))]) }
        let first = wal.segmentPaths[0]
        XCTAssertGreaterThan(wal.segmentPaths.count, 2)
        wal.close()
        // Even a "torn" end is damage when the segment is not the last one.
        let b = Disk.read(first)
        Disk.write(first, Array(b.dropLast(3)))
        XCTAssertThrowsError(try open(segmentSize: 200)) { error in
            guard case let DurableStorageError.corruptRecord(file, _, reason)? = error as? DurableStorageError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, first)
            XCTAssertTrue(reason.contains("not the last segment"), reason)
        }
    }

    func testSegmentRemovalKeepsWhatIsNotCovered() throws {
        let (wal, _, _) = try open(segmentSize: 150)
        for i in 1...40 { try wal.append([.entry(Entry(term: 1, index: UInt64(i), data: Array(repeating: 2, count: 30)))]) }
        let before = wal.segmentPaths
        XCTAssertGreaterThan(before.count, 5)
        try wal.append([.snapshot(kind: .compacted, index: 25, term: 1)])
        let removed = try wal.removeSegments(coveredBy: 25)
        XCTAssertFalse(removed.isEmpty)
        XCTAssertEqual(Array(before.prefix(removed.count)), removed, "only a prefix is removed")
        wal.close()
        for p in removed { XCTAssertFalse(Disk.exists(p)) }
        let (_, records, events) = try open(segmentSize: 150)
        XCTAssertTrue(events.isEmpty)
        let indexes = records.compactMap { r -> UInt64? in if case let .entry(e) = r { return e.index } else { return nil } }
        XCTAssertLessThanOrEqual(indexes.first!, 26, "every entry after the snapshot is still there")
        XCTAssertEqual(indexes.last, 40)
    }
}
