import DAgentWire
import NIOCore
import XCTest
@testable import DAgentRouting

/// Authorization in the core: reserved names, source checks, limits, reply matching.
final class AuthorizationTests: XCTestCase, RawFrameTesting {
    func envelope(src: String, dst: String, _ text: String = "forged", kind: Dagent_Kind = .data) -> Dagent_Frame.OneOf_Body {
        var e = Dagent_Envelope()
        e.src = src
        e.dst = dst
        e.kind = kind
        e.hopLimit = 16
        e.payload = Data(text.utf8)
        return .envelope(e)
    }

    func testServiceNamesAreReserved() {
        let net = CoreNetwork.standardTree()
        net.add("fake", role: .leaf, hasParent: true)
        net.cores["fake"] = NodeCore(config: NodeCoreConfig(name: "@state", role: .leaf, hasParent: true))
        net.connect("fake", to: "a1")
        XCTAssertEqual(net.failures("fake").first?.0, .refused)
        XCTAssertTrue(net.failures("fake").first!.1.contains("reserved for services"), net.failures("fake").first!.1)
        XCTAssertNil(net.cores["a1"]!.routes["@state"])
        XCTAssertEqual(NameRules.registrationProblem("@x"), "name '@x' starts with '@', which is reserved for services (such as @state)")
        XCTAssertNil(NameRules.registrationProblem("a@b"))
    }

    func testReservedNamesInASubtreeAreRefused() {
        let net = CoreNetwork.standardTree()
        let (raw, link) = net.rawLink(to: "a1")
        _ = raw
        net.cores["a1"]!.receive(frameBody: body(register("sneaky", subtree: ["@state", "fine"])), from: link, nowNs: net.nowNs)
        net.pump()
        XCTAssertNil(net.cores["a1"]!.routes["@state"])
        XCTAssertNotNil(net.cores["a1"]!.routes["fine"])
        guard let result = lastResult(net) else { return XCTFail("no RegisterResult") }
        XCTAssertEqual(result.refused.map(\.name), ["@state"])
    }

    func testChildMayNotSendWithAForeignSource() throws {
        let net = CoreNetwork.standardTree()
        let (_, link) = net.rawLink(to: "a1")
        net.cores["a1"]!.receive(frameBody: body(register("evil")), from: link, nowNs: net.nowNs)
        net.pump()
        XCTAssertNotNil(net.cores["a1"]!.routes["evil"])
        // A forged reply claiming to come from ep1 (a1 knows it) is dropped at evil's parent, unanswered.
        net.cores["a1"]!.receive(frameBody: body(envelope(src: "ep1", dst: "ep2", kind: .response)), from: link, nowNs: net.nowNs)
        net.pump()
        XCTAssertTrue(net.inbox("ep2").isEmpty, "\(net.inbox("ep2"))")
        XCTAssertEqual(net.cores["a1"]!.stats.forgedSources, 1)
        XCTAssertTrue(net.logs["a1"]!.contains { $0.contains("claims src 'ep1'") })
        // One claiming ep2 (in another subtree, unknown to a1) to a1's own subtree: a1 cannot vouch for it.
        net.cores["a1"]!.receive(frameBody: body(envelope(src: "ep2", dst: "ep1", kind: .response)), from: link, nowNs: net.nowNs)
        net.pump()
        XCTAssertTrue(net.inbox("ep1").isEmpty, "\(net.inbox("ep1"))")
        XCTAssertEqual(net.cores["a1"]!.stats.forgedSources, 2)
        // Going up, a name a1 does not know is checked by the root, which knows ep1 is under a1's other link.
        net.cores["a1"]!.receive(frameBody: body(envelope(src: "ep2", dst: "a2", kind: .response)), from: link, nowNs: net.nowNs)
        net.pump()
        XCTAssertEqual(net.cores["root"]!.stats.forgedSources, 1)
        // Its own name goes through (fast path, then the cached check).
        for i in 0..<3 {
            net.cores["a1"]!.receive(frameBody: body(envelope(src: "evil", dst: "ep2", "ok\(i)")), from: link, nowNs: net.nowNs)
        }
        net.pump()
        XCTAssertEqual(net.texts("ep2"), ["ok0", "ok1", "ok2"])
        // After the cache is warm, a forged source is still caught on the fast path.
        net.cores["a1"]!.receive(frameBody: body(envelope(src: "root", dst: "ep2", "nope")), from: link, nowNs: net.nowNs)
        net.pump()
        XCTAssertEqual(net.texts("ep2"), ["ok0", "ok1", "ok2"])
        XCTAssertEqual(net.cores["root"]!.stats.forgedSources, 2)
        XCTAssertTrue(net.logs["root"]!.contains { $0.contains("claims src 'root'") })
        // A sender that left is known nowhere: its late messages still go through.
        net.cores["a1"]!.receive(frameBody: body(envelope(src: "gone", dst: "ep2", "late")), from: link, nowNs: net.nowNs)
        net.pump()
        XCTAssertEqual(net.texts("ep2"), ["ok0", "ok1", "ok2", "late"])
    }

    func testDuplicatedSourceFieldCannotSmuggleAForgedName() throws {
        let net = CoreNetwork.standardTree()
        let (_, link) = net.rawLink(to: "a1")
        net.cores["a1"]!.receive(frameBody: body(register("evil")), from: link, nowNs: net.nowNs)
        net.pump()
        net.cores["a1"]!.receive(frameBody: body(envelope(src: "evil", dst: "ep2", "warm")), from: link, nowNs: net.nowNs)
        // Protobuf: the last src wins. Append a second src field naming ep1.
        var e = Dagent_Envelope()
        e.src = "evil"
        e.dst = "ep2"
        e.hopLimit = 16
        e.payload = Data("smuggled".utf8)
        var bytes: [UInt8] = try e.serializedBytes()
        bytes += [0x0A, 4] + Array("root".utf8)
        XCTAssertEqual(try Dagent_Envelope(serializedBytes: bytes).src, "root")
        var frame = ByteBuffer()
        frame.writeInteger(UInt8(0x0A))
        frame.writeInteger(UInt8(bytes.count))
        frame.writeBytes(bytes)
        net.cores["a1"]!.receive(frameBody: frame, from: link, nowNs: net.nowNs)
        net.pump()
        XCTAssertEqual(net.texts("ep2"), ["warm"])
        XCTAssertEqual(net.cores["root"]!.stats.forgedSources, 1)
    }

    func testNamesPerChildAreLimited() {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false) { $0.limits.maxNamesPerChild = 3 }
        let (_, link) = net.rawLink(to: "root")
        net.cores["root"]!.receive(frameBody: body(register("big", subtree: ["a", "b", "c"])), from: link, nowNs: net.nowNs)
        net.pump()
        guard let r = lastResult(net) else { return XCTFail() }
        XCTAssertEqual(r.error, .refused)
        XCTAssertTrue(r.reason.contains("max_names_per_child=3"), r.reason)

        let (_, link2) = net.rawLink(to: "root")
        net.cores["root"]!.receive(frameBody: body(register("small", subtree: ["x"])), from: link2, nowNs: net.nowNs)
        var added = Dagent_NameAdded()
        added.requestID = 9
        added.names = ["y", "z"].map { n in var r = Dagent_NameRecord(); r.name = n; return r }
        net.cores["root"]!.receive(frameBody: body(.nameAdded(added)), from: link2, nowNs: net.nowNs)
        net.pump()
        guard let ack = net.rawOut.reversed().compactMap({ if case .nameAck(let a)? = $0.body { return a } else { return nil } }).first else { return XCTFail("\(net.rawOut)") }
        XCTAssertEqual(ack.refused.map(\.name), ["z"])
        XCTAssertTrue(ack.refused[0].reason.contains("max_names_per_child=3"))
        XCTAssertNil(net.cores["root"]!.routes["z"])
    }

    func testUnregisteredLinksAreLimited() {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false) { $0.limits.maxUnregisteredLinks = 2 }
        _ = net.rawLink(to: "root")
        _ = net.rawLink(to: "root")
        XCTAssertTrue(net.closes.isEmpty)
        _ = net.rawLink(to: "root")
        XCTAssertEqual(net.closes.count, 1)
        XCTAssertTrue(net.closes[0].reason.contains("max_unregistered_links=2"), net.closes[0].reason)
    }

    func testRegistrationRateIsLimited() {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false) {
            $0.limits.registrationRate = 1
            $0.limits.registrationBurst = 2
        }
        var results: [Dagent_RegisterResult] = []
        for i in 0..<3 {
            let (_, link) = net.rawLink(to: "root")
            net.cores["root"]!.receive(frameBody: body(register("n\(i)")), from: link, nowNs: net.nowNs)
            net.pump()
            if let r = lastResult(net) { results.append(r) }
        }
        XCTAssertEqual(results.map(\.error), [.ok, .ok, .refused])
        XCTAssertTrue(results[2].reason.contains("registration_rate=1.0/s"), results[2].reason)
        net.nowNs += 1_000_000_000
        let (_, link) = net.rawLink(to: "root")
        net.cores["root"]!.receive(frameBody: body(register("later")), from: link, nowNs: net.nowNs)
        net.pump()
        guard let r = lastResult(net) else { return XCTFail() }
        XCTAssertEqual(r.error, .ok)
    }

    func testTreeRepliesCarryNoSessions() {
        let net = CoreNetwork.standardTree()
        XCTAssertNotEqual(net.cores["root"]!.routes["ep1"]!.session, 0)
        let reply = net.cores["root"]!.treeReply(requestID: 1)
        XCTAssertEqual(reply.names.count, 4)
        XCTAssertTrue(reply.names.allSatisfy { $0.session == 0 })
    }

    func testRepliesAreMatchedOnCookieAndResponder() {
        var table = RpcTable<Int>()
        let c1 = table.add(1, dst: "svc", type: 1, nowNs: 0, timeoutNs: 1_000)
        let c2 = table.add(2, dst: "svc", type: 1, nowNs: 0, timeoutNs: 1_000)
        XCTAssertNotEqual(c1 &+ 1, c2, "cookies are not sequential")
        var forged = Dagent_Envelope()
        forged.kind = .response
        forged.cookie = c1
        forged.src = "mallory"
        XCTAssertNil(table.complete(answer: forged))
        forged.src = "svc"
        XCTAssertEqual(table.complete(answer: forged)?.waiter, 1)
        var error = Dagent_Envelope()
        error.kind = .error
        error.cookie = c2
        error.src = "a-relay-on-the-way"
        XCTAssertEqual(table.complete(answer: error)?.waiter, 2, "errors may come from a hop on the way")
        XCTAssertEqual(table.count, 0)
    }

    func testTokenBucket() {
        var b = TokenBucket(ratePerSecond: 10, burst: 2)
        XCTAssertTrue(b.take(nowNs: 0))
        XCTAssertTrue(b.take(nowNs: 0))
        XCTAssertFalse(b.take(nowNs: 0))
        XCTAssertTrue(b.take(nowNs: 100_000_000))
        XCTAssertFalse(b.take(nowNs: 100_000_000))
    }
}

/// The local-delivery fast path (straight into the inbox) checks sources too.
final class AuthorizedDeliveryTests: XCTestCase {
    func testForgedSourceToTheParentItselfIsDropped() throws {
        let net = CoreNetwork.standardTree()
        let (_, link) = net.rawLink(to: "a1")
        var reg = Dagent_Frame()
        reg.register.name = "evil"
        reg.register.protocolVersion = WireConstants.protocolVersion
        net.cores["a1"]!.receive(frameBody: ByteBuffer(bytes: try reg.serializedBytes() as [UInt8]), from: link, nowNs: net.nowNs)
        net.pump()
        for src in ["ep1", "evil"] {
            var f = Dagent_Frame()
            f.envelope.src = src
            f.envelope.dst = "a1"
            f.envelope.kind = .response
            f.envelope.cookie = 7
            f.envelope.hopLimit = 8
            net.cores["a1"]!.receive(frameBody: ByteBuffer(bytes: try f.serializedBytes() as [UInt8]), from: link, nowNs: net.nowNs)
        }
        net.pump()
        XCTAssertEqual(net.inbox("a1").map(\.src), ["evil"])
        XCTAssertEqual(net.cores["a1"]!.stats.forgedSources, 1)
    }
}

/// Publications from a child carry a `src` the child registered, on the raw paths too.
final class AuthorizedPublishTests: XCTestCase, RawFrameTesting {
    /// A raw child "evil" of a1 (with "evil2" in its subtree), and ep2 subscribed to `t` under a2.
    func treeWithRawChild() throws -> (CoreNetwork, LinkID) {
        let net = CoreNetwork.standardTree()
        _ = try net.subscribe("ep2", "t")
        let (_, link) = net.rawLink(to: "a1")
        net.cores["a1"]!.receive(frameBody: body(register("evil", subtree: ["evil2"])), from: link, nowNs: net.nowNs)
        net.pump()
        return (net, link)
    }

    func publishFrame(src: String, text: String) throws -> ByteBuffer {
        var f = Dagent_Frame()
        f.envelope.src = src
        f.envelope.dst = "t"
        f.envelope.kind = .publish
        f.envelope.hopLimit = 8
        f.envelope.payload = Data(text.utf8)
        return ByteBuffer(bytes: try f.serializedBytes() as [UInt8])
    }

    func testAPublicationWithAForgedSourceIsDroppedAndCounted() throws {
        for fastPath in [false, true] {
            let (net, link) = try treeWithRawChild()
            for (src, text) in [("ep1", "forged"), ("evil", "genuine"), ("@state", "forged too"), ("evil2", "from below")] {
                let frame = try publishFrame(src: src, text: text)
                if fastPath {
                    XCTAssertNil(net.cores["a1"]!.receiveOrRelay(frameBody: frame, from: link, nowNs: net.nowNs), "a publish is not a relay")
                } else {
                    net.cores["a1"]!.receive(frameBody: frame, from: link, nowNs: net.nowNs)
                }
            }
            net.pump()
            XCTAssertEqual(net.received("ep2"), ["genuine", "from below"], "fast path: \(fastPath)")
            XCTAssertEqual(net.cores["a1"]!.stats.forgedSources, 2, "fast path: \(fastPath)")
        }
    }

    func testABatchOfPublicationsIsDroppedWholeIfOneSourceIsForged() throws {
        XCTAssertEqual(try batchFromRawChild(["evil", "ep1"]), [])
        XCTAssertEqual(try batchFromRawChild(["evil", "evil2"]), ["0", "1"], "a batch mixing the names of the child's subtree passes")
    }

    /// Sends the raw child's batch of publications on `t` with these sources (payloads "0", "1", ...);
    /// returns what ep2 received, after checking the forged count.
    func batchFromRawChild(_ sources: [String]) throws -> [String] {
        let (net, link) = try treeWithRawChild()
        var w = FrameWriter()
        for (i, src) in sources.enumerated() {
            var h = MessageHeader(dst: "t", kind: .publish)
            h.src = src
            h.id = UInt64(i + 1)
            h.hopLimit = 8
            Array("\(i)".utf8).withUnsafeBytes { w.append(h, payload: $0) }
        }
        var reader = FrameReader(maxFrameBytes: 1 << 20)
        reader.append(w.take(allocator: ByteBufferAllocator()))
        let frame = try XCTUnwrap(try reader.next())
        guard case .batch(_, _, sources.count)? = try? InboundFrame.classify(frame) else { XCTFail("not one batch"); return [] }
        net.cores["a1"]!.receive(frameBody: frame, from: link, nowNs: net.nowNs)
        net.pump()
        let forged = sources.contains("ep1")
        XCTAssertEqual(net.cores["a1"]!.stats.forgedSources, forged ? UInt64(sources.count) : 0)
        return net.received("ep2")
    }
}
