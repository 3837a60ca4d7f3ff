import DAgentWire
import Foundation
import NIOCore
import XCTest
@testable import DAgentRouting

/// Local delivery: messages go into the core's inbox, parsed once, in order,
/// and the driver takes them in batches.
final class DeliveryTests: XCTestCase {
    func testABurstArrivesAsOneBatchInOrder() throws {
        let net = CoreNetwork.standardTree()
        let before = net.deliveryBatches
        for i in 0..<50 {
            var e = Dagent_Envelope()
            e.dst = "ep2"
            e.payload = Data("m\(i)".utf8)
            try net.cores["ep1"]!.sendLocal(e, nowNs: net.nowNs)
        }
        net.pump()
        XCTAssertEqual(net.texts("ep2"), (0..<50).map { "m\($0)" })
        XCTAssertEqual(net.deliveryBatches - before, 1, "one batch frame, one inbox batch")
        XCTAssertTrue(net.cores["ep2"]!.actions.isEmpty)
    }

    func testFastAndFullPathsKeepTheOrder() throws {
        let net = CoreNetwork.standardTree()
        for i in 0..<20 {
            var e = Dagent_Envelope()
            e.dst = "ep2"
            e.payload = Data("m\(i)".utf8)
            if i % 3 == 0 { e.cookie = UInt64(100 + i) }   // wants a receipt (the fast path too)
            if i % 5 == 0 { e.kind = .error; e.error = .refused }   // an ERROR: the full path
            try net.cores["ep1"]!.sendLocal(e, nowNs: net.nowNs)
        }
        net.pump()
        XCTAssertEqual(net.inbox("ep2").map { String(decoding: $0.payload, as: UTF8.self) }, (0..<20).map { "m\($0)" })
        let receipts = net.inbox("ep1").filter { $0.kind == .response }.map(\.cookie)
        let confirmed: [Int] = (0..<20).filter { (i: Int) -> Bool in i % 3 == 0 && i % 5 != 0 }   // DATA with a cookie (not the ERRORs)
        XCTAssertEqual(receipts, confirmed.map { (i: Int) -> UInt64 in UInt64(100 + i) })
    }

    func testAConfirmedSendTakesTheFastPathAndIsStillAcknowledged() throws {
        let net = CoreNetwork.standardTree()
        let (_, link) = net.rawLink(to: "a1")
        var reg = Dagent_Frame()
        reg.register.name = "peer"
        reg.register.protocolVersion = WireConstants.protocolVersion
        net.cores["a1"]!.receive(frameBody: ByteBuffer(bytes: try reg.serializedBytes() as [UInt8]), from: link, nowNs: net.nowNs)
        net.pump()
        net.rawOut.removeAll()
        var f = Dagent_Frame()
        f.envelope.src = "peer"
        f.envelope.dst = "a1"
        f.envelope.type = 5
        f.envelope.kind = .data
        f.envelope.cookie = 77
        f.envelope.hopLimit = 8
        f.envelope.payload = Data("confirmed".utf8)
        let body = ByteBuffer(bytes: try f.serializedBytes() as [UInt8])
        let a1 = net.cores["a1"]!
        XCTAssertNil(a1.receiveOrRelay(frameBody: body, from: link, nowNs: net.nowNs))
        XCTAssertEqual(a1.inbox.count, 1)
        let m = try XCTUnwrap(a1.inbox.first)
        XCTAssertEqual(m.cookie, 77)
        XCTAssertEqual(String(decoding: m.payload.readableBytesView, as: UTF8.self), "confirmed")
        body.withUnsafeReadableBytes { frame in
            m.payload.withUnsafeReadableBytes { payload in
                let start = frame.baseAddress!, p = payload.baseAddress!
                XCTAssertTrue(p >= start && p < start + frame.count, "decoded once, the payload a slice of the frame (no Dagent_Envelope)")
            }
        }
        net.pump()   // the test's driver accepts it: the receipt goes back
        let receipts = net.rawOut.filter { $0.envelope.kind == .response }
        XCTAssertEqual(receipts.map(\.envelope.cookie), [77])
        XCTAssertEqual(receipts.map(\.envelope.dst), ["peer"])
    }

    func testThePayloadIsASliceOfTheFrame() throws {
        var e = Dagent_Envelope()
        e.src = "a"
        e.dst = "b"
        e.type = 7
        e.kind = .request
        e.cookie = 9
        e.payload = Data("payload bytes".utf8)
        var raw = ByteBuffer()
        EnvelopeCodec.encode(e, into: &raw)
        var cache = EnvelopeCodec.StringCache()
        let m = try EnvelopeCodec.decodeMessage(raw, cache: &cache)
        XCTAssertEqual(m.envelope, e)
        raw.withUnsafeReadableBytes { frame in
            m.payload.withUnsafeReadableBytes { payload in
                let start = frame.baseAddress!, p = payload.baseAddress!
                XCTAssertTrue(p >= start && p < start + frame.count, "the payload points into the frame: no copy")
            }
        }
    }

    func testMalformedBytesAreRefusedByTheFastDecoder() {
        var cache = EnvelopeCodec.StringCache()
        for bad: [UInt8] in [[0x22, 0x40, 1, 2], [0x12, 0xFF], [0x0F]] {
            XCTAssertThrowsError(try EnvelopeCodec.decodeMessage(ByteBuffer(bytes: bad), cache: &cache))
        }
    }
}
