import DAgentWire
import Foundation
import NIOCore
import XCTest

/// `FrameWriter` forwarding large relayed frames as slices (`forwardThreshold`):
/// the stream is byte for byte the one the copying writer makes, the slices
/// are the relayed bytes themselves (no copy), and a reader cutting the stream
/// anywhere (TLS records, socket reads) gets the same frames in the same order.
final class FrameWriterForwardTests: XCTestCase {
    /// Frames as they arrive at a relay: raw batches and raw envelopes (their routing
    /// headers parsed), small and large, for two destinations.
    func arrivals() throws -> [InboundFrame] {
        var upstream = FrameWriter(maxBatchBytes: 64 * 1024)
        var stream = ByteBufferAllocator().buffer(capacity: 0)
        for (i, (count, size)) in [(1, 10), (40, 1024), (3, 20), (1, 9000), (200, 700), (2, 5000), (1, 3)].enumerated() {
            for j in 0..<count {
                var e = Dagent_Envelope()
                e.src = "a"
                e.dst = i % 2 == 0 ? "far.b" : "far.c"
                e.type = UInt32(i * 1000 + j)
                e.hopLimit = 30
                e.payload = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i &+ j) })
                upstream.append(e)
            }
            var bytes = upstream.take(allocator: ByteBufferAllocator())
            stream.writeBuffer(&bytes)
        }
        var reader = FrameReader(maxFrameBytes: 1 << 24)
        reader.append(stream)
        var frames: [InboundFrame] = []
        while let body = try reader.next() { frames.append(try InboundFrame.classify(body)) }
        XCTAssertTrue(frames.contains { if case .batch(let raw, _, _) = $0 { return raw.readableBytes > 64 * 1000 } else { return false } })
        XCTAssertTrue(frames.contains { if case .envelope(let raw, _) = $0 { return raw.readableBytes > 5000 } else { return false } })
        return frames
    }

    /// Relays `frames` (hop limit - 1) into `w`, with a control frame and a locally sent
    /// message between them so that forwarded slices sit between copied bytes.
    func relay(_ frames: [InboundFrame], into w: inout FrameWriter) throws {
        for (i, f) in frames.enumerated() {
            switch f {
            case .batch(let raw, let h, _): w.appendRawBatch(raw, hopLimitOffset: h.hopLimitOffset, hopLimit: h.hopLimit - 1)
            case .envelope(let raw, let h): w.appendRaw(raw, hopLimitOffset: h.hopLimitOffset, hopLimit: h.hopLimit - 1)
            case .control: XCTFail("no control frames upstream")
            }
            if i % 3 == 1 {
                var hb = Dagent_Frame()
                hb.heartbeat.seq = UInt64(i)
                try w.append(hb)
            }
            if i % 4 == 2 {
                var e = Dagent_Envelope()
                e.dst = "near"
                e.payload = Data("local \(i)".utf8)
                w.append(e)
            }
        }
    }

    func testForwardedStreamIsTheCopiedStreamWithoutCopyingTheSlices() throws {
        let frames = try arrivals()
        var copying = FrameWriter()
        try relay(frames, into: &copying)
        let expected = Array(copying.take(allocator: ByteBufferAllocator()).readableBytesView)

        var forwarding = FrameWriter(forwardThreshold: 4096)
        try relay(frames, into: &forwarding)
        var parts: [ByteBuffer] = []
        forwarding.take(allocator: ByteBufferAllocator()) { parts.append($0) }
        XCTAssertTrue(forwarding.isEmpty)
        XCTAssertEqual(forwarding.bufferedBytes, 0)
        XCTAssertEqual(parts.flatMap { Array($0.readableBytesView) }, expected, "the same bytes on the wire")
        XCTAssertFalse(parts.contains { $0.readableBytes == 0 })

        // Every relayed frame of 4096 bytes or more has a part that points into the bytes it
        // arrived in (a batch's entries after its hop limit, an envelope's bytes before it);
        // the smaller ones were copied.
        func address(_ b: ByteBuffer) -> UInt { b.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } }
        let partAddresses = Set(parts.map(address))
        var forwarded = 0
        for f in frames {
            let (raw, offset): (ByteBuffer, Int)
            switch f {
            case .batch(let r, let h, _): (raw, offset) = (r, h.hopLimitOffset)
            case .envelope(let r, let h): (raw, offset) = (r, h.hopLimitOffset)
            case .control: continue
            }
            let head = address(raw), tail = address(raw) + UInt(offset + 4)
            XCTAssertEqual(partAddresses.contains(head) || partAddresses.contains(tail), raw.readableBytes >= 4096,
                           "a \(raw.readableBytes)-byte frame")
            if raw.readableBytes >= 4096 { forwarded += 1 }
        }
        XCTAssertGreaterThanOrEqual(forwarded, 3)

        // Taken as one buffer (a transport without segments), the same bytes again.
        var joined = FrameWriter(forwardThreshold: 4096)
        try relay(frames, into: &joined)
        XCTAssertEqual(Array(joined.take(allocator: ByteBufferAllocator()).readableBytesView), expected)
    }

    /// The parts cut into 16 KiB TLS-record-sized pieces, and at odd places, read back as the
    /// same frames in order, each with its hop limit patched and its payload intact.
    func testFramesKeepOrderAndBoundariesAcrossRecordCuts() throws {
        let frames = try arrivals()
        var w = FrameWriter(forwardThreshold: 4096)
        try relay(frames, into: &w)
        var parts: [ByteBuffer] = []
        w.take(allocator: ByteBufferAllocator()) { parts.append($0) }
        let bytes = parts.flatMap { Array($0.readableBytesView) }

        var reference = FrameReader(maxFrameBytes: 1 << 24)
        reference.append(ByteBuffer(bytes: bytes))
        var expected: [[UInt8]] = []
        while let body = try reference.next() { expected.append(Array(body.readableBytesView)) }
        let extras = (0..<frames.count).filter { $0 % 3 == 1 }.count + (0..<frames.count).filter { $0 % 4 == 2 }.count
        XCTAssertEqual(expected.count, frames.count + extras)

        for cuts in [[16384], [16384, 1, 16383], [1, 4099, 77, 65536], parts.map(\.readableBytes)] {
            var reader = FrameReader(maxFrameBytes: 1 << 24)
            var got: [[UInt8]] = []
            var at = 0, k = 0
            while at < bytes.count {
                let n = min(cuts[k % cuts.count], bytes.count - at)
                reader.append(ByteBuffer(bytes: bytes[at..<(at + n)]))
                while let body = try reader.next() { got.append(Array(body.readableBytesView)) }
                at += n
                k += 1
            }
            XCTAssertEqual(got, expected, "cut every \(cuts)")
        }

        // The relayed frames decode to what arrived, with the hop limit one lower.
        var i = 0
        for body in expected {
            guard i < frames.count else { break }
            switch try InboundFrame.classify(ByteBuffer(bytes: body)) {
            case .control: continue
            case .envelope(let raw, let h):
                if h.dst == "near" { continue }
                guard case .envelope(let original, let o) = frames[i] else { return XCTFail("frame \(i) out of order") }
                XCTAssertEqual(h.hopLimit, o.hopLimit - 1)
                var e = try EnvelopeCodec.decode(raw)
                e.hopLimit += 1
                XCTAssertEqual(e, try EnvelopeCodec.decode(original))
            case .batch(let raw, let h, let count):
                guard case .batch(let original, let o, let n) = frames[i] else { return XCTFail("frame \(i) out of order") }
                XCTAssertEqual(h.hopLimit, o.hopLimit - 1)
                XCTAssertEqual(count, n)
                XCTAssertEqual(try BatchCodec.envelopes(raw).map { Array($0.readableBytesView) },
                               try BatchCodec.envelopes(original).map { Array($0.readableBytesView) })
            }
            i += 1
        }
        XCTAssertEqual(i, frames.count)
    }
}
