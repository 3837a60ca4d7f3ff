import DAgentWire
import Foundation
import NIOCore
import XCTest
@testable import DAgentRouting

/// Publications on the fast path: `publishFast` at the publisher, and
/// `receiveOrRelay` putting a PUBLISH frame's copies into `relays` and its
/// local deliveries into `publications`, with no `CoreAction` and no
/// `Dagent_Envelope`. The same scenarios run on the action path must give
/// the same deliveries, frames and counters.
final class PubSubFastPathTests: XCTestCase {
    // MARK: frames as a neighbour writes them

    /// One PUBLISH envelope frame body, as `FrameWriter` writes it.
    func publishFrame(src: String, topic: String, _ payloads: [String], hopLimit: UInt32) throws -> ByteBuffer {
        var w = FrameWriter()
        for (i, text) in payloads.enumerated() {
            var h = MessageHeader(dst: topic, kind: .publish)
            h.src = src
            h.id = UInt64(i + 1)
            h.hopLimit = hopLimit
            Array(text.utf8).withUnsafeBytes { w.append(h, payload: $0) }
        }
        var reader = FrameReader(maxFrameBytes: 1 << 20)
        reader.append(w.take(allocator: ByteBufferAllocator()))
        let body = try XCTUnwrap(try reader.next())
        XCTAssertNil(try reader.next(), "one frame")
        return body
    }

    /// A frame body holding one envelope given as bytes.
    func envelopeFrame(_ envelope: [UInt8]) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(UInt8(0x0A))
        var n = UInt64(envelope.count)
        while n >= 0x80 { b.writeInteger(UInt8(n & 0x7F | 0x80)); n >>= 7 }
        b.writeInteger(UInt8(n))
        b.writeBytes(envelope)
        return b
    }

    /// A PUBLISH on `t` whose routing header is fine but whose src is not UTF-8:
    /// only a full decode finds it.
    var badSourcePublish: [UInt8] {
        [0x0A, 0x02, 0xFF, 0xFE,        // src: not UTF-8
         0x12, 0x01, UInt8(ascii: "t"), // dst "t"
         0x22, 0x01, UInt8(ascii: "p"), // payload
         0x38, 0x14,                    // kind PUBLISH (20)
         0x45, 0x0A, 0x00, 0x00, 0x00]  // hop limit 10
    }

    func link(_ core: NodeCore, to peer: String) -> LinkID {
        core.linkIDs.first { core.links[$0]!.peerName == peer }!
    }

    // MARK: relaying

    func testRelayedPublicationTakesNoActionAndFansOut() throws {
        let net = CoreNetwork.standardTree()
        net.relayInline = true
        net.add("ep3", role: .leaf, hasParent: true)
        net.connect("ep3", to: "a2")
        _ = try net.subscribe("ep2", "x.*")
        _ = try net.subscribe("ep3", "x.>")
        let a2 = net.cores["a2"]!
        let body = try publishFrame(src: "ep1", topic: "x.1", ["p"], hopLimit: 10)
        XCTAssertNil(a2.receiveOrRelay(frameBody: body, from: a2.parentLink!, nowNs: net.nowNs))
        XCTAssertTrue(a2.actions.isEmpty, "\(a2.actions)")
        XCTAssertTrue(a2.publications.isEmpty, "a2 has no subscription of its own")
        XCTAssertEqual(a2.relays.map(\.hop.link).sorted(), [link(a2, to: "ep2"), link(a2, to: "ep3")].sorted())
        XCTAssertEqual(a2.relays.map(\.hopLimit), [9, 9])
        XCTAssertEqual(a2.relays.map(\.count), [0, 0])
        XCTAssertEqual(a2.pubsubCounters.forwarded, 2)
        var spare: [Relay] = []
        a2.takeRelays(swappingWith: &spare)
        XCTAssertEqual(spare.count, 2)
        XCTAssertTrue(a2.relays.isEmpty)

        // End to end: written at ep1 from header and payload, relayed by a1, root and a2, no action anywhere.
        net.publishFrames = [:]
        try net.publish("ep1", "x.1", "m1")
        XCTAssertEqual(net.received("ep2"), ["m1"])
        XCTAssertEqual(net.received("ep3"), ["m1"])
        XCTAssertEqual(net.fastPublishWrites, 1)
        XCTAssertEqual(net.inlinePublishRelays, 4, "a1 -> root, root -> a2, a2 -> ep2 and ep3")
        XCTAssertEqual(net.fastPublications, 2)
        XCTAssertEqual(net.publishActions + net.rawForwards + net.rawBatchForwards, 0, "no action carried the publish")
        XCTAssertEqual(net.publishFrames, ["ep1->a1": 1, "a1->root": 1, "root->a2": 1, "a2->ep2": 1, "a2->ep3": 1])
        XCTAssertEqual(net.published["ep2"]?.first?.envelope.hopLimit, WireConstants.defaultHopLimit - 4)

        // Nobody wants it: it stops at the publisher, which knows; nothing to write.
        net.publishFrames = [:]
        try net.publish("ep1", "y.1")
        XCTAssertEqual(net.publishFrames, [:])
        XCTAssertEqual(net.cores["ep1"]!.pubsubCounters.unwanted, 1)
    }

    func testPendingActionsKeepThePublicationBehindThem() throws {
        let net = CoreNetwork.standardTree()
        net.relayInline = true
        _ = try net.subscribe("ep2", "t")
        let a1 = net.cores["a1"]!
        var first = Dagent_Envelope()
        first.dst = "ep2"
        first.payload = Data("early".utf8)
        try a1.sendLocal(first, nowNs: net.nowNs)   // an action is now pending at a1
        let body = try publishFrame(src: "ep1", topic: "t", ["late"], hopLimit: 10)
        XCTAssertNil(a1.receiveOrRelay(frameBody: body, from: link(a1, to: "ep1"), nowNs: net.nowNs))
        XCTAssertTrue(a1.relays.isEmpty, "behind a pending action the publish goes through an action too")
        guard case .forwardRaw(_, _, _, let hop)? = a1.actions.last else { return XCTFail("\(a1.actions)") }
        XCTAssertEqual(hop, 9)
        net.pump()
        XCTAssertEqual(net.texts("ep2"), ["early"])
        XCTAssertEqual(net.received("ep2"), ["late"])
    }

    func testPublishWithQueuePicksStaysOnTheSlowPath() throws {
        let net = CoreNetwork.standardTree()
        net.relayInline = true
        net.add("ep3", role: .leaf, hasParent: true)
        net.connect("ep3", to: "a2")
        for leaf in ["ep2", "ep3"] { _ = try net.subscribe(leaf, "jobs.*", queue: "w") }
        for i in 0..<10 { try net.publish("ep1", "jobs.x", "j\(i)") }
        let got = ["ep2", "ep3"].map { net.received($0).count }
        XCTAssertEqual(got, [5, 5], "one member each time, round robin")
        XCTAssertEqual(net.fastPublishWrites, 0, "the publisher picks: a group matched")
        XCTAssertGreaterThan(net.publishActions, 0)
    }

    // MARK: local delivery

    func testPublicationForThisNodeIsADataMessageWithoutAnAction() throws {
        let net = CoreNetwork.standardTree()
        net.relayInline = true
        let a = try net.subscribe("ep2", "orders.>")
        let b = try net.subscribe("ep2", "orders.*.created")
        let ep2 = net.cores["ep2"]!
        let single = try publishFrame(src: "ep1", topic: "orders.eu.created", ["o1"], hopLimit: 7)
        XCTAssertNil(ep2.receiveOrRelay(frameBody: single, from: ep2.parentLink!, nowNs: net.nowNs))
        XCTAssertTrue(ep2.actions.isEmpty, "\(ep2.actions)")
        XCTAssertTrue(ep2.relays.isEmpty)
        let p = try XCTUnwrap(ep2.publications.first)
        XCTAssertEqual(ep2.publications.count, 1)
        XCTAssertEqual(p.subscriptions.sorted(), [a, b].sorted())
        XCTAssertEqual(p.message.dst, "orders.eu.created")
        XCTAssertEqual(p.message.src, "ep1")
        XCTAssertEqual(p.message.kind, .publish)
        XCTAssertEqual(p.message.hopLimit, 6)
        XCTAssertEqual(String(buffer: p.message.payload), "o1")
        XCTAssertEqual(ep2.pubsubCounters.delivered, 2, "one per subscription")

        // A batch of three: three publications, in order, still no action.
        let batch = try publishFrame(src: "ep1", topic: "orders.eu.created", ["b1", "b2", "b3"], hopLimit: 7)
        guard case .batch(_, _, 3)? = try? InboundFrame.classify(batch) else { return XCTFail("not a batch of 3") }
        var taken: [Publication] = []
        ep2.takePublications(swappingWith: &taken)
        XCTAssertNil(ep2.receiveOrRelay(frameBody: batch, from: ep2.parentLink!, nowNs: net.nowNs))
        XCTAssertTrue(ep2.actions.isEmpty, "\(ep2.actions)")
        XCTAssertEqual(ep2.publications.map { String(buffer: $0.message.payload) }, ["b1", "b2", "b3"])
        XCTAssertEqual(ep2.publications.map(\.message.hopLimit), [6, 6, 6])
        XCTAssertEqual(ep2.pubsubCounters.delivered, 8)
    }

    // MARK: bad input

    /// The malformed publish is fed after a good one, on the fast path or the
    /// action path: the close reason, and what was delivered.
    func feedMalformed(inline: Bool, _ bad: ByteBuffer) throws -> (close: [String], delivered: [String]) {
        let net = CoreNetwork.standardTree()
        _ = try net.subscribe("ep2", "t")
        let ep2 = net.cores["ep2"]!
        let up = ep2.parentLink!
        let good = try publishFrame(src: "ep1", topic: "t", ["before"], hopLimit: 10)
        for body in [good, bad] {
            if inline { _ = ep2.receiveOrRelay(frameBody: body, from: up, nowNs: net.nowNs) } else { ep2.receive(frameBody: body, from: up, nowNs: net.nowNs) }
        }
        var delivered = ep2.publications.map { String(buffer: $0.message.payload) }
        var closes: [String] = []
        for action in ep2.actions {
            switch action {
            case let .deliverPublish(e, _): delivered.append(String(decoding: e.payload, as: UTF8.self))
            case let .close(_, reason): closes.append(reason)
            default: break
            }
        }
        return (closes, delivered)
    }

    func testMalformedPublishGetsTheSameErrorAndLosesNothingElse() throws {
        let single = envelopeFrame(badSourcePublish)
        XCTAssertNoThrow(try InboundFrame.classify(single), "the routing header parses: only the full decode fails")
        let fast = try feedMalformed(inline: true, single)
        let slow = try feedMalformed(inline: false, single)
        XCTAssertEqual(fast.close, slow.close, "the same error as the action path")
        XCTAssertEqual(fast.close.count, 1)
        XCTAssertTrue(fast.close[0].contains("not valid UTF-8"), fast.close[0])
        XCTAssertEqual(fast.delivered, ["before"], "the publication before it is still delivered")
        XCTAssertEqual(slow.delivered, ["before"])

        // Inside a batch: the good envelopes before the bad one are delivered, as before.
        let good = try publishFrame(src: "ep1", topic: "t", ["b1", "b2"], hopLimit: 10)
        guard case .batch(let raw, _, 2)? = try? InboundFrame.classify(good) else { return XCTFail("not a batch") }
        var bytes = raw   // the batch's fields, then a third entry (field 1) holding the bad envelope
        bytes.writeBytes([0x0A, UInt8(badSourcePublish.count)] + badSourcePublish)
        var body = ByteBuffer()
        body.writeInteger(UInt8(0x5A))   // Frame.batch
        body.writeInteger(UInt8(bytes.readableBytes))
        body.writeBuffer(&bytes)
        guard case .batch(_, _, 3)? = try? InboundFrame.classify(body) else { return XCTFail("not a batch of 3") }
        let fastBatch = try feedMalformed(inline: true, body)
        let slowBatch = try feedMalformed(inline: false, body)
        XCTAssertEqual(fastBatch.close, slowBatch.close)
        XCTAssertEqual(fastBatch.close.count, 1)
        XCTAssertEqual(fastBatch.delivered, ["before", "b1", "b2"])
        XCTAssertEqual(slowBatch.delivered, ["before", "b1", "b2"])
    }

    func testSlowLinkDropsAreCountedOnTheFastPath() throws {
        let net = CoreNetwork.standardTree()
        net.relayInline = true
        _ = try net.subscribe("ep2", "t")
        let a2 = net.cores["a2"]!
        a2.setCongestionCheck { _ in true }
        try net.publish("ep1", "t")
        XCTAssertEqual(net.received("ep2"), [])
        XCTAssertEqual(a2.pubsubCounters.droppedSlow, 1)
        XCTAssertEqual(a2.treeReply(requestID: 1).links.map(\.publishDrops).reduce(0, +), 1)
        let ep1 = net.cores["ep1"]!
        ep1.setCongestionCheck { _ in true }   // at the publisher: publishFast names no link
        try net.publish("ep1", "t")
        XCTAssertEqual(ep1.pubsubCounters.droppedSlow, 1)
        ep1.setCongestionCheck(nil)
        a2.setCongestionCheck(nil)
        try net.publish("ep1", "t", "after")
        XCTAssertEqual(net.received("ep2"), ["after"])
        XCTAssertEqual(net.publishActions, 0)
    }

    // MARK: the same outcome as the action path

    /// What a scenario left: deliveries per node (payload and subscription
    /// ids, in order), publish envelopes per link, counters per node.
    struct Outcome: Equatable {
        var delivered: [String: [String]]
        var frames: [String: Int]
        var counters: [String: PubSubCounters]
    }

    func outcome(inline: Bool, _ scenario: (CoreNetwork) throws -> Void) throws -> (Outcome, CoreNetwork) {
        let net = CoreNetwork.standardTree()
        net.add("ep3", role: .leaf, hasParent: true)
        net.connect("ep3", to: "a2")
        net.relayInline = inline
        net.publishFrames = [:]
        try scenario(net)
        let delivered = net.published.mapValues { $0.map { "\(String(decoding: $0.envelope.payload, as: UTF8.self))@\($0.ids)" } }
        return (Outcome(delivered: delivered, frames: net.publishFrames, counters: net.cores.mapValues(\.pubsubCounters)), net)
    }

    func assertSameOutcome(_ name: String, _ scenario: (CoreNetwork) throws -> Void) throws {
        let (slow, _) = try outcome(inline: false, scenario)
        let (fast, net) = try outcome(inline: true, scenario)
        XCTAssertEqual(fast, slow, name)
        XCTAssertFalse(slow.delivered.isEmpty, name)
        XCTAssertGreaterThan(net.fastPublications + net.inlinePublishRelays, 0, "\(name): the fast path was taken")
    }

    func testFastPathGivesTheSameOutcomeAsTheActionPath() throws {
        try assertSameOutcome("wildcards, several subscriptions, the publisher's own") { net in
            _ = try net.subscribe("ep2", "orders.>")
            _ = try net.subscribe("ep2", "orders.*.created")
            _ = try net.subscribe("root", "orders.eu.*")
            _ = try net.subscribe("ep3", "orders.eu.created")
            _ = try net.subscribe("ep1", "orders.eu.created")
            for i in 0..<5 { try net.publish("ep1", "orders.eu.created", "o\(i)") }
            try net.publish("ep1", "orders.us.created", "u")
            try net.publish("ep3", "orders.eu.created", "from-ep3")
            try net.publish("ep1", "nobody.wants.this")
        }
        try assertSameOutcome("a burst of 50 publishes, in order, as batches") { net in
            _ = try net.subscribe("ep2", "s")
            _ = try net.subscribe("ep3", "s")
            for i in 0..<50 { try net.publishUnpumped("ep1", "s", "\(i)") }
            net.pump()
        }
        try assertSameOutcome("queue groups next to plain subscriptions") { net in
            for leaf in ["ep1", "ep2", "ep3"] { _ = try net.subscribe(leaf, "jobs.*", queue: "workers") }
            _ = try net.subscribe("ep2", "jobs.*")
            for i in 0..<12 { try net.publish("root", "jobs.\(i % 3)", "j\(i)") }
            for i in 0..<6 { try net.publish("ep1", "jobs.x", "k\(i)") }
        }
        try assertSameOutcome("interest withdrawn: publishes stop where nobody wants them") { net in
            let s = try net.subscribe("ep2", "w.>")
            try net.publish("ep1", "w.1", "before")
            net.cores["ep2"]!.unsubscribe(s)
            net.pump()
            try net.publish("ep1", "w.1", "after")
        }
    }

    func testRootReplicasOnTheFastPath() throws {
        let net = CoreNetwork()
        net.relayInline = true
        try net.addRootGroupWithSubscribedLeaves()
        try net.publish("l1", "t", "hello")
        XCTAssertEqual(net.received("l2"), ["hello"])
        XCTAssertEqual(net.received("l3"), ["hello"], "exactly once each")
        XCTAssertNil(net.publishFrames["r2->r3"], "peers never relay for each other")
        XCTAssertNil(net.publishFrames["r3->r2"])
        XCTAssertEqual(net.publishActions, 0)
    }
}
