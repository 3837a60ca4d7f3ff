import DAgentWire
import NIOCore
import XCTest

/// Batches: built by the sender, relayed unopened, opened at the destination.
final class BatchingTests: XCTestCase {
    func testBurstToOneDestinationTravelsAsOneBatchRelayedUnopened() throws {
        let net = CoreNetwork.standardTree()
        let core = net.cores["ep1"]!
        for i in 0..<100 {
            var e = Dagent_Envelope()
            e.dst = "ep2"
            e.type = 3
            e.payload = Data("m\(i)".utf8)
            try core.sendLocal(e, nowNs: net.nowNs)   // one burst: no pump in between
        }
        net.pump()
        XCTAssertEqual(net.texts("ep2"), (0..<100).map { "m\($0)" }, "all delivered, in order")
        XCTAssertEqual(net.rawBatchForwards, 3, "a1, root, a2 each relayed one batch without opening it")
        XCTAssertEqual(net.cores["root"]!.stats.routed, 100, "counters count messages, not frames")
        XCTAssertEqual(net.inbox("ep2").map(\.hopLimit), Array(repeating: WireConstants.defaultHopLimit - 3, count: 100))
    }

    func testBatchToUnknownNameFailsEachMessage() throws {
        let net = CoreNetwork.standardTree()
        for i in 0..<5 {
            var e = Dagent_Envelope()
            e.dst = "nobody"
            e.kind = .request
            e.cookie = UInt64(100 + i)
            try net.cores["ep1"]!.sendLocal(e, nowNs: net.nowNs)
        }
        net.pump()
        XCTAssertEqual(net.errors("ep1").map(\.cookie), [100, 101, 102, 103, 104], "one no-route error per message, in order")
        XCTAssertTrue(net.errors("ep1").allSatisfy { $0.error == .noRoute })
    }

    func testInterleavedDestinationsKeepOrderPerDestination() throws {
        let net = CoreNetwork.standardTree()
        for i in 0..<20 {
            var e = Dagent_Envelope()
            e.dst = i % 3 == 0 ? "a2" : "ep2"
            e.payload = Data("\(i)".utf8)
            try net.cores["ep1"]!.sendLocal(e, nowNs: net.nowNs)
        }
        net.pump()
        XCTAssertEqual(net.texts("ep2"), (0..<20).filter { $0 % 3 != 0 }.map(String.init))
        XCTAssertEqual(net.texts("a2"), (0..<20).filter { $0 % 3 == 0 }.map(String.init))
    }
}

/// The writer on its own.
final class FrameWriterTests: XCTestCase {
    func env(_ dst: String, _ text: String, hop: UInt32 = 9) -> Dagent_Envelope {
        var e = Dagent_Envelope()
        e.src = "s"
        e.dst = dst
        e.hopLimit = hop
        e.payload = Data(text.utf8)
        return e
    }

    func frames(_ w: inout FrameWriter) throws -> [InboundFrame] {
        var reader = FrameReader(maxFrameBytes: 1 << 24)
        reader.append(w.take(allocator: ByteBufferAllocator()))
        var out: [InboundFrame] = []
        while let body = try reader.next() { out.append(try InboundFrame.classify(body)) }
        return out
    }

    func testGroupsConsecutiveSameDestination() throws {
        var w = FrameWriter()
        w.append(env("a", "1"))
        w.append(env("a", "2"))
        w.append(env("b", "3"))
        w.append(env("a", "4"))
        w.append(env("a", "5", hop: 4))   // different hop limit: not the same batch
        var hb = Dagent_Frame()
        hb.heartbeat.seq = 1
        try w.append(hb)
        let f = try frames(&w)
        XCTAssertEqual(f.count, 5)
        guard case let .batch(raw, header, count) = f[0] else { return XCTFail("\(f[0])") }
        XCTAssertEqual(header.dst, "a")
        XCTAssertEqual(header.hopLimit, 9)
        XCTAssertEqual(count, 2)
        XCTAssertEqual(try BatchCodec.envelopes(raw).map { try EnvelopeCodec.decode($0) }, [env("a", "1"), env("a", "2")])
        guard case .envelope(_, let h1) = f[1], case .envelope(_, let h2) = f[2], case .envelope(_, let h3) = f[3] else { return XCTFail() }
        XCTAssertEqual([h1.dst, h2.dst, h3.dst], ["b", "a", "a"], "a batch of one is a plain envelope")
        XCTAssertEqual(f[4], .control(hb))
    }

    func testBatchFrameIsValidProtobuf() throws {
        var w = FrameWriter()
        for i in 0..<3 { w.append(env("dest", "x\(i)")) }
        var bytes = w.take(allocator: ByteBufferAllocator())
        let frame = try FrameCodec.decode(&bytes, maxFrameBytes: 1 << 20)!
        XCTAssertEqual(frame.batch.dst, "dest")
        XCTAssertEqual(frame.batch.hopLimit, 9)
        XCTAssertEqual(frame.batch.envelopes, (0..<3).map { env("dest", "x\($0)") })
    }

    func testBatchLimits() throws {
        var w = FrameWriter(maxBatchCount: 3, maxBatchBytes: 1 << 20)
        for i in 0..<7 { w.append(env("a", "\(i)")) }
        let counts = try frames(&w).map { f -> Int in
            if case let .batch(_, _, n) = f { return n }
            return 1
        }
        XCTAssertEqual(counts, [3, 3, 1])
    }
}

import Foundation
@testable import DAgentRouting

/// `sendFast`: the driver encodes a message from its header and the caller's
/// bytes itself only when nothing the core emitted earlier is still pending,
/// so order is kept; otherwise `sendStamped` takes the full path.
final class SendFastTests: XCTestCase {
    func testReturnsTheLinkWhenNothingIsPending() throws {
        let net = CoreNetwork.standardTree()
        let core = net.cores["ep1"]!
        XCTAssertTrue(core.actions.isEmpty)
        var h = MessageHeader(dst: "ep2")
        let hop = try core.sendFast(&h, payloadCount: 4)
        XCTAssertEqual(hop, Hop(link: core.parentLink!), "up to a1, written by the driver")
        XCTAssertEqual(h.src, "ep1", "stamped: source, id, hop limit")
        XCTAssertEqual(h.hopLimit, WireConstants.defaultHopLimit)
        XCTAssertNotEqual(h.id, 0)
        XCTAssertTrue(core.actions.isEmpty, "no action built")
    }

    func testFallsBackBehindPendingActionsAndKeepsOrder() throws {
        let net = CoreNetwork.standardTree()
        let core = net.cores["ep1"]!
        var first = Dagent_Envelope()
        first.dst = "ep2"
        first.payload = Data("first".utf8)
        try core.sendLocal(first, nowNs: net.nowNs)
        XCTAssertEqual(core.actions.count, 1)
        var h = MessageHeader(dst: "ep2")
        let second = Data("second".utf8)
        XCTAssertNil(try core.sendFast(&h, payloadCount: second.count), "an action is pending: go through the queue")
        try second.withUnsafeBytes { p in try core.sendStamped(h.envelope(payload: p), nowNs: net.nowNs) }
        XCTAssertEqual(core.actions.count, 2)
        net.pump()
        XCTAssertEqual(net.texts("ep2"), ["first", "second"])
    }

    func testErrorsAndQueueingAreUnchanged() throws {
        let net = CoreNetwork.standardTree()
        let core = net.cores["ep1"]!
        var bad = MessageHeader(dst: "")
        XCTAssertThrowsError(try core.sendFast(&bad, payloadCount: 1))
        var big = MessageHeader(dst: "ep2")
        XCTAssertThrowsError(try core.sendFast(&big, payloadCount: core.config.maxMessageBytes + 1)) { error in
            XCTAssertTrue("\(error)".contains("max_message_bytes=\(core.config.maxMessageBytes)"), "\(error)")
        }
        net.cut("ep1", core.parentLink!)
        var queued = MessageHeader(dst: "ep2")
        XCTAssertNil(try core.sendFast(&queued, payloadCount: 5), "no route up: not written by the driver")
        try core.sendStamped(queued.envelope(payload: UnsafeRawBufferPointer(start: nil, count: 0)), nowNs: net.nowNs)
        XCTAssertEqual(core.stats.queued, 1)
    }
}
