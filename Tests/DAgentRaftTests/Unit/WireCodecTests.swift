import DAgentRaft
import XCTest
@testable import DAgentRaftStorage
import DAgentTestSupport

final class WireCodecTests: XCTestCase {
    private func randomBytes(_ rng: inout SplitMix64, max: Int) -> [UInt8] {
        (0..<Int(rng.next(below: UInt64(max + 1)))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    private func randomMessage(_ rng: inout SplitMix64) -> Message {
        let type = MessageType.allCases[Int(rng.next(below: UInt64(MessageType.allCases.count)))]
        var m = Message(type: type, from: rng.next(below: 10), to: rng.next(), term: rng.next(below: 1 << 40),
                        logTerm: rng.next(below: 300), index: rng.next(), commit: rng.next(below: 1000),
                        reject: rng.chance(0.5), rejectHint: rng.next(below: 1 << 20),
                        context: randomBytes(&rng, max: 20))
        for _ in 0..<rng.next(below: 4) {
            let t = EntryType.allCases[Int(rng.next(below: 3))]
            m.entries.append(Entry(term: rng.next(below: 100), index: rng.next(), type: t, data: randomBytes(&rng, max: 40)))
        }
        if rng.chance(0.3) {
            m.snapshot = Snapshot(metadata: SnapshotMetadata(index: rng.next(), term: rng.next(below: 50),
                                                             membership: Membership(voters: [1, 2, rng.next(below: 1 << 60) + 1])),
                                  data: randomBytes(&rng, max: 100))
        }
        return m
    }

    func testMessageRoundTrip() throws {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<500 {
            let m = randomMessage(&rng)
            XCTAssertEqual(try Message(bytes: m.serialize()), m)
        }
        // Extremes.
        let big = Message(type: .append, from: .max, to: .max, term: .max, logTerm: .max, index: .max,
                          entries: [Entry(term: .max, index: .max, type: .noop)], commit: .max, reject: true,
                          rejectHint: .max, snapshot: Snapshot(), context: [])
        XCTAssertEqual(try Message(bytes: big.serialize()), big)
        let small = Message(type: .heartbeat)
        XCTAssertLessThanOrEqual(small.serialize().count, 16, "empty fields cost one byte each")
    }

    func testEntryAndConfChangeRoundTrip() throws {
        let e = Entry(term: 3, index: 99, type: .confChange, data: ConfChange(type: .removeNode, nodeID: 7, context: [1, 2]).serialize())
        let d = try Entry(bytes: e.serialize())
        XCTAssertEqual(d, e)
        XCTAssertEqual(try ConfChange(bytes: d.data), ConfChange(type: .removeNode, nodeID: 7, context: [1, 2]))
    }

    func testEveryTruncationThrows() {
        var rng = SplitMix64(seed: 11)
        for _ in 0..<100 {
            let bytes = randomMessage(&rng).serialize()
            for cut in 0..<bytes.count {
                XCTAssertThrowsError(try Message(bytes: Array(bytes[..<cut])), "prefix of length \(cut)")
            }
            XCTAssertThrowsError(try Message(bytes: bytes + [0]), "trailing byte")
        }
        let e = Entry(term: 1, index: 2, data: [1, 2, 3]).serialize()
        for cut in 0..<e.count { XCTAssertThrowsError(try Entry(bytes: Array(e[..<cut]))) }
    }

    func testMalformedInputThrowsSpecificErrors() {
        XCTAssertThrowsError(try Message(bytes: [])) { XCTAssertEqual($0 as? WireError, .truncated) }
        XCTAssertThrowsError(try Message(bytes: [9, 1, 0])) { XCTAssertEqual($0 as? WireError, .unsupportedVersion(9)) }
        XCTAssertThrowsError(try Message(bytes: [1, 99, 0])) { XCTAssertEqual($0 as? WireError, .invalidMessageType(99)) }
        XCTAssertThrowsError(try Message(bytes: [1, 1, 0x80])) { XCTAssertEqual($0 as? WireError, .invalidFlags(0x80)) }
        // 11-byte varint.
        XCTAssertThrowsError(try Message(bytes: [1, 1, 0] + [UInt8](repeating: 0xFF, count: 11))) {
            XCTAssertEqual($0 as? WireError, .varintOverflow)
        }
        // Entry count far larger than the input: rejected before allocating.
        var w: [UInt8] = [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
        w += [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]
        XCTAssertThrowsError(try Message(bytes: w)) {
            guard case .invalidLength = $0 as? WireError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try Entry(bytes: [1, 1, 7, 0])) { XCTAssertEqual($0 as? WireError, .invalidEntryType(7)) }
        XCTAssertThrowsError(try ConfChange(bytes: [5, 1, 0])) { XCTAssertEqual($0 as? WireError, .invalidConfChangeType(5)) }
    }

    func testRandomGarbageNeverCrashes() {
        var rng = SplitMix64(seed: 99)
        var decoded = 0
        for _ in 0..<20_000 {
            var bytes = randomBytes(&rng, max: 64)
            if rng.chance(0.5) && !bytes.isEmpty { bytes[0] = 1 } // valid version more often
            if bytes.count > 1 && rng.chance(0.5) { bytes[1] = UInt8(1 + rng.next(below: 14)) }
            if bytes.count > 2 && rng.chance(0.5) { bytes[2] = UInt8(rng.next(below: 4)) }
            if (try? Message(bytes: bytes)) != nil { decoded += 1 }
            _ = try? Entry(bytes: bytes)
            _ = try? ConfChange(bytes: bytes)
        }
        // Also flip bytes of valid encodings.
        for _ in 0..<2_000 {
            var bytes = randomMessage(&rng).serialize()
            let i = Int(rng.next(below: UInt64(bytes.count)))
            bytes[i] = UInt8(truncatingIfNeeded: rng.next())
            if let m = try? Message(bytes: bytes) { XCTAssertEqual(try? Message(bytes: m.serialize()), m) }
        }
        XCTAssertGreaterThanOrEqual(decoded, 0)
    }
}
