import DAgentClusterSupport
import DAgentWire
import Foundation
import XCTest

/// Malformed input and misbehaving peers: the node logs a clear reason, answers
/// where it can, drops only the offending link, and keeps serving everyone else.
final class BadInputTests: XCTestCase {
    var c: Cluster!
    var root = 0

    override func setUpWithError() throws {
        c = try Cluster(name)
        root = Cluster.freePort()
        let config = c.dir.appendingPathComponent("root.yaml")
        try """
        name: root
        listen: tcp://127.0.0.1:\(root)
        register_timeout: 1
        max_message_bytes: 100000
        max_frame_bytes: 200000
        slow_consumer_bytes: 262144
        echo: true
        """.write(to: config, atomically: true, encoding: .utf8)
        try c.start("root", ["run", "--config", config.path])
        try c.start("ep", ["run", "--name", "ep", "--parent", c.addr(root), "--echo"])
        c.waitFor("ep registered") { c.names(at: root) == ["ep"] }
    }

    override func tearDown() { c.shutdown() }

    func assertStillServing(file: StaticString = #filePath, line: UInt = #line) {
        let r = c.run(["request", "--via", c.addr(root), "--to", "ep", "ok"])
        XCTAssertEqual(r.out, "ok\n", r.err, file: file, line: line)
    }

    func testMalformedFrame() throws {
        let peer = try RawPeer(port: root)
        peer.write([0, 0, 0, 5, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        let error = peer.read { if case .linkError? = $0.body { return true } else { return false } }
        XCTAssertEqual(error?.linkError.error, .badFrame)
        XCTAssertTrue(peer.closedByPeer())
        XCTAssertTrue(c.log("root").contains("malformed frame of 5 bytes"), c.log("root"))
        assertStillServing()
    }

    func testTruncatedFrameThenHangup() throws {
        let peer = try RawPeer(port: root)
        peer.write([0, 0, 0, 100, 1, 2, 3])   // announces 100 bytes, sends 3, then goes away
        _ = peer
        assertStillServing()
    }

    func testFrameOverTheLimit() throws {
        let peer = try RawPeer(port: root)
        peer.write([0x00, 0x10, 0x00, 0x00])   // 1 MiB announced, max_frame_bytes=200000
        let error = peer.read { if case .linkError? = $0.body { return true } else { return false } }
        XCTAssertEqual(error?.linkError.error, .tooLarge)
        XCTAssertTrue(error!.linkError.reason.contains("max_frame_bytes=200000"), error!.linkError.reason)
        XCTAssertTrue(peer.closedByPeer())
        assertStillServing()
    }

    func testOversizedMessageGetsAnErrorAndTheLinkStays() throws {
        let peer = try RawPeer(port: root)
        XCTAssertTrue(peer.register("raw"))
        _ = peer.read { if case .registerResult? = $0.body { return true } else { return false } }
        var frame = Dagent_Frame()
        frame.envelope.src = "raw"
        frame.envelope.dst = "ep"
        frame.envelope.kind = .request
        frame.envelope.cookie = 5
        frame.envelope.hopLimit = 8
        frame.envelope.payload = Data(count: 150_000)
        XCTAssertTrue(peer.write(frame))
        let reply = peer.read { if case .envelope? = $0.body { return true } else { return false } }
        XCTAssertEqual(reply?.envelope.kind, .error)
        XCTAssertEqual(reply?.envelope.error, .tooLarge)
        XCTAssertEqual(reply?.envelope.cookie, 5)
        XCTAssertTrue(reply!.envelope.reason.contains("max_message_bytes=100000"))
        assertStillServing()
    }

    func testUnknownKindAndUnknownName() throws {
        let peer = try RawPeer(port: root)
        XCTAssertTrue(peer.register("raw"))
        _ = peer.read { if case .registerResult? = $0.body { return true } else { return false } }
        var frame = Dagent_Frame()
        frame.envelope.src = "raw"
        frame.envelope.dst = "ep"
        frame.envelope.kind = .UNRECOGNIZED(42)
        frame.envelope.hopLimit = 8
        XCTAssertTrue(peer.write(frame))
        var reply = peer.read { if case .envelope? = $0.body { return true } else { return false } }
        XCTAssertEqual(reply?.envelope.error, .unknownKind)
        frame.envelope.kind = .data
        frame.envelope.dst = "ghost"
        XCTAssertTrue(peer.write(frame))
        reply = peer.read { if case .envelope? = $0.body { return true } else { return false } }
        XCTAssertEqual(reply?.envelope.error, .noRoute)
        assertStillServing()
    }

    func testDuplicateNameFromRawPeer() throws {
        let peer = try RawPeer(port: root)
        XCTAssertTrue(peer.register("ep"))
        let result = peer.read { if case .registerResult? = $0.body { return true } else { return false } }
        XCTAssertEqual(result?.registerResult.error, .nameTaken)
        XCTAssertTrue(peer.closedByPeer())
        assertStillServing()
    }

    func testSilentPeerIsDroppedAfterRegisterTimeout() throws {
        let peer = try RawPeer(port: root)
        let error = peer.read { if case .linkError? = $0.body { return true } else { return false } }
        XCTAssertTrue(error?.linkError.reason.contains("did not register within register_timeout=1s") == true, "\(String(describing: error))")
        XCTAssertTrue(peer.closedByPeer())
        assertStillServing()
    }

    func testSlowConsumerIsCutOff() throws {
        // "sink" registers, then never reads again, with a tiny receive buffer.
        let sink = try RawPeer(port: root, receiveBuffer: 4096)
        XCTAssertTrue(sink.register("sink"))
        _ = sink.read { if case .registerResult? = $0.body { return true } else { return false } }
        let flooder = try RawPeer(port: root)
        XCTAssertTrue(flooder.register("flooder"))
        _ = flooder.read { if case .registerResult? = $0.body { return true } else { return false } }
        var frame = Dagent_Frame()
        frame.envelope.src = "flooder"
        frame.envelope.dst = "sink"
        frame.envelope.hopLimit = 8
        frame.envelope.payload = Data(count: 60_000)
        var buffer = ByteBufferAllocator().buffer(capacity: 70_000)
        try FrameCodec.encode(frame, into: &buffer)
        let bytes = buffer.readBytes(length: buffer.readableBytes)!
        // Far more than socket buffers plus slow_consumer_bytes=262144 can hold.
        for _ in 0..<400 {
            if !flooder.write(bytes) { break }
            if c.log("root").contains("slow consumer") { break }
        }
        c.waitFor("slow consumer log line") { c.log("root").contains("slow consumer") }
        XCTAssertTrue(c.log("root").contains("exceed slow_consumer_bytes=262144; cutting the link off"), c.log("root"))
        c.waitFor("sink withdrawn") { c.names(at: root)?.contains("sink") == false }
        assertStillServing()
    }
}

import NIOCore
import DAgentMsgq
