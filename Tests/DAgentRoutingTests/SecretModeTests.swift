import DAgentWire
import NIOCore
import XCTest
@testable import DAgentRouting

/// Secret mode in the routing core: every link runs the handshake before
/// Register or PeerHello; tree queries only on registered links; sessions.
final class SecretModeTests: XCTestCase, RawFrameTesting {
    let secret = "the cluster secret, long enough"

    func contains(_ needle: [UInt8], _ hay: [UInt8]) -> Bool {
        guard hay.count >= needle.count else { return false }
        return (0...(hay.count - needle.count)).contains { Array(hay[$0..<$0 + needle.count]) == needle }
    }

    func testATreeInSecretModeRegistersAndTheSecretIsNeverOnTheWire() throws {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false) { $0.secret = self.secret }
        net.add("a1", role: .agent, hasParent: true) { $0.secret = self.secret }
        net.add("ep1", role: .leaf, hasParent: true) { $0.secret = self.secret }
        net.connect("a1", to: "root")
        net.connect("ep1", to: "a1")
        XCTAssertTrue(net.registered("a1") && net.registered("ep1"))
        XCTAssertNotNil(net.cores["root"]!.routes["ep1"])
        try net.send("ep1", to: "root", "hello")
        XCTAssertEqual(net.texts("root"), ["hello"])
        let all = net.wire.flatMap(\.bytes)
        XCTAssertFalse(contains(Array(secret.utf8), all), "the secret crossed the wire")
        // Sessions go only from parent to child: root's frames to a1 carry a1's, never ep1's.
        let ep1Session = net.cores["ep1"]!.sessionSecret!.bytes
        let aboveA1 = net.wire.filter { ($0.from == "a1" && $0.to == "root") || ($0.from == "root" && $0.to == "a1") }.flatMap(\.bytes)
        XCTAssertFalse(contains(ep1Session, aboveA1), "ep1's session travelled above its parent")
        XCTAssertEqual(net.cores["root"]!.routes["ep1"]?.session, net.cores["ep1"]!.session, "the verifier went up")
    }

    func testAChildWithTheWrongSecretIsRefusedAndNeverRegisters() {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false) { $0.secret = self.secret }
        net.add("bad", role: .leaf, hasParent: true) { $0.secret = "not the cluster secret at all" }
        net.connect("bad", to: "root")
        XCTAssertFalse(net.registered("bad"))
        XCTAssertEqual(net.failures("bad").first?.0, .unauthenticated)
        XCTAssertTrue(net.failures("bad").first!.1.contains("did not prove it knows the cluster secret"), "\(net.failures("bad"))")
        XCTAssertNil(net.cores["root"]!.routes["bad"])
        // It never sent Register: it stopped at the parent's proof.
        let sent = net.wire.filter { $0.from == "bad" }.flatMap(\.bytes)
        XCTAssertFalse(contains(Array("bad".utf8) + [0x10], sent) && sent.count > 60, "bad sent more than its hello")
    }

    func testAChildWithoutTheSecretGetsAClearRefusal() {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false) { $0.secret = self.secret }
        net.add("plain", role: .leaf, hasParent: true)
        net.connect("plain", to: "root")
        XCTAssertEqual(net.failures("plain").first?.0, .unauthenticated)
        XCTAssertTrue(net.failures("plain").first!.1.contains("requires the cluster secret"), "\(net.failures("plain"))")
        XCTAssertNil(net.cores["root"]!.routes["plain"])
    }

    func testAParentWithoutTheSecretIsRefusedByTheChild() {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false)
        net.add("careful", role: .leaf, hasParent: true) { $0.secret = self.secret }
        net.connect("careful", to: "root")
        XCTAssertFalse(net.registered("careful"))
        XCTAssertTrue(net.failures("careful").first!.1.contains("has no cluster secret configured"), "\(net.failures("careful"))")
        XCTAssertNil(net.cores["root"]!.routes["careful"])
    }

    /// A listener takes nothing but the handshake first: a message, a tree
    /// query, a PeerHello are all refused, and nothing is answered.
    func testNothingPassesBeforeTheHandshake() {
        for first: Dagent_Frame.OneOf_Body in [.treeRequest(Dagent_TreeRequest()), .peerHello(Dagent_PeerHello()),
                                                .nameAdded(Dagent_NameAdded()), .interest(Dagent_InterestUpdate())] {
            let net = CoreNetwork()
            net.add("root", role: .root, hasParent: false) { $0.secret = self.secret }
            let (_, link) = net.rawLink(to: "root")
            net.cores["root"]!.receive(frameBody: body(first), from: link, nowNs: net.nowNs)
            net.pump()
            XCTAssertEqual(net.closes.count, 1, "\(first)")
            XCTAssertTrue(net.closes.first!.reason.contains("before the cluster secret handshake"), net.closes.first!.reason)
            XCTAssertFalse(net.rawOut.contains { if case .treeReply? = $0.body { return true } else { return false } })
            XCTAssertTrue(net.events["root", default: []].allSatisfy { if case .treeRequested = $0 { return false } else { return true } })
        }
    }

    /// Bytes of a whole successful connection replayed on a new one: refused.
    func testARecordedConnectionReplayedOnANewLinkIsRefused() {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false) { $0.secret = self.secret }
        net.add("ep1", role: .leaf, hasParent: true) { $0.secret = self.secret }
        let (ep1Link, _) = net.connect("ep1", to: "root")
        XCTAssertTrue(net.registered("ep1"))
        let recorded = net.wire.filter { $0.from == "ep1" }.map(\.bytes)
        net.cut("ep1", ep1Link)
        XCTAssertNil(net.cores["root"]!.routes["ep1"])
        let (_, link) = net.rawLink(to: "root")
        var reader = FrameReader(maxFrameBytes: 1 << 20)
        for bytes in recorded { reader.append(ByteBuffer(bytes: bytes)) }
        while let frame = try! reader.next() { net.cores["root"]!.receive(frameBody: frame, from: link, nowNs: net.nowNs) }
        net.pump()
        XCTAssertNil(net.cores["root"]!.routes["ep1"], "a replayed registration was accepted")
        XCTAssertTrue(net.closes.contains { $0.reason.contains("wrong proof of the cluster secret") }, "\(net.closes)")
    }

    func testTreeQueriesNeedARegisteredLink() {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false)
        let (_, link) = net.rawLink(to: "root")
        net.cores["root"]!.receive(frameBody: body(.treeRequest(Dagent_TreeRequest())), from: link, nowNs: net.nowNs)
        net.pump()
        XCTAssertTrue(net.closes.first?.reason.contains("tree query from a link that has not registered") == true, "\(net.closes)")
        XCTAssertTrue(net.events["root", default: []].allSatisfy { if case .treeRequested = $0 { return false } else { return true } })
    }

    /// `dagent tree`: a query-only registration is answered, adds no name,
    /// and the link may neither send messages nor bring names.
    func testAQueryOnlyLinkMayOnlyAsk() {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false)
        net.add("ep1", role: .leaf, hasParent: true)
        net.connect("ep1", to: "root")
        let (_, link) = net.rawLink(to: "root")
        net.cores["root"]!.receive(frameBody: body(register("tree-1", queryOnly: true)), from: link, nowNs: net.nowNs)
        net.cores["root"]!.receive(frameBody: body(.treeRequest(Dagent_TreeRequest())), from: link, nowNs: net.nowNs)
        net.pump()
        XCTAssertTrue(net.rawOut.contains { if case .registerResult(let r)? = $0.body { return r.error == .ok && r.sessionSecret.isEmpty } else { return false } })
        XCTAssertTrue(net.events["root", default: []].contains { if case .treeRequested(link, _) = $0 { return true } else { return false } })
        XCTAssertNil(net.cores["root"]!.routes["tree-1"], "a query-only name is not in the tree")
        XCTAssertEqual(net.cores["root"]!.treeReply(requestID: 1).names.map(\.name), ["ep1"])
        var e = Dagent_Envelope()
        e.src = "tree-1"
        e.dst = "ep1"
        e.hopLimit = 8
        net.cores["root"]!.receive(frameBody: body(.envelope(e)), from: link, nowNs: net.nowNs)
        net.pump()
        XCTAssertEqual(net.texts("ep1"), [], "a query-only link sent a message")
        var added = Dagent_NameAdded()
        var record = Dagent_NameRecord()
        record.name = "sneaky"
        added.names = [record]
        net.cores["root"]!.receive(frameBody: body(.nameAdded(added)), from: link, nowNs: net.nowNs)
        net.pump()
        XCTAssertNil(net.cores["root"]!.routes["sneaky"])
    }

    /// A query-only registration still runs every check: reserved names are refused.
    func testAQueryOnlyRegistrationIsChecked() {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false)
        let (_, link) = net.rawLink(to: "root")
        net.cores["root"]!.receive(frameBody: body(register("@state", queryOnly: true)), from: link, nowNs: net.nowNs)
        net.pump()
        XCTAssertTrue(net.rawOut.contains { if case .registerResult(let r)? = $0.body { return r.error == .refused } else { return false } })
    }

    func testPeerLinksRunTheHandshakeToo() {
        let net = CoreNetwork()
        net.add("r1", role: .root, hasParent: false) { $0.secret = self.secret }
        net.add("r2", role: .root, hasParent: false) { $0.secret = self.secret }
        net.add("r3", role: .root, hasParent: false) { $0.secret = "a different secret, same length" }
        net.connectPeers("r1", "r2")
        XCTAssertTrue(net.closes.isEmpty, "\(net.closes)")
        XCTAssertFalse(contains(Array(secret.utf8), net.wire.flatMap(\.bytes)))
        net.connectPeers("r3", "r2")
        XCTAssertTrue(net.closes.contains { $0.reason.contains("did not prove it knows the cluster secret") }, "\(net.closes)")
    }

    /// A session is 128 random bits; a restart that presents it reclaims the
    /// name, and one that presents anything else (say, the verifier the upper
    /// tree knows) does not.
    func testReclaimNeedsTheSessionSecret() {
        let net = CoreNetwork.standardTree()
        let secret = net.cores["ep1"]!.sessionSecret!
        XCTAssertEqual(secret.bytes.count, 16)
        net.frozen.insert("ep1")
        net.cores.removeValue(forKey: "ep1")
        // An impostor that knows only the verifier (as every ancestor does).
        var guess = [UInt8](repeating: 0, count: 16)
        withUnsafeBytes(of: secret.verifier.bigEndian) { guess.replaceSubrange(0..<8, with: $0) }
        net.events["ep1"] = []
        net.add("ep1", role: .leaf, hasParent: true, session: SessionSecret(bytes: guess))
        net.frozen.remove("ep1")
        net.connect("ep1", to: "a2")
        XCTAssertEqual(net.failures("ep1").first?.0, .nameTaken)
        net.cores.removeValue(forKey: "ep1")
        net.events["ep1"] = []
        net.add("ep1", role: .leaf, hasParent: true, session: secret)
        net.connect("ep1", to: "a2")
        XCTAssertTrue(net.registered("ep1"))
    }
}
