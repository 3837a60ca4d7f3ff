import DAgentWire
import Foundation
import NIOCore
import XCTest
@testable import DAgentRouting

/// Pub/sub in the routing core: topic rules, the sublist and its cache,
/// interest aggregation and withdrawal, routing by interest, queue groups.
final class PubSubTests: XCTestCase {
    // MARK: topics and patterns

    func testWildcardMatchingTable() {
        let table: [(String, String, Bool)] = [
            ("a.b.c", "a.b.c", true), ("a.b.c", "a.b", false), ("a.b", "a.b.c", false),
            ("a.*.c", "a.b.c", true), ("a.*.c", "a.b.d", false), ("a.*", "a.b.c", false),
            ("*", "a", true), ("*", "a.b", false), ("*.*", "a.b", true),
            ("a.>", "a.b", true), ("a.>", "a.b.c.d", true), ("a.>", "a", false),
            (">", "a", true), (">", "a.b.c", true), ("*.b.>", "a.b.c", true), ("*.b.>", "a.b", false),
            ("orders.*.created", "orders.eu.created", true), ("orders.*.created", "orders.eu.us.created", false),
            ("a.*.>", "a.b.c", true), ("a.*.>", "a.b", false), ("A.b", "a.b", false),
        ]
        var sublist = Sublist<SubTarget>()
        for (i, row) in table.enumerated() {
            sublist.set(row.0, target: .local(UInt64(i)), weight: 1)
        }
        for (i, (pattern, topic, expected)) in table.enumerated() {
            XCTAssertEqual(TopicRules.matches(pattern: pattern, topic: topic), expected, "\(pattern) vs \(topic)")
            let hit = sublist.match(topic).plain.contains(.local(UInt64(i)))
            XCTAssertEqual(hit, expected, "sublist: \(pattern) vs \(topic)")
        }
    }

    func testBadTopicsAndPatternsNameTheRule() {
        var limits = TopicLimits()
        limits.maxTopicBytes = 20
        limits.maxTopicTokens = 3
        let badTopics: [(String, String)] = [
            ("", "may not be empty"), ("a..b", "empty token"), (".a", "empty token"), ("a.", "empty token"),
            ("a.*", "wildcard '*' in a topic"), ("a.>", "wildcard '>' in a topic"), ("a b", "whitespace"),
            ("a.b.c.d", "max_topic_tokens=3"), (String(repeating: "x", count: 21), "max_topic_bytes=20"),
            ("a\tb", "control character"),
        ]
        for (topic, rule) in badTopics {
            XCTAssertThrowsError(try TopicRules.checkTopic(topic, limits: limits), topic) { error in
                XCTAssertTrue("\(error)".contains(rule), "\(topic): \(error)")
            }
        }
        let badPatterns: [(String, String)] = [
            ("a.>.b", "'>' must be the last token"), ("a*", "inside a token"), ("a.*b", "whole tokens"),
            ("a.**", "inside a token"), ("a..*", "empty token"), ("", "may not be empty"),
        ]
        for (pattern, rule) in badPatterns {
            XCTAssertThrowsError(try TopicRules.checkPattern(pattern, limits: limits), pattern) { error in
                XCTAssertTrue("\(error)".contains(rule), "\(pattern): \(error)")
            }
        }
        for ok in ["a", "a.b.c", "*", ">", "a.*.>", "é.ü"] {
            XCTAssertNoThrow(try TopicRules.checkPattern(ok, limits: limits), ok)
        }
        XCTAssertThrowsError(try TopicRules.checkQueue("has space"))
    }

    // MARK: the sublist cache

    func testCacheInvalidationDropsOnlyMatchingTopics() {
        var s = Sublist<SubTarget>()
        s.set("a.b", target: .local(1), weight: 1)
        XCTAssertEqual(s.match("a.b").plain, [.local(1)])
        XCTAssertEqual(s.match("x.y").plain, [])
        XCTAssertEqual(s.cachedTopics, 2)
        XCTAssertEqual(s.match("a.b").plain, [.local(1)])
        XCTAssertEqual(s.cacheHits, 1)
        s.set("a.*", target: .local(2), weight: 1)          // matches a.b, not x.y
        XCTAssertEqual(s.cachedTopics, 1, "only a.b was dropped")
        XCTAssertEqual(s.match("a.b").plain, [.local(1), .local(2)])
        s.set("q.>", queue: "w", target: .link(7), weight: 3)
        XCTAssertEqual(s.cachedTopics, 2, "q.> matches no cached topic")
        XCTAssertEqual(s.match("q.r.s").groups, [.init(name: "w", members: [.init(target: .link(7), weight: 3)])])
        s.set("a.b", target: .local(1), weight: 0)
        XCTAssertEqual(s.match("a.b").plain, [.local(2)])
        s.set("a.*", target: .local(2), weight: 0)
        s.set("q.>", queue: "w", target: .link(7), weight: 0)
        XCTAssertEqual(s.count, 0)
        XCTAssertTrue(s.match("a.b").isEmpty)
        XCTAssertTrue(s.match("q.r.s").isEmpty)
    }

    func testFullCacheIsHalvedNotUnbounded() {
        var s = Sublist<SubTarget>(maxCachedTopics: 8)
        s.set(">", target: .local(1), weight: 1)
        for i in 0..<100 { _ = s.match("t.\(i)") }
        XCTAssertLessThanOrEqual(s.cachedTopics, 8)
    }

    // MARK: interest aggregation

    func testInterestIsOneEntryPerPatternWithACount() throws {
        let net = CoreNetwork.standardTree()
        _ = try net.subscribe("ep2", "orders.>")
        _ = try net.subscribe("ep2", "orders.>")
        _ = try net.subscribe("ep2", "orders.eu")
        let root = net.cores["root"]!
        let viaA2 = root.linkIDs.first { root.links[$0]!.peerName == "a2" }!
        let entries = root.interest(via: viaA2).map { "\($0.0.pattern)=\($0.1)" }
        XCTAssertEqual(entries, ["orders.>=2", "orders.eu=1"])
        // The other side of the tree hears of it too (it may publish).
        let a1 = net.cores["a1"]!
        let up = a1.linkIDs.first { a1.links[$0]!.isParent }!
        XCTAssertEqual(a1.interest(via: up).map { "\($0.0.pattern)=\($0.1)" }, ["orders.>=2", "orders.eu=1"])
        // ... but nobody hears its own interest back (split horizon).
        let a2 = net.cores["a2"]!
        let a2up = a2.linkIDs.first { a2.links[$0]!.isParent }!
        XCTAssertEqual(a2.interest(via: a2up).count, 0)
    }

    func testWithdrawnWhenLastSubscriberLeavesAndWhenAChildExpires() throws {
        let net = CoreNetwork.standardTree()
        let s1 = try net.subscribe("ep2", "x.*")
        _ = try net.subscribe("ep2", "y")
        let root = net.cores["root"]!
        func viaA2() -> [String] {
            let link = root.linkIDs.first { root.links[$0]!.peerName == "a2" }
            return link.map { root.interest(via: $0).map(\.0.pattern) } ?? []
        }
        XCTAssertEqual(viaA2(), ["x.*", "y"])
        net.cores["ep2"]!.unsubscribe(s1)
        net.pump()
        XCTAssertEqual(viaA2(), ["y"])
        // ep2 goes silent: a2 expires it, and the withdrawal reaches the root and ep1's side.
        net.frozen.insert("ep2")
        net.advance(seconds: 4)
        XCTAssertEqual(viaA2(), [])
        let a1 = net.cores["a1"]!
        let up = a1.linkIDs.first { a1.links[$0]!.isParent }!
        XCTAssertTrue(a1.interest(via: up).isEmpty)
    }

    // MARK: routing by interest

    func testPublishGoesOnlyWhereInterestIsAndCountsFrames() throws {
        let net = CoreNetwork.standardTree()
        net.add("ep3", role: .leaf, hasParent: true)
        net.connect("ep3", to: "a1")
        _ = try net.subscribe("ep2", "x.*")
        net.publishFrames = [:]
        for i in 0..<10 { try net.publish("ep1", "x.\(i)", "m\(i)") }
        XCTAssertEqual(net.received("ep2"), (0..<10).map { "m\($0)" }, "in publish order")
        XCTAssertEqual(net.publishFrames, ["ep1->a1": 10, "a1->root": 10, "root->a2": 10, "a2->ep2": 10],
                       "no publish crossed a link without interest (none to ep3, none back down to a1)")
        XCTAssertEqual(net.received("ep3"), [])
        XCTAssertGreaterThan(net.rawForwards, 0, "relays forwarded publishes unopened")

        // Nobody wants this: it stops at the publisher, which knows.
        net.publishFrames = [:]
        try net.publish("ep1", "y.1")
        XCTAssertEqual(net.publishFrames, [:])
        XCTAssertEqual(net.cores["ep1"]!.pubsubCounters.unwanted, 1)
    }

    func testLocalAndWildcardSubscriptionsAllGetIt() throws {
        let net = CoreNetwork.standardTree()
        let a = try net.subscribe("ep2", "orders.>")
        let b = try net.subscribe("ep2", "orders.*.created")
        let c = try net.subscribe("root", "orders.eu.*")
        _ = try net.subscribe("ep1", "orders.eu.created")   // the publisher's own subscription
        try net.publish("ep1", "orders.eu.created", "o1")
        XCTAssertEqual(net.published["ep2"]?.first?.ids.sorted(), [a, b].sorted())
        XCTAssertEqual(net.published["root"]?.first?.ids, [c])
        XCTAssertEqual(net.received("ep1"), ["o1"])
        XCTAssertEqual(net.published["ep2"]?.first?.envelope.src, "ep1")
        XCTAssertEqual(net.published["ep2"]?.first?.envelope.topic, "orders.eu.created")
    }

    func testQueueGroupsSplitTheMessages() throws {
        let net = CoreNetwork.standardTree()
        net.add("ep3", role: .leaf, hasParent: true)
        net.connect("ep3", to: "a1")
        for leaf in ["ep1", "ep2", "ep3"] { _ = try net.subscribe(leaf, "jobs.*", queue: "workers") }
        _ = try net.subscribe("ep2", "jobs.*")   // a plain subscriber sees every message
        for i in 0..<30 { try net.publish("root", "jobs.\(i % 3)", "j\(i)") }
        let counts = ["ep1", "ep2", "ep3"].map { leaf in
            (net.published[leaf] ?? []).filter { item in item.ids.contains { $0 == 1 } }.count
        }
        XCTAssertEqual(counts.reduce(0, +), 30, "each message went to exactly one member: \(counts)")
        XCTAssertEqual(counts, [10, 10, 10], "weighted round robin over the members")
        XCTAssertEqual((net.published["ep2"] ?? []).filter { $0.ids.contains(2) }.count, 30)
        // From a leaf too: the publisher's node picks.
        for i in 0..<9 { try net.publish("ep1", "jobs.x", "k\(i)") }
        let total = ["ep1", "ep2", "ep3"].map { leaf in
            (net.published[leaf] ?? []).filter { $0.envelope.payload.first == UInt8(ascii: "k") && $0.ids.contains(1) }.count
        }
        XCTAssertEqual(total.reduce(0, +), 9, "\(total)")
    }

    func testRootReplicasShareInterestAndDoNotRelayForEachOther() throws {
        let net = CoreNetwork()
        try net.addRootGroupWithSubscribedLeaves()
        try net.publish("l1", "t", "hello")
        XCTAssertEqual(net.received("l2"), ["hello"])
        XCTAssertEqual(net.received("l3"), ["hello"], "exactly once each")
        XCTAssertNil(net.publishFrames["r2->r3"])
        XCTAssertNil(net.publishFrames["r3->r2"])
        XCTAssertEqual(net.publishFrames["r1->r2"], 1)
        // r1 learned nothing of l1 back from its peers (no echo of its own interest).
        _ = try net.subscribe("l1", "u")
        let r2 = net.cores["r2"]!
        let fromR1 = r2.linkIDs.first { r2.links[$0]!.isPeer && r2.interest(via: $0).contains { $0.0.pattern == "u" } }
        XCTAssertNotNil(fromR1)
        let r3 = net.cores["r3"]!
        let peersOfR3 = r3.linkIDs.filter { r3.links[$0]!.isPeer }
        XCTAssertEqual(peersOfR3.filter { r3.interest(via: $0).contains { $0.0.pattern == "u" } }.count, 1, "from r1 only, not relayed by r2")
    }

    // MARK: bad input and limits

    func testSubscriptionFloodFromOneChildIsBoundedByMaxLinkInterest() throws {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false) { $0.pubsub.maxLinkInterest = 5 }
        net.add("leaf", role: .leaf, hasParent: true)
        net.connect("leaf", to: "root")
        for i in 0..<12 { _ = try net.subscribe("leaf", "flood.\(i)") }
        let root = net.cores["root"]!
        let link = root.linkIDs[0]
        XCTAssertEqual(root.interest(via: link).count, 5)
        XCTAssertEqual(root.pubsubCounters.interestRefused, 7)
        XCTAssertTrue(net.logs["leaf", default: []].contains { $0.contains("max_link_interest=5") }, "the child hears why")
        XCTAssertTrue(root.linkIDs.contains(link), "the link stays up")
    }

    func testLocalSubscriptionLimitAndBadPatterns() throws {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false) { $0.pubsub.maxSubscriptions = 2 }
        _ = try net.subscribe("root", "a")
        _ = try net.subscribe("root", "b")
        XCTAssertThrowsError(try net.subscribe("root", "c")) { error in
            XCTAssertEqual((error as? DAgentError)?.code, .tooManySubscriptions)
            XCTAssertTrue("\(error)".contains("max_subscriptions=2"))
        }
        XCTAssertThrowsError(try net.subscribe("root", "a..b")) { XCTAssertEqual(($0 as? DAgentError)?.code, .badTopic) }
        XCTAssertThrowsError(try net.publish("root", "a.*")) { XCTAssertEqual(($0 as? DAgentError)?.code, .badTopic) }
    }

    func testBadInterestEntriesFromAPeerAreRefusedAndNamed() throws {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false)
        net.add("leaf", role: .leaf, hasParent: true)
        let (_, p) = net.connect("leaf", to: "root")
        var update = Dagent_InterestUpdate()
        for pattern in ["good.*", "bad..pattern", "x.>.y"] {
            var e = Dagent_InterestEntry()
            e.pattern = pattern
            e.count = 1
            update.entries.append(e)
        }
        var frame = Dagent_Frame()
        frame.interest = update
        var bytes = ByteBufferAllocator().buffer(capacity: 64)
        try FrameCodec.encode(frame, into: &bytes)
        bytes.moveReaderIndex(forwardBy: 4)
        let root = net.cores["root"]!
        root.receive(frameBody: bytes, from: p, nowNs: net.nowNs)
        net.pump()
        XCTAssertEqual(root.interest(via: p).map(\.0.pattern), ["good.*"])
        XCTAssertEqual(root.pubsubCounters.interestRefused, 2)
        XCTAssertTrue(net.logs["leaf", default: []].contains { $0.contains("bad topic") && $0.contains("empty token") }, "\(net.logs["leaf"] ?? [])")
    }

    func testSlowLinkDropsPublishesAndCountsThem() throws {
        let net = CoreNetwork.standardTree()
        _ = try net.subscribe("ep2", "t")
        let a2 = net.cores["a2"]!
        a2.setCongestionCheck { _ in true }
        try net.publish("ep1", "t")
        XCTAssertEqual(net.received("ep2"), [])
        XCTAssertEqual(a2.pubsubCounters.droppedSlow, 1)
        let reply = a2.treeReply(requestID: 1)
        XCTAssertEqual(reply.links.map(\.publishDrops).reduce(0, +), 1)
        a2.setCongestionCheck(nil)
        try net.publish("ep1", "t", "after")
        XCTAssertEqual(net.received("ep2"), ["after"])
    }

    /// `publish(envelope)` is stamped by the same `stampPublish` as the fast
    /// path: the caller's source, id, kind, hop limit, cookie and queue picks
    /// are replaced, ids count up with the node's other messages.
    func testEnvelopePublishIsStampedLikeTheFastPath() throws {
        let net = CoreNetwork.standardTree()
        _ = try net.subscribe("ep2", "t")
        let ep1 = net.cores["ep1"]!
        for i in 0..<2 {
            var e = Dagent_Envelope()
            e.dst = "t"
            e.payload = .init("m\(i)".utf8)
            e.src = "forged"
            e.id = 999
            e.kind = .request
            e.cookie = 7
            e.hopLimit = 2
            e.queues = ["g"]
            e.pickQueues = true
            try ep1.publish(e, nowNs: net.nowNs)
        }
        net.pump()
        let got = (net.published["ep2"] ?? []).map(\.envelope)
        XCTAssertEqual(got.map { String(decoding: $0.payload, as: UTF8.self) }, ["m0", "m1"])
        XCTAssertEqual(got.map(\.src), ["ep1", "ep1"])
        XCTAssertEqual(got.map(\.kind), [.publish, .publish])
        XCTAssertEqual(got.map(\.cookie), [0, 0])
        XCTAssertEqual(got[1].id, got[0].id + 1)
        XCTAssertTrue(got.allSatisfy { $0.queues.isEmpty && !$0.pickQueues })
        XCTAssertGreaterThan(got[0].hopLimit, 2, "the node's hop limit, less the hops taken")
        XCTAssertEqual(ep1.pubsubCounters.published, 2)
        XCTAssertThrowsError(try ep1.publish(Dagent_Envelope(), nowNs: net.nowNs), "no topic")
    }

    func testPublishBeforeTheRouteUpIsReadyIsQueuedThenSent() throws {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false)
        _ = try net.subscribe("root", "early")
        net.add("leaf", role: .leaf, hasParent: true)
        try net.publish("leaf", "early", "e1")
        net.connect("leaf", to: "root")
        XCTAssertEqual(net.received("root"), ["e1"])
    }

    func testBatchedPublishesKeepOrderAndTravelAsBatches() throws {
        let net = CoreNetwork.standardTree()
        _ = try net.subscribe("ep2", "s")
        let ep1 = net.cores["ep1"]!
        for i in 0..<50 {
            var e = Dagent_Envelope()
            e.dst = "s"
            e.payload = .init("\(i)".utf8)
            try ep1.publish(e, nowNs: net.nowNs)   // one burst: the writer batches them
        }
        net.batchesSent = 0
        net.pump()
        XCTAssertEqual(net.received("ep2"), (0..<50).map { "\($0)" })
        XCTAssertGreaterThanOrEqual(net.batchesSent, 4, "ep1->a1, a1->root, root->a2, a2->ep2 as batches")
        XCTAssertEqual(net.rawBatchForwards, 3)
    }

    func testTreeReplyShowsInterestPerLinkAndCounters() throws {
        let net = CoreNetwork.standardTree()
        _ = try net.subscribe("ep2", "a.>")
        try net.publish("ep1", "a.b")
        let reply = net.cores["root"]!.treeReply(requestID: 1)
        let a2 = reply.links.first { $0.peer == "a2" }!
        XCTAssertEqual(a2.interest.map(\.pattern), ["a.>"])
        XCTAssertEqual(a2.interestEntries, 1)
        XCTAssertEqual(a2.publishesOut, 1)
        XCTAssertEqual(reply.pubsub.forwarded, 1)
        let leaf = net.cores["ep2"]!.treeReply(requestID: 1)
        XCTAssertEqual(leaf.subscriptions.map(\.pattern), ["a.>"])
        XCTAssertEqual(leaf.pubsub.delivered, 1)
    }
}

extension PubSubTests {
    func testTenThousandSubscriptionsPropagateAsOneEntryEach() throws {
        let net = CoreNetwork.standardTree()
        for i in 0..<10_000 { _ = try net.cores["ep2"]!.subscribe("sensor.\(i).temp") }
        net.pump()
        let root = net.cores["root"]!
        let viaA2 = root.linkIDs.first { root.links[$0]!.peerName == "a2" }!
        XCTAssertEqual(root.interest(via: viaA2).count, 10_000)
        try net.publish("ep1", "sensor.4321.temp", "v")
        XCTAssertEqual(net.received("ep2"), ["v"])
    }
}
