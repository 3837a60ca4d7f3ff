import DAgentWire
import Foundation
import NIOCore
import XCTest

/// Inputs the fuzzer (`scripts/fuzz`, docs/testing.md#fuzzing) found to break a codec, replayed
/// through the same checks the fuzz target makes. Each failed before its fix.
final class FuzzRegressionTests: XCTestCase {
    func buffer(_ bytes: [UInt8]) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeBytes(bytes)
        return b
    }

    /// Every envelope of a link's byte stream, batches opened.
    func envelopes(in stream: ByteBuffer) throws -> [Dagent_Envelope] {
        var reader = FrameReader(maxFrameBytes: 1 << 20)
        reader.append(stream)
        var out: [Dagent_Envelope] = []
        while let body = try reader.next() {
            switch try InboundFrame.classify(body) {
            case .envelope(let raw, _): out.append(try EnvelopeCodec.decode(raw))
            case .batch(let raw, _, _): out += try BatchCodec.envelopes(raw).map { try EnvelopeCodec.decode($0) }
            case .control(let f): XCTFail("unexpected control frame \(f)")
            }
        }
        return out
    }

    /// fuzz target `batch`: a batch header with a negative (unrecognized) kind. Re-batching its
    /// envelopes trapped in `BatchCodec.headerSize` (`UInt64(kind)` of a negative Int).
    func testBatchWithNegativeKindRebatches() throws {
        // dst "d", hop limit 1, kind = -1 (10-byte varint), two empty envelopes.
        let input: [UInt8] = [0x12, 0x01, 0x64, 0x1D, 0x01, 0x00, 0x00, 0x00, 0xA0, 0x06]
            + [UInt8](repeating: 0xFF, count: 9) + [0x01, 0x0A, 0x00, 0x0A, 0x00]
        let (header, count) = try BatchCodec.header(buffer(input))
        XCTAssertEqual(header.kind, -1)
        XCTAssertEqual(count, 2)
        let wanted = try BatchCodec.envelopes(buffer(input)).map { raw -> Dagent_Envelope in
            var e = try EnvelopeCodec.decode(raw)
            e.dst = header.dst; e.hopLimit = header.hopLimit; e.kind = Dagent_Kind(rawValue: header.kind)!
            return e
        }
        var writer = FrameWriter()
        for e in wanted { writer.append(e) }
        let stream = writer.take(allocator: ByteBufferAllocator())
        XCTAssertEqual(try envelopes(in: stream), wanted)
        // The batch frame carries the kind as protobuf does (sign-extended, 10 bytes).
        var reader = FrameReader(maxFrameBytes: 1 << 20)
        reader.append(stream)
        guard case .batch(let raw, let h, 2)? = try reader.next().map({ try InboundFrame.classify($0) }) else {
            return XCTFail("two envelopes of one destination are not one batch")
        }
        XCTAssertEqual(h.kind, -1)
        XCTAssertEqual(try Dagent_Batch(serializedBytes: Array(raw.readableBytesView)).kind, .UNRECOGNIZED(-1))
    }

    /// fuzz target `envelope`: `pick_queues` (field 101) true, then again false. Protobuf keeps
    /// the last value (false), but `EnvelopeCodec.header` kept the first and reported queue picks
    /// for an envelope that has none.
    func testALaterPickQueuesFalseOverridesAnEarlierTrue() throws {
        // dst "d", pick_queues = 1, pick_queues = 0.
        let input: [UInt8] = [0x12, 0x01, 0x64, 0xA8, 0x06, 0x01, 0xA8, 0x06, 0x00]
        let e = try EnvelopeCodec.decode(buffer(input))
        XCTAssertFalse(e.pickQueues)
        XCTAssertTrue(e.queues.isEmpty)
        XCTAssertFalse(try EnvelopeCodec.header(buffer(input)).hasQueuePicks)
        // And the other way round: the later true wins.
        let flipped: [UInt8] = [0x12, 0x01, 0x64, 0xA8, 0x06, 0x00, 0xA8, 0x06, 0x01]
        XCTAssertTrue(try EnvelopeCodec.header(buffer(flipped)).hasQueuePicks)
    }
}
