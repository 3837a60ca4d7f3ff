import DAgentWire
import NIOCore
import NIOEmbedded
import XCTest

/// The frame codec, pure and inside an `EmbeddedChannel`.
final class FrameCodecTests: XCTestCase {
    func envelope(_ text: String = "hello") -> Dagent_Envelope {
        var e = Dagent_Envelope()
        e.src = "a"
        e.dst = "b"
        e.type = 7
        e.payload = Data(text.utf8)
        e.id = 1
        e.cookie = 99
        e.kind = .request
        e.hopLimit = 32
        return e
    }

    func testHandWrittenEnvelopeFrameMatchesProtobuf() throws {
        for size in [0, 1, 100, 200, 20_000, 300_000] {
            var frame = Dagent_Frame()
            frame.envelope = envelope(String(repeating: "z", count: size))
            var a = ByteBufferAllocator().buffer(capacity: 0)
            var b = ByteBufferAllocator().buffer(capacity: 0)
            try FrameCodec.encode(frame, into: &a)
            try FrameCodec.encodeEnvelope(frame.envelope, into: &b)
            XCTAssertEqual(a, b, "size \(size)")
        }
    }

    func testRoundTripThroughEmbeddedChannel() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: 1 << 20)))
        try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(FrameEncoder()))
        var frame = Dagent_Frame()
        frame.envelope = envelope()
        try channel.writeOutbound(frame)
        var hb = Dagent_Frame()
        hb.heartbeat.seq = 3
        try channel.writeOutbound(hb)
        var wire = try channel.readOutbound(as: ByteBuffer.self)!
        if var second = try channel.readOutbound(as: ByteBuffer.self) { wire.writeBuffer(&second) }
        // Feed it back one byte at a time: frames split across reads must reassemble.
        while wire.readableBytes > 0 {
            try channel.writeInbound(wire.readSlice(length: 1)!)
        }
        XCTAssertEqual(try channel.readInbound(as: Dagent_Frame.self), frame)
        XCTAssertEqual(try channel.readInbound(as: Dagent_Frame.self), hb)
        XCTAssertNil(try channel.readInbound(as: Dagent_Frame.self))
        XCTAssertTrue(try channel.finish().isClean)
    }

    func testFrameOverLimitIsRefusedBeforeReadingIt() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: 100)))
        var buffer = ByteBufferAllocator().buffer(capacity: 8)
        buffer.writeInteger(UInt32(5_000_000))
        XCTAssertThrowsError(try channel.writeInbound(buffer)) { error in
            XCTAssertEqual(error as? FrameError, .frameTooLarge(length: 5_000_000, limit: 100))
            XCTAssertTrue("\(error)".contains("max_frame_bytes=100"))
        }
    }

    /// A plaintext end reading a TLS peer's alert (15 03 03 00 ...) is told that the peer speaks TLS.
    func testATLSRecordTakenForALengthSaysThePeerSpeaksTLS() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: 4_259_840)))
        var buffer = ByteBufferAllocator().buffer(capacity: 8)
        buffer.writeBytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x74])
        XCTAssertThrowsError(try channel.writeInbound(buffer)) { error in
            XCTAssertEqual(error as? FrameError, .frameTooLarge(length: 0x1503_0300, limit: 4_259_840))
            XCTAssertTrue("\(error)".contains("max_frame_bytes=4259840") && "\(error)".contains("the peer speaks TLS"), "\(error)")
        }
        XCTAssertFalse(FrameError.frameTooLarge(length: 5_000_000, limit: 100).description.contains("TLS"))
    }

    func testMalformedFrameIsReported() throws {
        var buffer = ByteBufferAllocator().buffer(capacity: 8)
        buffer.writeInteger(UInt32(4))
        buffer.writeBytes([0xFF, 0xFF, 0xFF, 0xFF])
        XCTAssertThrowsError(try FrameCodec.decode(&buffer, maxFrameBytes: 100)) { error in
            guard case .malformed(let length, _)? = error as? FrameError else { return XCTFail("\(error)") }
            XCTAssertEqual(length, 4)
        }
    }

    func testTruncatedFrameWaitsForMoreBytes() throws {
        var frame = Dagent_Frame()
        frame.envelope = envelope()
        var buffer = ByteBufferAllocator().buffer(capacity: 0)
        try FrameCodec.encode(frame, into: &buffer)
        var cut = buffer.getSlice(at: 0, length: buffer.readableBytes - 3)!
        XCTAssertNil(try FrameCodec.decode(&cut, maxFrameBytes: 1000))
        XCTAssertEqual(cut.readerIndex, 0, "nothing consumed")
        var lengthOnly = buffer.getSlice(at: 0, length: 2)!
        XCTAssertNil(try FrameCodec.decode(&lengthOnly, maxFrameBytes: 1000))
    }

    func testEmptyFrameBodyIsRejected() throws {
        var buffer = ByteBufferAllocator().buffer(capacity: 4)
        buffer.writeInteger(UInt32(0))
        XCTAssertThrowsError(try FrameCodec.decode(&buffer, maxFrameBytes: 100)) { error in
            XCTAssertEqual(error as? FrameError, .emptyBody)
        }
    }

    func testUnknownFieldsFromNewerPeersAreTolerated() throws {
        var frame = Dagent_Frame()
        frame.envelope = envelope()
        var bytes: [UInt8] = try frame.serializedBytes()
        bytes += [0xF8, 0x07, 0x01]   // field 127, varint 1: unknown to this version
        var buffer = ByteBufferAllocator().buffer(capacity: 0)
        buffer.writeInteger(UInt32(bytes.count))
        buffer.writeBytes(bytes)
        XCTAssertEqual(try FrameCodec.decode(&buffer, maxFrameBytes: 1000)?.envelope.dst, "b")
    }
}

import Foundation

/// The hand-written envelope codec against swift-protobuf, both ways.
final class EnvelopeCodecTests: XCTestCase {
    func sample(_ i: Int) -> Dagent_Envelope {
        var e = Dagent_Envelope()
        if i % 2 == 0 { e.src = "source-\(i)-ünïcode" }
        e.dst = String(repeating: "d", count: i % 40 + 1)
        if i % 3 != 0 { e.type = UInt32(i * 977) }
        if i % 5 != 0 { e.payload = Data((0..<(i * 37 % 3000)).map { UInt8(truncatingIfNeeded: $0) }) }
        if i % 4 != 0 { e.id = UInt64(i) << UInt64(i % 60) }
        if i % 6 != 0 { e.cookie = UInt64.max - UInt64(i) }
        e.kind = [.data, .request, .response, .error, .UNRECOGNIZED(7)][i % 5]
        if i % 7 != 0 { e.hopLimit = UInt32(i % 255) }
        if i % 2 == 1 { e.sendTimeNs = 1_700_000_000_000_000_000 + UInt64(i) }
        if i % 5 == 3 { e.error = .noRoute; e.reason = "reason \(i)" }
        return e
    }

    func testEncodingIsIdenticalToSwiftProtobuf() throws {
        for i in 0..<300 {
            let e = sample(i)
            var ours = ByteBufferAllocator().buffer(capacity: 0)
            EnvelopeCodec.encode(e, into: &ours)
            let theirs: [UInt8] = try e.serializedBytes()
            XCTAssertEqual(ours.readableBytesView.map { $0 }, theirs, "sample \(i)")
            XCTAssertEqual(EnvelopeCodec.size(of: e), theirs.count)
        }
    }

    func testDecodingMatchesSwiftProtobuf() throws {
        for i in 0..<300 {
            let e = sample(i)
            let bytes: [UInt8] = try e.serializedBytes()
            let buffer = ByteBuffer(bytes: bytes)
            XCTAssertEqual(try EnvelopeCodec.decode(buffer), e, "sample \(i)")
            let h = try EnvelopeCodec.header(buffer)
            XCTAssertEqual(h.dst, e.dst)
            XCTAssertEqual(h.kind, e.kind.rawValue)
            XCTAssertEqual(h.hopLimit, e.hopLimit)
        }
    }

    func testRelayPatchesOnlyTheHopLimit() throws {
        var e = sample(11)
        e.hopLimit = 9
        var raw = ByteBufferAllocator().buffer(capacity: 0)
        EnvelopeCodec.encode(e, into: &raw)
        let h = try EnvelopeCodec.header(raw)
        var frame = ByteBufferAllocator().buffer(capacity: 0)
        EnvelopeCodec.encodeFrame(raw: raw, hopLimitOffset: h.hopLimitOffset, hopLimit: 8, into: &frame)
        let decoded = try FrameCodec.decode(&frame, maxFrameBytes: 1 << 20)!
        var expected = e
        expected.hopLimit = 8
        XCTAssertEqual(decoded.envelope, expected)
    }

    func testFieldOrderUnknownFieldsAndRepeats() throws {
        // dst twice (last wins), an unknown varint field 99, hop limit before dst.
        var b = ByteBufferAllocator().buffer(capacity: 0)
        b.writeBytes([0x45, 5, 0, 0, 0])            // hop_limit = 5
        b.writeBytes([0x12, 1, UInt8(ascii: "x")])  // dst = "x"
        b.writeBytes([0x98, 0x06, 0x01])            // field 99, varint 1
        b.writeBytes([0x12, 1, UInt8(ascii: "y")])  // dst = "y"
        let e = try EnvelopeCodec.decode(b)
        XCTAssertEqual(e.dst, "y")
        XCTAssertEqual(e.hopLimit, 5)
        XCTAssertEqual(try EnvelopeCodec.header(b).dst, "y")
    }

    func testMalformedEnvelopesThrow() {
        let cases: [[UInt8]] = [
            [0x12, 10, 0x61],                 // length past the end
            [0x45, 1, 2],                     // truncated fixed32
            [0x28, 0xFF],                     // truncated varint
            [0x12, 2, 0xC3, 0x28],            // invalid UTF-8
            [0x0F],                           // wire type 7
            [0x28] + [UInt8](repeating: 0xFF, count: 11),   // varint too long
        ]
        for bytes in cases {
            XCTAssertThrowsError(try EnvelopeCodec.decode(ByteBuffer(bytes: bytes)), "\(bytes)")
            XCTAssertThrowsError(try EnvelopeCodec.header(ByteBuffer(bytes: bytes)), "\(bytes)")
        }
    }

    func testFrameReaderSplitsAndClassifies() throws {
        var stream = ByteBufferAllocator().buffer(capacity: 0)
        EnvelopeCodec.encodeFrame(sample(2), into: &stream)
        var hb = Dagent_Frame()
        hb.heartbeat.seq = 1
        try FrameCodec.encode(hb, into: &stream)
        var reader = FrameReader(maxFrameBytes: 1 << 20)
        var bodies: [ByteBuffer] = []
        while let byte = stream.readSlice(length: 1) {   // one byte at a time
            reader.append(byte)
            while let body = try reader.next() { bodies.append(body) }
        }
        XCTAssertEqual(bodies.count, 2)
        guard case .envelope(_, let header) = try InboundFrame.classify(bodies[0]) else { return XCTFail() }
        XCTAssertEqual(header.dst, sample(2).dst)
        XCTAssertEqual(try InboundFrame.classify(bodies[1]), .control(hb))
        var big = ByteBufferAllocator().buffer(capacity: 4)
        big.writeInteger(UInt32(1 << 21))
        reader.append(big)
        XCTAssertThrowsError(try reader.next())
    }

    /// Frames split across reads at every possible point come out whole and in order, and the
    /// bodies taken before a split keep their bytes (the carried frame is copied, not the read).
    func testFrameReaderCarriesFramesAcrossReads() throws {
        var stream = ByteBufferAllocator().buffer(capacity: 0)
        var payloads: [[UInt8]] = []
        for n in [1, 300, 7, 4096, 2, 65, 1000] {
            let p = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ n) }
            payloads.append(p)
            stream.writeInteger(UInt32(n))
            stream.writeBytes(p)
        }
        let all = Array(stream.readableBytesView)
        for first in stride(from: 1, to: all.count, by: 37) {
            for second in [1, 3, 500, 5000] where first + second < all.count {
                var reader = FrameReader(maxFrameBytes: 1 << 20)
                var bodies: [ByteBuffer] = []
                for cut in [0..<first, first..<(first + second), (first + second)..<all.count] {
                    reader.append(ByteBuffer(bytes: all[cut]))
                    while let body = try reader.next() { bodies.append(body) }
                }
                XCTAssertEqual(bodies.map { Array($0.readableBytesView) }, payloads, "cuts at \(first), \(first + second)")
                XCTAssertEqual(reader.pendingBytes, 0)
            }
        }
        // Appends without taking the frames in between keep every byte too.
        var reader = FrameReader(maxFrameBytes: 1 << 20)
        for chunk in stride(from: 0, to: all.count, by: 999) {
            reader.append(ByteBuffer(bytes: all[chunk..<min(chunk + 999, all.count)]))
        }
        var bodies: [[UInt8]] = []
        while let body = try reader.next() { bodies.append(Array(body.readableBytesView)) }
        XCTAssertEqual(bodies, payloads)
    }

    /// A frame over the limit is refused even when its length prefix is split across reads.
    func testFrameReaderRefusesLargeFrameSplitInItsPrefix() {
        var reader = FrameReader(maxFrameBytes: 1000)
        var head = ByteBufferAllocator().buffer(capacity: 4)
        head.writeInteger(UInt32(5000))
        reader.append(head.getSlice(at: 0, length: 2)!)
        XCTAssertNil(try reader.next())
        reader.append(head.getSlice(at: 2, length: 2)!)
        XCTAssertThrowsError(try reader.next())
    }
}
