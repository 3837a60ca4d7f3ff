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
