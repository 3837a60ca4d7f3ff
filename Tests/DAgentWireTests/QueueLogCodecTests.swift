import DAgentWire
import Foundation
import XCTest

/// The durable queue log's record codec: round trips, and hostile bytes never trap.
final class QueueLogCodecTests: XCTestCase {
    func envelope(_ i: Int) -> Dagent_Envelope {
        var e = Dagent_Envelope()
        e.src = "a1"
        e.dst = "target"
        e.type = UInt32(i)
        e.id = UInt64(i) << 40
        e.payload = Data("message \(i)".utf8)
        return e
    }

    func sample() throws -> (bytes: [UInt8], records: [QueueLogRecord], ends: [Int]) {
        let records: [QueueLogRecord] = [
            .header(segment: 7, supersedes: 7),
            .queued(seq: 1, envelope: envelope(1)),
            .queued(seq: 2, envelope: envelope(2)),
            .left(seqs: [1]),
            .queued(seq: 3, envelope: envelope(3)),
            .left(seqs: [2, 3]),
        ]
        var bytes: [UInt8] = []
        var ends: [Int] = []
        for r in records {
            try QueueLogEncoder.append(r, to: &bytes)
            ends.append(bytes.count)
        }
        return (bytes, records, ends)
    }

    func testRoundTrip() throws {
        let (bytes, records, _) = try sample()
        let d = QueueLogDecoder.decode(bytes)
        XCTAssertNil(d.damage)
        XCTAssertEqual(d.records, records)
        XCTAssertEqual(d.validBytes, bytes.count)
        XCTAssertEqual(QueueLogCRC.checksum(Array("123456789".utf8)[...]), 0xE306_9283)
    }

    func testTornTailAtEveryByteKeepsTheIntactPrefix() throws {
        let (bytes, records, ends) = try sample()
        for cut in 0..<bytes.count {
            let d = QueueLogDecoder.decode(Array(bytes[0..<cut]))
            let whole = ends.filter { $0 <= cut }.count
            XCTAssertEqual(d.records, Array(records.prefix(whole)), "cut at \(cut)")
            XCTAssertEqual(d.validBytes, whole == 0 ? 0 : ends[whole - 1])
            if cut != d.validBytes { XCTAssertNotNil(d.damage, "cut at \(cut)") }
        }
    }

    func testFlippedBytesAreDetected() throws {
        let (bytes, records, ends) = try sample()
        for i in 0..<bytes.count {
            var b = bytes
            b[i] ^= 0x5A
            let d = QueueLogDecoder.decode(b)
            let damaged = ends.firstIndex { i < $0 }!
            XCTAssertEqual(d.records, Array(records.prefix(damaged)), "flip at \(i)")
            XCTAssertEqual(d.damage?.offset, damaged == 0 ? 0 : ends[damaged - 1], "flip at \(i)")
        }
    }

    func testMalformedBodiesAreReportedNotTrapped() throws {
        func framed(_ body: [UInt8]) -> [UInt8] {
            var lb: [UInt8] = []
            for k in 0..<4 { lb.append(UInt8(truncatingIfNeeded: body.count >> (8 * k))) }
            lb += body
            let crc = QueueLogCRC.checksum(lb[...])
            var out: [UInt8] = []
            for k in 0..<4 { out.append(UInt8(truncatingIfNeeded: crc >> (8 * UInt32(k)))) }
            return out + lb
        }
        var header: [UInt8] = []
        try QueueLogEncoder.append(.header(segment: 1, supersedes: 1), to: &header)
        let cases: [([UInt8], String)] = [
            (framed([9]), "unknown record type 9"),
            (framed([3, 5, 0, 0, 0]), "left record of 5 bytes for 5 seq(s)"),
            (framed([3, 0xFF, 0xFF, 0xFF, 0xFF]), "for 4294967295 seq(s)"),
            (framed([2, 1]), "queued record of 2 bytes"),
            (framed([2, 1, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]), "the envelope does not decode"),
            (header, "a second header record"),
        ]
        for (bad, want) in cases {
            let d = QueueLogDecoder.decode(header + bad)
            XCTAssertEqual(d.records.count, 1)
            XCTAssertEqual(d.validBytes, header.count)
            XCTAssertTrue(d.damage?.reason.contains(want) == true, "\(String(describing: d.damage)) lacks \(want)")
        }
        XCTAssertTrue(QueueLogDecoder.decode(framed([3, 0, 0, 0, 0])).damage?.reason.contains("does not start with a header") == true)
        XCTAssertTrue(QueueLogDecoder.decode([0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x7F, 1]).damage?.reason.contains("outside 1...") == true)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let n = Int.random(in: 0..<64, using: &rng)
            _ = QueueLogDecoder.decode(header + (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) })
        }
    }
}
