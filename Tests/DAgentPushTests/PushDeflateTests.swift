@testable import DAgentPushGateway
import NIOCore
import NIOEmbedded
import NIOWebSocket
import XCTest

/// permessage-deflate: the negotiation (RFC 7692 §7.1) and the inbound handler on an EmbeddedChannel.
final class PushDeflateTests: XCTestCase {
    func testNegotiationTakesTheFirstAcceptableOffer() {
        XCTAssertNil(PushDeflateParams.negotiate([]))
        XCTAssertNil(PushDeflateParams.negotiate(["x-webkit-deflate-frame"]))
        XCTAssertEqual(PushDeflateParams.negotiate(["permessage-deflate; client_max_window_bits"])?.header,
                       "permessage-deflate; server_no_context_takeover")
        let p = PushDeflateParams.negotiate(["permessage-deflate; server_max_window_bits=10; client_no_context_takeover"])
        XCTAssertEqual(p?.serverMaxWindowBits, 10)
        XCTAssertEqual(p?.header, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10")
        // Declined offers: an 8-bit window, an unknown or repeated parameter, a value where none belongs.
        for bad in ["permessage-deflate; server_max_window_bits=8", "permessage-deflate; server_max_window_bits=16",
                    "permessage-deflate; server_max_window_bits", "permessage-deflate; x=1",
                    "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
                    "permessage-deflate; server_no_context_takeover=1", "permessage-deflate; client_max_window_bits=07"] {
            XCTAssertNil(PushDeflateParams.negotiate([bad]), bad)
        }
        // The next offer (in the same header or another one) is taken.
        XCTAssertEqual(PushDeflateParams.negotiate(["permessage-deflate; server_max_window_bits=8, permessage-deflate"])?.windowBitsOffered, false)
        XCTAssertEqual(PushDeflateParams.negotiate(["foo", "permessage-deflate; server_max_window_bits=\"12\""])?.serverMaxWindowBits, 12)
    }

    /// Raw deflate, sync-flushed, without the 00 00 FF FF tail (the gateway's own compressor).
    func deflate(_ text: String) -> [UInt8] {
        let out = PushDeflater().compress(ByteBuffer(string: text), windowBits: 15, allocator: ByteBufferAllocator())
        return out.map { Array($0.readableBytesView) } ?? []
    }

    func testInflatesFragmentedMessagesAndStopsABomb() throws {
        let ch = EmbeddedChannel(handler: PushInflateHandler(params: PushDeflateParams(), maxBytes: 10_000))
        let text = String(repeating: "{\"op\":\"sub\",\"topic\":\"a.b\"}", count: 20)
        let z = deflate(text)
        let half = z.count / 2
        try ch.writeInbound(WebSocketFrame(fin: false, rsv1: true, opcode: .text, data: ByteBuffer(bytes: z[..<half])))
        try ch.writeInbound(WebSocketFrame(fin: true, opcode: .continuation, data: ByteBuffer(bytes: z[half...])))
        var got = ""
        while let f: WebSocketFrame = try ch.readInbound() {
            XCTAssertFalse(f.rsv1)
            got += String(buffer: f.unmaskedData)
        }
        XCTAssertEqual(got, text)
        // Uncompressed messages still pass, and a ping.
        try ch.writeInbound(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: "plain")))
        XCTAssertEqual((try ch.readInbound() as WebSocketFrame?).map { String(buffer: $0.unmaskedData) }, "plain")
        // 1 MB of spaces in a few KB: stopped at max_frame_bytes.
        let bomb = deflate("{" + String(repeating: " ", count: 1 << 20) + "}")
        XCTAssertLessThan(bomb.count, 8192)
        XCTAssertThrowsError(try ch.writeInbound(WebSocketFrame(fin: true, rsv1: true, opcode: .text, data: ByteBuffer(bytes: bomb)))) { e in
            XCTAssertEqual("\(e)", "a compressed message inflates past max_frame_bytes=10000")
        }
    }

    func testReservedBitsWithoutTheExtensionAndCorruptData() throws {
        let plain = EmbeddedChannel(handler: PushInflateHandler(params: nil, maxBytes: 1000))
        XCTAssertThrowsError(try plain.writeInbound(WebSocketFrame(fin: true, rsv1: true, opcode: .text, data: ByteBuffer(string: "x")))) { e in
            XCTAssertTrue("\(e)".contains("not negotiated"), "\(e)")
        }
        let ch = EmbeddedChannel(handler: PushInflateHandler(params: PushDeflateParams(), maxBytes: 1000))
        XCTAssertThrowsError(try ch.writeInbound(WebSocketFrame(fin: true, rsv1: true, opcode: .ping, data: ByteBuffer()))) { e in
            XCTAssertTrue("\(e)".contains("control frame"), "\(e)")
        }
        let junk = EmbeddedChannel(handler: PushInflateHandler(params: PushDeflateParams(), maxBytes: 1000))
        XCTAssertThrowsError(try junk.writeInbound(WebSocketFrame(fin: true, rsv1: true, opcode: .text, data: ByteBuffer(bytes: [0xFF, 0xFF, 1, 2])))) { e in
            XCTAssertTrue("\(e)".contains("does not inflate"), "\(e)")
        }
    }

    func testCompressesOnceForTheSameBuffer() throws {
        let d = PushDeflater()
        let frame = ByteBuffer(string: String(repeating: "metric 1.0\n", count: 200))
        let a = try XCTUnwrap(d.compress(frame, windowBits: 15, allocator: ByteBufferAllocator()))
        let b = try XCTUnwrap(d.compress(frame, windowBits: 15, allocator: ByteBufferAllocator()))
        XCTAssertEqual(d.messages, 1, "the same buffer again: the cached bytes")
        XCTAssertEqual(a, b)
        XCTAssertLessThan(a.readableBytes, frame.readableBytes / 10)
        // Inflates on its own (no context takeover).
        let ch = EmbeddedChannel(handler: PushInflateHandler(params: PushDeflateParams(), maxBytes: 100_000))
        try ch.writeInbound(WebSocketFrame(fin: true, rsv1: true, opcode: .text, data: a))
        XCTAssertEqual((try ch.readInbound() as WebSocketFrame?)?.unmaskedData, frame)
        _ = d.compress(ByteBuffer(string: String(repeating: "other ", count: 100)), windowBits: 15, allocator: ByteBufferAllocator())
        XCTAssertEqual(d.messages, 2)
    }
}
