@testable import DAgentNode
import DAgentWire
import Foundation
import XCTest

/// The durable queue log on real, fsync'd files: replay, torn tails, rewrites.
final class DurableQueueLogTests: XCTestCase {
    var dir = ""

    override func setUp() {
        dir = NSTemporaryDirectory() + "dqlog-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func envelope(_ i: Int, bytes: Int = 10) -> Dagent_Envelope {
        var e = Dagent_Envelope()
        e.src = "a1"
        e.dst = "target"
        e.type = UInt32(i)
        e.payload = Data(repeating: UInt8(i & 0xFF), count: bytes)
        return e
    }

    func segments() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".log") }.sorted()
    }

    func testQueuedAndLeftReplayInOrder() throws {
        let log = try DurableQueueLog(directory: dir, segmentBytes: 1 << 20)
        XCTAssertEqual(log.replayed, [])
        try log.begin([])
        for i in 1...5 { try log.queued(seq: UInt64(i), envelope: envelope(i)) }
        try log.commit()
        log.left([2, 4])
        try log.commit()
        log.close()
        // A crash here: reopen.
        let again = try DurableQueueLog(directory: dir, segmentBytes: 1 << 20)
        XCTAssertEqual(again.replayed.map(\.type), [1, 3, 5])
        XCTAssertEqual(again.replayNotes, [])
        try again.begin(again.replayed.enumerated().map { (UInt64($0.offset + 1), $0.element) })
        XCTAssertEqual(segments().count, 1, "the new segment supersedes the old one, which is deleted")
        let third = try DurableQueueLog(directory: dir, segmentBytes: 1 << 20)
        XCTAssertEqual(third.replayed.map(\.type), [1, 3, 5])
    }

    func testTornTailIsTruncatedWithANote() throws {
        let log = try DurableQueueLog(directory: dir, segmentBytes: 1 << 20)
        try log.begin([])
        for i in 1...3 { try log.queued(seq: UInt64(i), envelope: envelope(i)) }
        try log.commit()
        log.close()
        let file = dir + "/" + segments().last!
        let size = try FileManager.default.attributesOfItem(atPath: file)[.size] as! Int
        // Half a record more, as a crash in the middle of a write leaves it.
        let h = FileHandle(forWritingAtPath: file)!
        h.seekToEndOfFile()
        h.write(Data([0x11, 0x22, 0x33, 0x44, 0x40, 0, 0, 0, 2, 9, 9]))
        h.closeFile()
        let again = try DurableQueueLog(directory: dir, segmentBytes: 1 << 20)
        XCTAssertEqual(again.replayed.map(\.type), [1, 2, 3])
        XCTAssertEqual(again.replayNotes.count, 1)
        XCTAssertTrue(again.replayNotes[0].contains("truncated a torn or corrupt tail of \(file) at offset \(size)"), again.replayNotes[0])
        XCTAssertTrue(again.replayNotes[0].contains("11 byte(s) dropped"), again.replayNotes[0])
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int, size)
    }

    func testEveryTruncationOfTheFileReplaysAPrefix() throws {
        let log = try DurableQueueLog(directory: dir, segmentBytes: 1 << 20)
        try log.begin([])
        for i in 1...4 {
            try log.queued(seq: UInt64(i), envelope: envelope(i))
            try log.commit()
        }
        log.close()
        let file = dir + "/" + segments().last!
        let full = try Data(contentsOf: URL(fileURLWithPath: file))
        var seen = Set<Int>()
        for cut in stride(from: 0, through: full.count, by: 3) {
            try full.prefix(cut).write(to: URL(fileURLWithPath: file))
            let again = try DurableQueueLog(directory: dir, segmentBytes: 1 << 20)
            let types = again.replayed.map { Int($0.type) }
            XCTAssertEqual(types, Array(1...4).prefix(types.count).map { $0 }, "cut at \(cut)")
            seen.insert(types.count)
        }
        XCTAssertEqual(seen, [0, 1, 2, 3, 4])
    }

    func testRewriteWhenMostlyDeliveredAndWhenEmpty() throws {
        let log = try DurableQueueLog(directory: dir, segmentBytes: 8192)
        try log.begin([])
        for i in 1...40 { try log.queued(seq: UInt64(i), envelope: envelope(i, bytes: 400)) }
        try log.commit()
        XCTAssertGreaterThan(log.currentSegmentBytes, 16_000)
        let before = log.rewrites
        log.left(Array(1...38).map(UInt64.init))
        try log.commit()
        XCTAssertEqual(log.rewrites, before + 1, "mostly delivered: rewritten")
        XCTAssertLessThan(log.currentSegmentBytes, 2000)
        XCTAssertEqual(segments().count, 1)
        log.left([39, 40])
        try log.commit()
        XCTAssertEqual(log.rewrites, before + 2, "empty: rewritten to a bare header")
        log.close()
        XCTAssertEqual(try DurableQueueLog(directory: dir, segmentBytes: 8192).replayed, [])
    }

    func testLeftoversOfAnInterruptedRewriteAreIgnored() throws {
        let log = try DurableQueueLog(directory: dir, segmentBytes: 1 << 20)
        try log.begin([])
        for i in 1...3 { try log.queued(seq: UInt64(i), envelope: envelope(i)) }
        try log.commit()
        log.close()
        let first = dir + "/" + segments().first!
        let keep = try Data(contentsOf: URL(fileURLWithPath: first))
        // The rewrite finished (renamed) but the old segment was not deleted yet: no duplicates.
        let again = try DurableQueueLog(directory: dir, segmentBytes: 1 << 20)
        try again.begin(again.replayed.enumerated().map { (UInt64($0.offset + 10), $0.element) })
        again.close()
        try keep.write(to: URL(fileURLWithPath: first))
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/q-0000000000000099.log.tmp"))
        let third = try DurableQueueLog(directory: dir, segmentBytes: 1 << 20)
        XCTAssertEqual(third.replayed.map(\.type), [1, 2, 3])
        XCTAssertTrue(third.replayNotes.contains { $0.contains("a segment rewrite that did not finish") }, "\(third.replayNotes)")
    }
}
