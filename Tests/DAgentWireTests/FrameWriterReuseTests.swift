import Foundation
import DAgentWire
import NIOCore
import XCTest

/// `FrameWriter.bytesForWrite` / `clearAfterWrite`: a link that flushes after
/// every message reuses one buffer, and never changes bytes already handed over.
final class FrameWriterReuseTests: XCTestCase {
    func message(_ text: String, dst: String = "t") -> (MessageHeader, [UInt8]) {
        var h = MessageHeader(dst: dst, kind: .publish)
        h.src = "p"
        h.hopLimit = 16
        return (h, Array(text.utf8))
    }

    func append(_ w: inout FrameWriter, _ text: String, dst: String = "t") {
        let (h, p) = message(text, dst: dst)
        p.withUnsafeBytes { w.append(h, payload: $0) }
    }

    /// The frames `bytes` holds, decoded back to payload texts.
    func texts(_ bytes: ByteBuffer) throws -> [String] {
        var reader = FrameReader(maxFrameBytes: 1 << 20)
        reader.append(bytes)
        var out: [String] = []
        while let body = try reader.next() {
            switch try InboundFrame.classify(body) {
            case let .envelope(raw, _):
                var cache = EnvelopeCodec.StringCache()
                let m = try EnvelopeCodec.decodeMessage(raw, cache: &cache)
                out.append(String(buffer: m.payload))
            case let .batch(raw, _, _):
                var cache = EnvelopeCodec.StringCache()
                for slice in try BatchCodec.envelopes(raw) {
                    out.append(String(buffer: try EnvelopeCodec.decodeMessage(slice, cache: &cache).payload))
                }
            case .control:
                XCTFail("a control frame")
            }
        }
        return out
    }

    func testStorageIsReusedOnceTheWriteLetGoOfIt() throws {
        var w = FrameWriter()
        append(&w, "one")
        var bytes: ByteBuffer? = w.bytesForWrite()
        let size = bytes!.readableBytes
        XCTAssertEqual(try texts(bytes!), ["one"])
        let before = bytes!.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        bytes = nil   // the socket took every byte
        w.clearAfterWrite(handedOver: size, allocator: ByteBufferAllocator())
        XCTAssertTrue(w.isEmpty)
        append(&w, "two")
        let again = w.bytesForWrite()
        XCTAssertEqual(try texts(again), ["two"])
        XCTAssertEqual(again.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }, before,
                       "the same storage: no buffer allocated for the second flush")
    }

    func testBytesStillHeldByTheWriteAreNeverOverwritten() throws {
        var w = FrameWriter()
        append(&w, "one")
        let held = w.bytesForWrite()   // the socket took only part: the channel keeps these bytes
        w.clearAfterWrite(handedOver: held.readableBytes, allocator: ByteBufferAllocator())
        append(&w, "two")
        append(&w, "three", dst: "u")
        XCTAssertEqual(try texts(held), ["one"], "the bytes handed over are unchanged")
        XCTAssertEqual(try texts(w.bytesForWrite()), ["two", "three"])
    }

    func testBytesAppendedDuringTheWriteStay() throws {
        var w = FrameWriter()
        append(&w, "one")
        let handed = w.bytesForWrite()
        append(&w, "late", dst: "u")   // appended by a callback of the write, before the clear (an open batch)
        w.clearAfterWrite(handedOver: handed.readableBytes, allocator: ByteBufferAllocator())
        XCTAssertFalse(w.isEmpty)
        XCTAssertEqual(try texts(w.bytesForWrite()), ["late"])
    }

    func testAWriterGrownPastOneMebibyteStartsSmallAgain() throws {
        var w = FrameWriter()
        let big = String(repeating: "x", count: 200_000)
        for i in 0..<8 { append(&w, big, dst: "t\(i)") }
        var bytes: ByteBuffer? = w.bytesForWrite()
        let size = bytes!.readableBytes
        XCTAssertGreaterThan(size, 1 << 20)
        bytes = nil
        w.clearAfterWrite(handedOver: size, allocator: ByteBufferAllocator())
        append(&w, "small")
        let next = w.bytesForWrite()
        XCTAssertLessThanOrEqual(next.capacity, 1 << 20)
        XCTAssertEqual(try texts(next), ["small"])
    }
    /// A frame of one message written alone (direct writes) is byte for byte the frame a
    /// writer makes for that message, and the one the envelope codec makes for it.
    func testAFrameOfOneMessageEncodedAloneIsTheWritersFrame() {
        for (text, cookie) in [("", UInt64(0)), ("x", 7), (String(repeating: "y", count: 300), 1 << 40)] {
            var (h, p) = message(text)
            h.kind = .request
            h.cookie = cookie
            h.id = 42
            var w = FrameWriter()
            p.withUnsafeBytes { w.append(h, payload: $0) }
            var alone = ByteBuffer()
            p.withUnsafeBytes { EnvelopeCodec.encodeFrame(h, payload: $0, into: &alone) }
            XCTAssertEqual(alone, w.bytesForWrite())
            var e = Dagent_Envelope()
            e.src = h.src
            e.dst = h.dst
            e.kind = h.kind
            e.cookie = h.cookie
            e.id = h.id
            e.hopLimit = h.hopLimit
            e.payload = Data(p)
            var viaEnvelope = ByteBuffer()
            EnvelopeCodec.encodeFrame(e, into: &viaEnvelope)
            XCTAssertEqual(alone, viaEnvelope)
        }
    }
}
