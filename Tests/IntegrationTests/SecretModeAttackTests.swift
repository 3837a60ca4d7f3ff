import DAgentClusterSupport
import DAgentMsgq
import DAgentNode
import DAgentWire
import Foundation
import NIOCore
import XCTest

/// Secret mode (the HMAC challenge-response) tried as an attacker would, with
/// real processes on loopback: what crosses the wire, replays, wrong secrets
/// both ways, a fake parent, tree queries, Raft peers. Each failed on the code
/// before (the secret travelled in clear in Register and was compared with ==,
/// tree queries were answered before registration).
final class SecretModeAttackTests: XCTestCase {
    var c: Cluster!
    let secret = "s3cret-cluster-key-\(UInt32.random(in: 0...UInt32.max))"
    var secretPath = ""

    override func setUpWithError() throws {
        c = try Cluster(name)
        secretPath = writeSecret("cluster.secret", secret)
    }

    override func tearDown() { c.shutdown() }

    func writeSecret(_ name: String, _ text: String) -> String {
        let path = c.dir.appendingPathComponent(name).path
        FileManager.default.createFile(atPath: path, contents: Data((text + "\n").utf8))
        chmod(path, 0o600)
        return path
    }

    func startRoot(_ port: Int, secret: Bool = true) throws {
        try c.start("root", ["run", "--name", "root", "--listen", c.addr(port)] + (secret ? ["--secret-file", secretPath] : []))
        c.waitFor("root listens") { (try? RawPeer(port: port)) != nil }
    }

    /// A child joins through a recording proxy: it registers, and neither the
    /// secret nor any part of it is ever in the bytes, in either direction.
    /// The bytes it sent, replayed on a new connection, do not register it.
    func testTheSecretNeverCrossesTheWireAndARecordedRegistrationCannotBeReplayed() throws {
        let root = Cluster.freePort()
        try startRoot(root)
        let proxy = try RecordingProxy(to: root)
        defer { proxy.stop() }
        try c.start("ep1", ["run", "--name", "ep1", "--parent", c.addr(proxy.port), "--secret-file", secretPath, "--echo"])
        c.waitFor("ep1 registered through the proxy") { c.names(at: root, secret: secret)?.contains("ep1") == true }
        let r = c.run(["request", "--via", c.addr(root), "--secret-file", secretPath, "--to", "ep1", "ping"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("ping"), r.out)
        let wire = proxy.allBytes
        XCTAssertGreaterThan(wire.count, 100)
        XCTAssertFalse(bytes(wire, contain: Array(secret.utf8)), "the secret crossed the wire")
        XCTAssertFalse(bytes(wire, contain: Array(secret.utf8.prefix(10))), "part of the secret crossed the wire")
        XCTAssertFalse(bytes(wire, contain: Array(secret.utf8.suffix(10))), "part of the secret crossed the wire")
        // The handshake happened on the wire: ep1 sent AuthHello first (frame field 30).
        let first = proxy.sent[0]
        var buffer = ByteBuffer(bytes: first)
        let hello = try FrameCodec.decode(&buffer, maxFrameBytes: 1 << 20)
        guard case .authHello? = hello?.body else { return XCTFail("first frame: \(String(describing: hello))") }

        // Replay: ep1 goes away, then its recorded bytes are sent on a new connection.
        let recorded = proxy.sent[0]
        _ = c.stop("ep1")
        c.waitFor("ep1 gone") { c.names(at: root, secret: secret)?.contains("ep1") == false }
        let replayer = try RawPeer(port: root)
        XCTAssertTrue(replayer.write(recorded))
        let answer = replayer.read { if case .linkError? = $0.body { return true } else { return false } }
        XCTAssertEqual(answer?.linkError.error, .unauthenticated)
        XCTAssertTrue(answer?.linkError.reason.contains("wrong proof of the cluster secret") == true, "\(String(describing: answer))")
        XCTAssertTrue(replayer.closedByPeer())
        XCTAssertEqual(c.names(at: root, secret: secret)?.contains("ep1"), false, "a replayed registration was accepted")
    }

    /// Wrong secret, no secret, and a parent without one: each side refuses
    /// the other with a message that says why, and nothing registers.
    func testWrongOrMissingSecretsAreRefusedBothWays() throws {
        let root = Cluster.freePort()
        try startRoot(root)
        let wrong = writeSecret("wrong.secret", "not-the-cluster-secret-at-all")
        let a = c.run(["send", "--via", c.addr(root), "--secret-file", wrong, "--name", "intruder", "--to", "root", "x"])
        XCTAssertNotEqual(a.status, 0)
        XCTAssertTrue(a.err.contains("did not prove it knows the cluster secret"), a.err)
        let b = c.run(["send", "--via", c.addr(root), "--name", "plain", "--to", "root", "x"])
        XCTAssertNotEqual(b.status, 0)
        XCTAssertTrue(b.err.contains("requires the cluster secret"), b.err)
        XCTAssertEqual(c.names(at: root, secret: secret), [])
        // A parent with no secret, and a child that requires one.
        let open = Cluster.freePort()
        try c.start("open", ["run", "--name", "open", "--listen", c.addr(open)])
        c.waitFor("open listens") { (try? RawPeer(port: open)) != nil }
        let d = c.run(["send", "--via", c.addr(open), "--secret-file", secretPath, "--name", "careful", "--to", "open", "x"])
        XCTAssertNotEqual(d.status, 0)
        XCTAssertTrue(d.err.contains("has no cluster secret configured"), d.err)
        XCTAssertEqual(c.names(at: open), [])
    }

    /// A fake parent that does not know the secret answers the child's hello
    /// with a made-up proof: the child refuses it and sends it nothing more:
    /// no Register, no proof of its own.
    func testAFakeParentIsRefusedByTheChildAndLearnsNothing() throws {
        let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(server) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let port = Cluster.freePort()
        addr.sin_port = UInt16(port).bigEndian
        var one: Int32 = 1
        setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        XCTAssertEqual(withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }, 0)
        XCTAssertEqual(listen(server, 4), 0)
        try c.start("victim", ["run", "--name", "victim", "--parent", c.addr(port), "--secret-file", secretPath])
        let fd = accept(server, nil, nil)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let fake = RawPeer(accepted: fd)
        let hello = fake.read { _ in true }
        guard case .authHello? = hello?.body else { return XCTFail("expected AuthHello, got \(String(describing: hello))") }
        var challenge = Dagent_Frame()
        challenge.authChallenge.nonce = Data((0..<32).map { _ in UInt8.random(in: 0...255) })
        challenge.authChallenge.proof = Data((0..<32).map { _ in UInt8.random(in: 0...255) })
        XCTAssertTrue(fake.write(challenge))
        var after: [Dagent_Frame] = []
        _ = fake.read { frame in
            after.append(frame)
            return false   // read until the child closes
        }
        XCTAssertTrue(after.allSatisfy { if case .linkError? = $0.body { return true } else { return false } }, "\(after)")
        XCTAssertFalse(after.contains { if case .register? = $0.body { return true } else { return false } })
        c.waitFor("the child says why") { c.log("victim").contains("did not prove it knows the cluster secret") }
    }

    /// Tree queries: refused before registration (with or without a secret),
    /// refused without the secret, answered with it; sessions never shown.
    func testUnauthenticatedTreeQueriesAreRefused() throws {
        let root = Cluster.freePort()
        try startRoot(root)
        let data = c.dir.appendingPathComponent("l1data").path
        try c.start("l1", ["run", "--name", "l1", "--parent", c.addr(root), "--secret-file", secretPath, "--data", data])
        c.waitFor("l1 saved its session") { FileManager.default.fileExists(atPath: data + "/session") }
        let session = try String(contentsOfFile: data + "/session", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(session.count, 32, "a 128-bit session")
        // Raw TreeRequest on a fresh connection: refused, no reply.
        let raw = try RawPeer(port: root)
        var ask = Dagent_Frame()
        ask.treeRequest.requestID = 1
        XCTAssertTrue(raw.write(ask))
        let answer = raw.read { if case .linkError? = $0.body { return true }; if case .treeReply? = $0.body { return true }; return false }
        XCTAssertEqual(answer?.linkError.error, .unauthenticated, "\(String(describing: answer))")
        // The CLI without the secret: refused, saying why.
        let no = c.run(["tree", "--via", c.addr(root)])
        XCTAssertNotEqual(no.status, 0)
        XCTAssertTrue(no.err.contains("requires the cluster secret"), no.err)
        // With it, and a name of its choosing.
        let yes = c.run(["tree", "--via", c.addr(root), "--secret-file", secretPath, "--name", "ops-console", "--json"])
        XCTAssertEqual(yes.status, 0, yes.err)
        XCTAssertTrue(yes.out.contains("\"l1\""), yes.out)
        let json = try JSONSerialization.jsonObject(with: Data(yes.out.utf8)) as? [String: Any]
        let listed = (json?["names"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        XCTAssertEqual(listed, ["l1"], "a query-only name is not in the tree (its link is listed): \(yes.out)")
        XCTAssertFalse(yes.out.lowercased().contains(session.lowercased()), yes.out)
        XCTAssertFalse(yes.out.contains("session"), yes.out)
        // Without a secret in the tree, an unregistered query is refused too.
        let open = Cluster.freePort()
        try c.start("open", ["run", "--name", "open", "--listen", c.addr(open)])
        c.waitFor("open listens") { (try? RawPeer(port: open)) != nil }
        let raw2 = try RawPeer(port: open)
        XCTAssertTrue(raw2.write(ask))
        let answer2 = raw2.read { if case .linkError? = $0.body { return true }; if case .treeReply? = $0.body { return true }; return false }
        XCTAssertTrue(answer2?.linkError.reason.contains("has not registered") == true, "\(String(describing: answer2))")
    }

    /// The start-up warning for a listener anyone on the network can reach.
    func testAnOpenListenerIsWarnedAbout() throws {
        let p1 = Cluster.freePort(), p2 = Cluster.freePort()
        try c.start("open", ["run", "--name", "open", "--listen", "tcp://0.0.0.0:\(p1)"])
        try c.start("closed", ["run", "--name", "closed", "--listen", "tcp://0.0.0.0:\(p2)", "--secret-file", secretPath])
        c.waitFor("open warns") { c.log("open").contains("with neither TLS nor a cluster secret") }
        c.waitFor("closed listens") { c.log("closed").contains("listening on tcp://0.0.0.0:\(p2)") }
        XCTAssertFalse(c.log("closed").contains("neither TLS nor a cluster secret"), c.log("closed"))
    }

    /// A root group in secret mode: the replicas authenticate each other
    /// (the group commits), and a PeerHello without the handshake is refused.
    func testRaftPeersAuthenticateAndAnImpostorIsRefused() throws {
        let ports = [Cluster.freePort(), Cluster.freePort()]
        let cluster = c.dir.appendingPathComponent("cluster.json")
        let members = ports.enumerated().map { i, p in
            #"{"stream_id":1,"node_id":\#(i + 1),"ip":"127.0.0.1","port":\#(p),"role":"\#(i == 0 ? "LEADER" : "FOLLOWER")"}"#
        }
        try "[\(members.joined(separator: ","))]".write(to: cluster, atomically: true, encoding: .utf8)
        for id in 1...2 {
            try c.start("r\(id)", ["run", "--raft", cluster.path, "--node-id", "\(id)", "--secret-file", secretPath,
                                   "--data", c.dir.appendingPathComponent("d\(id)").path])
        }
        c.waitFor("the group commits") {
            c.run(["state", "put", "--via", c.addr(ports[1]), "--secret-file", secretPath, "k", "v1", "--timeout", "1"]).status == 0
        }
        // @state only for authenticated peers: without the secret the one-shot cannot even register.
        let anonymous = c.run(["state", "get", "--via", c.addr(ports[1]), "k", "--timeout", "2"])
        XCTAssertNotEqual(anonymous.status, 0)
        XCTAssertTrue(anonymous.err.contains("requires the cluster secret"), anonymous.err)
        XCTAssertFalse(anonymous.out.contains("v1"), anonymous.out)
        let impostor = try RawPeer(port: ports[1])
        var hello = Dagent_Frame()
        hello.peerHello.service = "raft"
        hello.peerHello.streamID = 1
        hello.peerHello.nodeID = 1
        XCTAssertTrue(impostor.write(hello))
        let answer = impostor.read { if case .linkError? = $0.body { return true } else { return false } }
        XCTAssertEqual(answer?.linkError.error, .unauthenticated)
        XCTAssertTrue(impostor.closedByPeer())
        XCTAssertEqual(c.run(["state", "put", "--via", c.addr(ports[1]), "--secret-file", secretPath, "k", "v2", "--timeout", "3"]).status, 0)
        XCTAssertEqual(c.log("r2").components(separatedBy: "peer link from replica 1 up").count, 2, "the real link was replaced")
    }
}

/// The message-queue link: a same-user process that reads the name table
/// knows every leaf's channel, and used to take a leaf's name over with it
/// (the session was the channel number).
final class MsgqTakeoverTests: XCTestCase {
    var c: Cluster!
    var path = ""

    override func setUpWithError() throws {
        c = try Cluster(name)
        path = c.dir.appendingPathComponent("agent.q").path
    }

    override func tearDown() {
        let keys = try? MsgqKeys.forPath(path, create: false)
        c.shutdown()
        if let keys { MsgqTests.removeIPC(keys) }
    }

    func names() -> Set<String>? {
        (try? TreeQuery.fetch(.msgq(path: path), timeout: 1, group: Cluster.group).wait()).map { Set($0.names.map(\.name)) }
    }

    /// Writes frames onto the agent's up queue as if from `channel`/`incarnation`.
    func post(_ frames: [Dagent_Frame], channel: UInt64, incarnation: UInt32) throws {
        let keys = try MsgqKeys.forPath(path, create: false)
        let up = msgget(keys.up, 0)
        XCTAssertGreaterThanOrEqual(up, 0)
        var writer = FrameWriter()
        for f in frames { try writer.append(f) }
        var messages: [MsgqOutMessage] = []
        MsgqPacker().pack(writer.take(allocator: ByteBufferAllocator()), sender: channel, incarnation: incarnation, into: &messages)
        for var m in messages {
            m.setType(Int(channel))
            XCTAssertEqual(m.bytes.withUnsafeReadableBytes { msgsnd(up, $0.baseAddress, m.textSize, IPC_NOWAIT) }, 0)
        }
    }

    func register(_ name: String, session: [UInt8] = []) -> Dagent_Frame {
        var f = Dagent_Frame()
        f.register.name = name
        f.register.protocolVersion = WireConstants.protocolVersion
        f.register.sessionSecret = Data(session)
        return f
    }

    func testAChannelNumberFromTheNameTableTakesNothingOver() throws {
        try c.start("agent", ["run", "--name", "agent", "--msgq", path, "--heartbeat-interval", "0.2"])
        c.waitFor("agent serving") { names() != nil }
        try c.start("victim", ["recv", "--via", "msgq://\(path)", "--name", "victim", "--timeout", "60"])
        c.waitFor("victim registered") { names() == ["victim"] }
        let attachment = try MsgqAttachment.open(path: path, nowNs: NIODeadline.now().uptimeNanoseconds)
        defer { attachment.detach() }
        guard let channel = attachment.table.lookup("victim").channel else { return XCTFail("victim not in the name table") }
        // 1. A new connection on the victim's own channel: dropped, never a takeover.
        try post([register("victim")], channel: channel, incarnation: 4242)
        c.waitFor("the agent drops it") { c.log("agent").contains("belongs to live") }
        // 2. A new channel, presenting what the table shows as the session (the old scheme): name taken.
        var guess = [UInt8](repeating: 0, count: 16)
        withUnsafeBytes(of: channel.bigEndian) { guess.replaceSubrange(8..<16, with: $0) }
        try post([register("victim", session: guess)], channel: channel ^ 0x5555, incarnation: 7)
        c.waitFor("the agent refuses the name") { c.log("agent").contains("name 'victim' is already held by a live node") }
        XCTAssertEqual(names(), ["victim"])
        // The victim still gets its messages.
        let sent = c.run(["send", "--via", "msgq://\(path)", "--name", "sender", "--to", "victim", "still-mine"])
        XCTAssertEqual(sent.status, 0, sent.err)
        c.waitFor("victim received it") { c.output("victim").contains("still-mine") }
    }
}
