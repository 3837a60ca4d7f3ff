import DAgentWire
import NIOCore
import XCTest
@testable import DAgentRouting

/// Heartbeats, expiry and registration deadlines, with simulated time.
final class HeartbeatTests: XCTestCase {
    func testLiveLinksStayUp() {
        let net = CoreNetwork.standardTree()
        net.advance(seconds: 30)
        XCTAssertTrue(net.closes.isEmpty, "\(net.closes)")
        XCTAssertEqual(net.cores["root"]!.routes.count, 4)
    }

    func testSilentChildExpiresAndIsWithdrawn() {
        let net = CoreNetwork.standardTree()
        net.frozen.insert("ep2")          // like kill -9 without a FIN (machine gone)
        net.advance(seconds: 2.5)
        XCTAssertNotNil(net.cores["root"]!.routes["ep2"], "not before heartbeat_misses × interval")
        net.advance(seconds: 1.0)
        XCTAssertNil(net.cores["a2"]!.routes["ep2"])
        XCTAssertNil(net.cores["root"]!.routes["ep2"])
        XCTAssertTrue(net.closes.contains { $0.node == "a2" && $0.reason.contains("heartbeat_misses=3") })
    }

    func testSilentParentIsDetected() {
        let net = CoreNetwork.standardTree()
        net.frozen.insert("a1")
        net.advance(seconds: 3.5)
        XCTAssertTrue(net.events["ep1"]!.contains { if case .parentLost = $0 { return true } else { return false } })
    }

    func testPeerThatSaysNothingIsDroppedAfterRegisterTimeout() {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false) { $0.registerTimeoutNs = 2_000_000_000; $0.heartbeatMisses = 100 }
        let (_, link) = net.rawLink(to: "root")
        net.advance(seconds: 1.5)
        XCTAssertTrue(net.closes.isEmpty)
        net.advance(seconds: 1.0)
        XCTAssertTrue(net.closes.contains { $0.reason.contains("did not register within register_timeout=2s") }, "\(net.closes) \(net.logs)")
        XCTAssertTrue(net.rawOut.contains { if case .linkError? = $0.body { return true } else { return false } })
        _ = link
    }

    func testEnvelopeBeforeRegisterIsRefused() {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false)
        let (_, link) = net.rawLink(to: "root")
        var frame = Dagent_Frame()
        var e = Dagent_Envelope()
        e.dst = "root"
        frame.envelope = e
        var bytes = ByteBufferAllocator().buffer(capacity: 64)
        try! FrameCodec.encode(frame, into: &bytes)
        bytes.moveReaderIndex(forwardBy: 4)
        net.cores["root"]!.receive(frameBody: bytes, from: link, nowNs: net.nowNs)
        net.pump()
        XCTAssertTrue(net.closes.contains { $0.reason.contains("has not registered") })
        XCTAssertTrue(net.inbox("root").isEmpty)
    }
}

/// Parent and child with different heartbeat intervals.
final class HeartbeatIntervalTests: XCTestCase {
    func testEachSideExpiresThePeerOnThePeersAnnouncedInterval() {
        let net = CoreNetwork()
        net.add("root", role: .root, hasParent: false) { $0.heartbeatIntervalNs = 200_000_000 }
        net.add("slow", role: .leaf, hasParent: true) { $0.heartbeatIntervalNs = 1_000_000_000 }
        net.connect("slow", to: "root")
        net.advance(seconds: 5, step: 0.05)
        XCTAssertTrue(net.closes.isEmpty, "a child beating every 1 s is alive to a 0.2 s parent: \(net.closes)")
        net.frozen.insert("slow")
        net.advance(seconds: 2.5, step: 0.05)
        XCTAssertNotNil(net.cores["root"]!.routes["slow"], "not before 3 × the child's 1 s interval")
        net.advance(seconds: 1.0, step: 0.05)
        XCTAssertNil(net.cores["root"]!.routes["slow"])
        XCTAssertTrue(net.closes.contains { $0.reason.contains("its heartbeat_interval=1s") })
    }
}
