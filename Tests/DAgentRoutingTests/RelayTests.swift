import DAgentWire
import Foundation
import NIOCore
import XCTest
@testable import DAgentRouting

/// Relaying without actions (`NodeCore.receiveOrRelay`): a frame that only
/// passes through comes back to the driver, which copies it into the next
/// hop's writer; single envelopes to one destination join one batch there.
final class RelayTests: XCTestCase {
    func testRelaysReturnFramesAndSinglesJoinOneBatch() throws {
        let net = CoreNetwork.standardTree()
        net.relayInline = true
        let ep1 = net.cores["ep1"]!
        // Three single-envelope frames reach a1 in one burst: to ep2, to a1 itself, to ep2.
        for (dst, text) in [("ep2", "a"), ("a1", "b"), ("ep2", "c")] {
            var e = Dagent_Envelope()
            e.dst = dst
            e.payload = Data(text.utf8)
            try ep1.sendLocal(e, nowNs: net.nowNs)
        }
        let batchesBefore = net.batchesSent
        net.pump()
        XCTAssertEqual(net.texts("ep2"), ["a", "c"], "delivered in order")
        XCTAssertEqual(net.texts("a1"), ["b"])
        XCTAssertEqual(net.rawForwards + net.rawBatchForwards, 0, "no relay went through an action")
        XCTAssertEqual(net.inlineRelays, 4, "a1 relayed 2 singles, root and a2 one batch each")
        XCTAssertEqual(net.batchesSent - batchesBefore, 3, "a1 joined the two singles into one batch; root and a2 relayed it")
        XCTAssertEqual(net.inbox("ep2").map(\.hopLimit), [WireConstants.defaultHopLimit - 3, WireConstants.defaultHopLimit - 3])
        XCTAssertEqual(net.cores["root"]!.stats.routed, 2, "counters count messages, not frames")
    }

    func testPendingActionsKeepTheRelayBehindThem() throws {
        let net = CoreNetwork.standardTree()
        let a1 = net.cores["a1"]!
        let fromEp1 = net.peers["a1"]!.first { $0.value.node == "ep1" }!.key
        // An envelope frame from ep1 to ep2, as a1 would read it.
        var w = FrameWriter()
        var h = MessageHeader(dst: "ep2")
        h.src = "ep1"
        h.hopLimit = 10
        let payload = Data("late".utf8)
        payload.withUnsafeBytes { w.append(h, payload: $0) }
        var reader = FrameReader(maxFrameBytes: 1 << 20)
        reader.append(w.take(allocator: ByteBufferAllocator()))
        let body = try XCTUnwrap(try reader.next())

        var first = Dagent_Envelope()
        first.dst = "ep2"
        first.payload = Data("early".utf8)
        try a1.sendLocal(first, nowNs: net.nowNs)   // an action is now pending at a1
        XCTAssertNil(a1.receiveOrRelay(frameBody: body, from: fromEp1, nowNs: net.nowNs), "behind a pending action: no inline relay")
        guard case .forwardRaw(_, _, _, let hop)? = a1.actions.last else { return XCTFail("\(a1.actions)") }
        XCTAssertEqual(hop, 9, "the action carries the patched hop limit")
        net.pump()
        XCTAssertEqual(net.texts("ep2"), ["early", "late"])

        // With nothing pending the same frame comes back as a Relay to write.
        let relay = try XCTUnwrap(a1.receiveOrRelay(frameBody: body, from: fromEp1, nowNs: net.nowNs))
        XCTAssertEqual(relay.hop, Hop(link: a1.parentLink!))
        XCTAssertEqual(relay.hopLimit, 9)
        XCTAssertEqual(relay.count, 0)
        XCTAssertTrue(a1.actions.isEmpty)
    }

    func testMalformedFramesStillCloseTheLink() throws {
        let net = CoreNetwork.standardTree()
        let a1 = net.cores["a1"]!
        let fromEp1 = net.peers["a1"]!.first { $0.value.node == "ep1" }!.key
        var body = ByteBuffer()
        body.writeBytes([0x0A, 0x05, 0x12, 0x7F])   // an envelope whose dst runs past the end
        XCTAssertNil(a1.receiveOrRelay(frameBody: body, from: fromEp1, nowNs: net.nowNs))
        XCTAssertTrue(a1.actions.contains { if case .close = $0 { return true } else { return false } }, "\(a1.actions)")
    }
}

/// Encoding from a header and the caller's bytes.
final class MessageHeaderEncodingTests: XCTestCase {
    func testSameBytesAsTheEnvelopeEncoder() throws {
        var e = Dagent_Envelope()
        e.src = "src"
        e.dst = "dst-ü"
        e.type = 300
        e.kind = .error
        e.id = 1 << 40
        e.cookie = 77
        e.hopLimit = 16
        e.sendTimeNs = 123_456_789
        e.error = .tooLarge
        e.reason = "because"
        e.payload = Data((0..<200).map { UInt8($0 & 0xFF) })
        var a = ByteBuffer(), b = ByteBuffer()
        EnvelopeCodec.encode(e, into: &a)
        let h = MessageHeader(e)
        e.payload.withUnsafeBytes { p in
            EnvelopeCodec.encode(h, payload: p, size: EnvelopeCodec.size(of: h, payloadCount: p.count), into: &b)
        }
        XCTAssertEqual(a, b)
        XCTAssertEqual(try Dagent_Envelope(serializedBytes: Array(b.readableBytesView)), e, "what swift-protobuf reads back")
        XCTAssertEqual(e.payload.withUnsafeBytes { h.envelope(payload: $0) }, e)
    }

    func testHeaderAppendsBatchLikeEnvelopes() throws {
        var w1 = FrameWriter(), w2 = FrameWriter()
        for i in 0..<3 {
            var h = MessageHeader(dst: i == 2 ? "other" : "d")
            h.hopLimit = 8
            let payload = Data("p\(i)".utf8)
            payload.withUnsafeBytes { w1.append(h, payload: $0) }
            w2.append(h.envelope(payload: UnsafeRawBufferPointer(start: nil, count: 0)).with(payload: payload))
        }
        XCTAssertEqual(w1.take(allocator: ByteBufferAllocator()), w2.take(allocator: ByteBufferAllocator()))
    }

    func testRelayedSinglesJoinABatchWithTheHopLimitPatched() throws {
        var src = FrameWriter()
        for i in 0..<3 {
            var h = MessageHeader(dst: "d")
            h.src = "s"
            h.hopLimit = 8
            let payload = Data("r\(i)".utf8)
            payload.withUnsafeBytes { src.append(h, payload: $0) }
            src.closeBatch()   // three single-envelope frames
        }
        var reader = FrameReader(maxFrameBytes: 1 << 20)
        reader.append(src.take(allocator: ByteBufferAllocator()))
        var relay = FrameWriter()
        while let body = try reader.next() {
            guard case let .envelope(raw, header) = try InboundFrame.classify(body) else { return XCTFail() }
            relay.appendRelayed(raw, header: header, hopLimit: header.hopLimit - 1)
        }
        var out = relay.take(allocator: ByteBufferAllocator())
        let frame = try XCTUnwrap(try FrameCodec.decode(&out, maxFrameBytes: 1 << 20))
        XCTAssertEqual(frame.batch.dst, "d")
        XCTAssertEqual(frame.batch.hopLimit, 7)
        XCTAssertEqual(frame.batch.envelopes.map { String(decoding: $0.payload, as: UTF8.self) }, ["r0", "r1", "r2"])
        XCTAssertEqual(frame.batch.envelopes.map(\.hopLimit), [7, 7, 7])
        XCTAssertEqual(out.readableBytes, 0, "one frame")
    }

    /// A burst to one link is counted once it ends (`countOut`, `settleFramesOut`):
    /// the tree report still counts every frame on the link it left on, also when
    /// relays alternate between links and when the report comes mid-stream.
    func testFramesOutCountsEveryRelayedFrameOnItsLink() throws {
        let net = CoreNetwork.standardTree()
        net.relayInline = true
        let a1 = net.cores["a1"]!
        func framesOut() -> (up: UInt64, down: UInt64) {
            let links = a1.treeReply(requestID: 1).links
            return (links.first { $0.isParent }!.framesOut, links.first { !$0.isParent }!.framesOut)
        }
        let before = framesOut()
        for (from, to) in [("ep1", "ep2"), ("ep1", "ep2"), ("ep2", "ep1"), ("ep1", "ep2")] { try net.send(from, to: to) }
        let mid = framesOut()
        XCTAssertEqual(mid.up - before.up, 3, "three frames relayed up to root")
        XCTAssertEqual(mid.down - before.down, 1, "one relayed down to ep1")
        try net.send("ep2", to: "ep1")
        try net.send("ep2", to: "ep1")
        let after = framesOut()
        XCTAssertEqual(after.up - mid.up, 0)
        XCTAssertEqual(after.down - mid.down, 2)
        XCTAssertEqual(net.texts("ep2").count, 3)
        XCTAssertEqual(net.texts("ep1").count, 3)
    }
}

private extension Dagent_Envelope {
    func with(payload: Data) -> Dagent_Envelope {
        var e = self
        e.payload = payload
        return e
    }
}
