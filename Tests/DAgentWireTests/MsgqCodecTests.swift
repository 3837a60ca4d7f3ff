import Foundation
import DAgentWire
import NIOCore
import XCTest

/// The message-queue framing: batching whole frames into messages of at most
/// msgmax, fragmenting larger ones, and reassembling them per sender.
final class MsgqCodecTests: XCTestCase {
    let allocator = ByteBufferAllocator()

    /// A length-prefixed frame stream, as `FrameWriter.take` produces it.
    func stream(_ bodies: [[UInt8]]) -> ByteBuffer {
        var b = allocator.buffer(capacity: 64)
        for body in bodies {
            b.writeInteger(UInt32(body.count))
            b.writeBytes(body)
        }
        return b
    }

    func body(_ n: Int, seed: UInt8) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: Int(seed) &+ $0 &* 7) } }

    /// The text handed to msgsnd (after the mtype slot).
    func text(_ m: MsgqOutMessage) -> ByteBuffer {
        m.bytes.getSlice(at: m.bytes.readerIndex + MsgqWire.mtypeBytes, length: m.textSize)!
    }

    func decodeAll(_ messages: [MsgqOutMessage], into r: inout MsgqReassembler, mtype: Int = 42) -> [MsgqInbound] {
        messages.compactMap { r.receive(text($0), mtype: mtype, senderIsMtype: false) }
    }

    func testSmallFramesShareOneMessage() {
        let packer = MsgqPacker(maxText: 8192)
        let bodies = (0..<50).map { body(100, seed: UInt8($0)) }
        var out: [MsgqOutMessage] = []
        packer.pack(stream(bodies), sender: 7, incarnation: 3, into: &out)
        XCTAssertEqual(out.count, 1, "50 × 104 bytes fit in one 8192-byte message")
        XCTAssertEqual(out[0].frames, 50)
        XCTAssertEqual(out[0].textSize, MsgqWire.headerBytes + 50 * 104)
        var r = MsgqReassembler(maxFrameBytes: 1 << 20)
        let got = decodeAll(out, into: &r)
        guard case let .frames(sender, incarnation, decoded)? = got.first else { return XCTFail("\(got)") }
        XCTAssertEqual(sender, 7)
        XCTAssertEqual(incarnation, 3)
        XCTAssertEqual(decoded.map { Array($0.readableBytesView) }, bodies)
    }

    func testBatchesSplitAtMsgmaxAndNeverExceedIt() {
        let packer = MsgqPacker(maxText: 1024)
        let bodies = (0..<40).map { body(100 + $0 * 3, seed: UInt8($0)) }
        var out: [MsgqOutMessage] = []
        packer.pack(stream(bodies), sender: 9, incarnation: 1, into: &out)
        XCTAssertGreaterThan(out.count, 1)
        for m in out { XCTAssertLessThanOrEqual(m.textSize, 1024) }
        XCTAssertEqual(out.reduce(0) { $0 + $1.frames }, 40)
        var r = MsgqReassembler(maxFrameBytes: 1 << 20)
        let decoded = decodeAll(out, into: &r).flatMap { inbound -> [[UInt8]] in
            guard case let .frames(_, _, b) = inbound else { XCTFail("\(inbound)"); return [] }
            return b.map { Array($0.readableBytesView) }
        }
        XCTAssertEqual(decoded, bodies, "frames arrive whole and in order")
    }

    func testOneMebibyteFrameFragmentsAndReassembles() {
        let packer = MsgqPacker(maxText: 8192)
        let big = body(1 << 20, seed: 5)
        let small = body(10, seed: 1)
        var out: [MsgqOutMessage] = []
        packer.pack(stream([small, big, small]), sender: 11, incarnation: 2, into: &out)
        let chunk = 8192 - MsgqWire.fragmentHeaderBytes
        XCTAssertEqual(out.count, 2 + (big.count + chunk - 1) / chunk, "small frame, fragments, small frame")
        for m in out { XCTAssertLessThanOrEqual(m.textSize, 8192) }
        XCTAssertNotNil(out[out.count - 2].fragmentedFrame, "the last fragment carries the whole frame for error reports")
        XCTAssertNil(out[1].fragmentedFrame)
        XCTAssertEqual(out[out.count - 2].frameBodies().map { Array($0.readableBytesView) }, [big])
        var r = MsgqReassembler(maxFrameBytes: 2 << 20)
        let got = decodeAll(out, into: &r)
        XCTAssertEqual(got.count, 3)
        let decoded = got.flatMap { inbound -> [[UInt8]] in
            guard case let .frames(_, _, b) = inbound else { return [] }
            return b.map { Array($0.readableBytesView) }
        }
        XCTAssertEqual(decoded, [small, big, small])
        XCTAssertEqual(r.partialCount, 0)
    }

    func testInterleavedSendersReassembleSeparately() {
        let packer = MsgqPacker(maxText: 512)
        let a = body(3000, seed: 1), b = body(2000, seed: 2)
        var outA: [MsgqOutMessage] = [], outB: [MsgqOutMessage] = []
        packer.pack(stream([a]), sender: 100, incarnation: 1, into: &outA)
        packer.pack(stream([b]), sender: 200, incarnation: 1, into: &outB)
        var mixed: [MsgqOutMessage] = []
        for i in 0..<max(outA.count, outB.count) {
            if i < outA.count { mixed.append(outA[i]) }
            if i < outB.count { mixed.append(outB[i]) }
        }
        var r = MsgqReassembler(maxFrameBytes: 1 << 20)
        var bySender: [UInt64: [UInt8]] = [:]
        for inbound in decodeAll(mixed, into: &r) {
            guard case let .frames(sender, _, bodies) = inbound else { return XCTFail("\(inbound)") }
            bySender[sender] = Array(bodies[0].readableBytesView)
        }
        XCTAssertEqual(bySender[100], a)
        XCTAssertEqual(bySender[200], b)
    }

    func testGarbageIsReportedWithAReason() {
        var r = MsgqReassembler(maxFrameBytes: 1000)
        func garbage(_ bytes: [UInt8], mtype: Int = 5, senderIsMtype: Bool = false) -> String? {
            var b = allocator.buffer(capacity: bytes.count)
            b.writeBytes(bytes)
            if case let .garbage(_, _, reason)? = r.receive(b, mtype: mtype, senderIsMtype: senderIsMtype) { return reason }
            return nil
        }
        XCTAssertTrue(garbage([1, 2, 3])?.contains("shorter than the 16-byte dagent header") == true)
        XCTAssertTrue(garbage([UInt8](repeating: 0x41, count: 40))?.contains("bad magic 0x4141") == true)
        func header(kind: UInt8, sender: UInt64 = 5, version: UInt8 = 1) -> [UInt8] {
            var h: [UInt8] = [0xDA, 0x51, version, kind, 1, 0, 0, 0]
            withUnsafeBytes(of: sender.littleEndian) { h += $0 }
            return h
        }
        XCTAssertTrue(garbage(header(kind: 1, version: 9))?.contains("version 9 not supported") == true)
        XCTAssertTrue(garbage(header(kind: 77))?.contains("unknown message kind 77") == true)
        XCTAssertTrue(garbage(header(kind: 1) + [0, 0, 0, 50, 1, 2])?.contains("runs past the end") == true)
        XCTAssertTrue(garbage(header(kind: 1) + [0, 0, 0x10, 0, 1])?.contains("exceeds max_frame_bytes=1000") == true)
        XCTAssertTrue(garbage(header(kind: 1) + [0, 0, 0, 0])?.contains("empty frame") == true)
        XCTAssertTrue(garbage(header(kind: 1, sender: 6), mtype: 5, senderIsMtype: true)?.contains("names sender channel 6 but the message type is 5") == true)
        // A fragment out of sequence (offset 100 with nothing in progress).
        var frag = header(kind: 2)
        withUnsafeBytes(of: UInt32(500).littleEndian) { frag += $0 }
        withUnsafeBytes(of: UInt32(100).littleEndian) { frag += $0 }
        frag += [1, 2, 3]
        XCTAssertTrue(garbage(frag)?.contains("out of sequence") == true)
        var huge = header(kind: 2)
        withUnsafeBytes(of: UInt32(5000).littleEndian) { huge += $0 }
        withUnsafeBytes(of: UInt32(0).littleEndian) { huge += $0 }
        huge += [1]
        XCTAssertTrue(garbage(huge)?.contains("exceeds max_frame_bytes=1000") == true)
    }

    func testRestartedFrameAbandonsThePartialOne() {
        let packer = MsgqPacker(maxText: 256)
        let first = body(1000, seed: 1), second = body(900, seed: 2)
        var a: [MsgqOutMessage] = [], b: [MsgqOutMessage] = []
        packer.pack(stream([first]), sender: 3, incarnation: 1, into: &a)
        packer.pack(stream([second]), sender: 3, incarnation: 1, into: &b)
        var r = MsgqReassembler(maxFrameBytes: 1 << 20)
        XCTAssertTrue(decodeAll(Array(a.prefix(2)), into: &r).isEmpty)   // the sender gave up half way
        let got = decodeAll(b, into: &r)
        guard case let .frames(_, _, bodies)? = got.first else { return XCTFail("\(got)") }
        XCTAssertEqual(Array(bodies[0].readableBytesView), second)
        XCTAssertEqual(r.abandoned, 1)
    }

    func testByeAndWakeControlMessages() {
        var r = MsgqReassembler(maxFrameBytes: 100)
        let bye = MsgqWire.control(.bye, sender: 77, incarnation: 9)
        XCTAssertEqual(r.receive(text(bye), mtype: 77, senderIsMtype: true), .bye(sender: 77, incarnation: 9))
        let wake = MsgqWire.control(.wake, sender: 78, incarnation: 1)
        XCTAssertEqual(r.receive(text(wake), mtype: 78, senderIsMtype: false), .wake(sender: 78, incarnation: 1))
    }

    func testRandomChannelsArePositiveMessageTypes() {
        let channels = (0..<1000).map { _ in MsgqWire.randomChannel() }
        XCTAssertTrue(channels.allSatisfy { $0 >= 2 && $0 < 1 << 62 })
        XCTAssertGreaterThan(Set(channels).count, 990)
    }

    /// The writer keeps every batch under the limit it is given, so a batch of
    /// small messages always fits one queue message.
    func testFrameWriterBatchesFitOneQueueMessage() {
        let packer = MsgqPacker(maxText: 8192)
        var writer = FrameWriter(maxBatchBytes: packer.maxBatchBytes)
        for i in 0..<2000 {
            var e = Dagent_Envelope()
            e.src = "bench-a"
            e.dst = "bench-b"
            e.type = 2
            e.id = UInt64(i)
            e.payload = Data(repeating: 0x61, count: 64)
            e.hopLimit = 32
            writer.append(e)
        }
        var out: [MsgqOutMessage] = []
        packer.pack(writer.take(allocator: allocator), sender: 2, incarnation: 1, into: &out)
        XCTAssertTrue(out.allSatisfy { $0.frames >= 1 && $0.textSize <= 8192 }, "no batch was fragmented")
        XCTAssertLessThan(out.count, 40, "2000 × ~100-byte envelopes in about 8 KB messages")
        XCTAssertEqual(out.flatMap { $0.frameBodies() }.reduce(0) { n, body in
            guard case let .batch(_, _, count)? = try? InboundFrame.classify(body) else { return n }
            return n + count
        }, 2000)
    }
}
