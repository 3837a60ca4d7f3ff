import DAgentClusterSupport
import DAgentWire
import Foundation
import NIOCore
import XCTest
import DAgentNode
import DAgentRouting
import DAgentMsgq

/// Leaves on System V message queues under a real agent process: brother p2p,
/// failures (kill -9 of a leaf, of the agent), large messages through
/// fragments, a full queue, garbage, and clean-up of the IPC objects.
/// Every test uses its own queue path (in its own temp directory), so the
/// ftok keys never collide with another run.
final class MsgqTests: XCTestCase {
    var c: Cluster!
    var path = ""
    var q: String { "msgq://\(path)" }

    override func setUpWithError() throws {
        c = try Cluster(name)
        path = c.dir.appendingPathComponent("agent.q").path
    }

    override func tearDown() {
        // Agents still running are killed with -9 and leave their queues: remove
        // them (the keys come from the path, which goes with the temp directory).
        let keys = try? MsgqKeys.forPath(path, create: false)
        c.shutdown()
        if let keys { Self.removeIPC(keys) }
    }

    static func removeIPC(_ keys: MsgqKeys) {
        for key in [keys.up, keys.down] {
            let id = msgget(key, 0)
            if id >= 0 { msgctl(id, IPC_RMID, nil) }
        }
        let shm = shmget(keys.table, 0, 0)
        if shm >= 0 { shmctl(shm, IPC_RMID, nil) }
    }

    /// What the agent at `path` sees (nil if it does not answer).
    func tree() -> Dagent_TreeReply? {
        try? TreeQuery.fetch(.msgq(path: path), timeout: 1, group: Cluster.group).wait()
    }

    func names() -> Set<String>? { tree().map { Set($0.names.map(\.name)) } }

    func startAgent(_ key: String = "agent", hb: String = "0.2", extra: [String] = [], yaml: String? = nil) throws {
        var args = ["run", "--name", "agent", "--msgq", path, "--heartbeat-interval", hb, "--echo"]
        if let yaml {
            let file = c.dir.appendingPathComponent("\(key).yaml")
            try yaml.write(to: file, atomically: true, encoding: .utf8)
            args += ["--config", file.path]
        }
        try c.start(key, args + extra)
        c.waitFor("agent serving \(q)") { tree() != nil }
    }

    func startLeaf(_ name: String, hb: String = "0.2", extra: [String] = []) throws {
        try c.start(name, ["run", "--name", name, "--parent", q, "--echo", "--heartbeat-interval", hb] + extra)
    }

    /// `session 0123…` from "child 'NAME' registered from … (session X, …)" lines of a log, in order.
    func sessions(of name: String, in log: String) -> [String] {
        log.split(separator: "\n").compactMap { line in
            guard line.contains("child '\(name)' registered"), let r = line.range(of: "(session ") else { return nil }
            return String(line[r.upperBound...].prefix(16))
        }
    }

    // MARK: tests

    /// 50 leaves, each sending requests to all 49 others and answering theirs.
    /// Every message goes brother to brother: the agent routes none of them.
    func testFiftyLeavesAllPairsBrotherP2P() throws {
        // 50 processes starting at once on a small machine: relaxed heartbeats,
        // so that nobody expires while everyone is busy.
        try startAgent(hb: "2", yaml: "msgq_send_timeout: 30\n")
        let n = 50, count = 4
        let all = (0..<n).map { "leaf\($0)" }
        for name in all {
            try c.start(name, ["mesh", "--via", q, "--name", name, "--peers", all.joined(separator: ","),
                               "--count", "\(count)", "--require-direct", "--timeout", "150", "--join-timeout", "60",
                               "--heartbeat-interval", "2"], executable: c.benchBinary)
        }
        var results: [[String: Any]] = []
        for name in all {
            let status = c.waitForExit(name, timeout: 180)
            XCTAssertEqual(status, 0, "\(name): \(c.log(name).suffix(2000))")
            let line = c.output(name).split(separator: "\n").last.map(String.init) ?? "{}"
            results.append((try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:])
        }
        let expected = (n - 1) * count
        for (name, r) in zip(all, results) {
            XCTAssertEqual(r["replies"] as? Int, expected, "\(name): \(r)")
            XCTAssertEqual(r["errors"] as? Int, 0, "\(name): \(r)")
            // Requests out and replies back, all straight onto brothers' channels.
            XCTAssertGreaterThanOrEqual(r["direct_out"] as? Int ?? 0, 2 * expected, "\(name): \(r)")
            XCTAssertGreaterThanOrEqual(r["direct_in"] as? Int ?? 0, 2 * expected, "\(name): \(r)")
        }
        // The agent was not a hop: it routed and delivered nothing.
        let t = try XCTUnwrap(tree())
        XCTAssertEqual(t.messagesRouted, 0)
        XCTAssertEqual(t.messagesDelivered, 0)
        XCTAssertEqual(t.msgq.first?.garbage, 0)
        let text = c.run(["tree", "--via", q])
        XCTAssertEqual(text.status, 0, text.err)
        XCTAssertTrue(text.out.contains("routed: 0  delivered: 0"), text.out)
        XCTAssertTrue(text.out.contains("msgq://\(path): leaves="), text.out)
    }

    /// A leaf killed with -9: what brothers still sent to it is purged from the
    /// shared queue when it expires, its name goes, and the brothers keep talking.
    func testKilledLeafIsExpiredAndPurgedWhileBrothersKeepTalking() throws {
        try startAgent()
        try startLeaf("a")
        try startLeaf("b")
        try startLeaf("c", hb: "1.5")   // expires 4.5 s after it goes silent: time to send to it
        c.waitFor("a, b, c registered") { names() == ["a", "b", "c"] }
        XCTAssertEqual(c.run(["request", "--via", q, "--to", "c", "hi c"]).out, "hi c\n")
        c.kill9("c")
        for i in 1...3 {
            let r = c.run(["send", "--via", q, "--to", "c", "--no-confirm", "to the dead \(i)"])
            XCTAssertEqual(r.status, 0, r.err)
        }
        c.waitFor("c expired", timeout: 20) { names() == ["a", "b"] }
        c.waitFor("leftovers for c purged") { c.log("agent").contains("still addressed to 'c'") }
        XCTAssertTrue(c.log("agent").contains("expired: nothing heard from 'c'"), c.log("agent"))
        c.waitFor("the shared queue is empty again") { tree()?.msgq.first?.down.messages == 0 }
        XCTAssertGreaterThanOrEqual(tree()?.msgq.first?.purged ?? 0, 3)
        XCTAssertEqual(c.run(["request", "--via", q, "--to", "a", "still here"]).out, "still here\n")
        XCTAssertEqual(c.run(["request", "--via", q, "--to", "b", "me too"]).out, "me too\n")
        let gone = c.run(["request", "--via", q, "--to", "c", "x"])
        XCTAssertEqual(gone.status, 1)
        XCTAssertTrue(gone.err.contains("no route to 'c'"), gone.err)
    }

    /// kill -9 of the agent, then a restart on the same path: the stale queues
    /// are reset, and the leaves notice, rejoin and reclaim their names with
    /// their sessions.
    func testAgentKilledAndRestartedLeavesRejoinWithTheirSessions() throws {
        try startAgent()
        try startLeaf("a")
        try startLeaf("b")
        c.waitFor("a and b registered") { names() == ["a", "b"] }
        let before = (sessions(of: "a", in: c.log("agent")), sessions(of: "b", in: c.log("agent")))
        XCTAssertEqual(before.0.count, 1)
        c.kill9("agent")
        let keys = try MsgqKeys.forPath(path, create: false)
        XCTAssertGreaterThanOrEqual(msgget(keys.up, 0), 0, "a killed agent leaves its queues behind")
        try startAgent("agent2")
        XCTAssertTrue(c.log("agent2").contains("reset stale message queues and name table left by a crashed agent"), c.log("agent2"))
        c.waitFor("a and b rejoined") { names() == ["a", "b"] }
        XCTAssertEqual(sessions(of: "a", in: c.log("agent2")), before.0, "a reclaimed its name with its session")
        XCTAssertEqual(sessions(of: "b", in: c.log("agent2")), before.1, "b reclaimed its name with its session")
        XCTAssertEqual(c.run(["request", "--via", q, "--to", "a", "after the restart"]).out, "after the restart\n")
        XCTAssertTrue(c.log("a").contains("registered 'a' with 'agent'"), c.log("a"))
    }

    /// A leaf killed with -9 and restarted at once with its session (`--data`)
    /// reclaims its name on the same channel before the agent expired the old one.
    func testRestartedLeafReclaimsItsNameAtOnce() throws {
        try startAgent()
        let data = c.dir.appendingPathComponent("l-data").path
        try startLeaf("l", hb: "5", extra: ["--data", data])   // slow heartbeats: the old link stays alive
        c.waitFor("l registered") { names() == ["l"] }
        // The agent lists l before l has its RegisterResult and saved its session: kill it only after.
        c.waitFor("l saved its session") { FileManager.default.fileExists(atPath: "\(data)/session") }
        c.kill9("l")
        try c.start("l2", ["run", "--name", "l", "--parent", q, "--echo", "--data", data])
        c.waitFor("l reclaimed its name") { c.log("agent").contains("name 'l' reclaimed with its session") }
        XCTAssertFalse(c.log("l2").contains("name taken"), c.log("l2"))
        XCTAssertEqual(c.run(["request", "--via", q, "--to", "l", "again"]).out, "again\n")
        XCTAssertEqual(sessions(of: "l", in: c.log("agent")).count, 2)
        XCTAssertEqual(Set(sessions(of: "l", in: c.log("agent"))).count, 1, "the same session both times")
    }

    /// 1 MiB (max_message_bytes) round trips in fragments, within the kernel's
    /// default queue size: brother to brother, and up through the agent.
    func testMebibyteRoundTripThroughFragments() throws {
        try startAgent(yaml: "msgq_queue_bytes: 16384\n")
        try startLeaf("echo")
        c.waitFor("echo registered") { names() == ["echo"] }
        let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)
        var rng = SystemRandomNumberGenerator()
        let payload = Data((0..<(1 << 20)).map { _ in letters.randomElement(using: &rng)! })
        let file = c.dir.appendingPathComponent("mib.txt")
        try payload.write(to: file)
        for target in ["echo", "agent"] {
            let r = c.run(["request", "--via", q, "--to", target, "--timeout", "30", "@\(file.path)"], timeout: 60)
            XCTAssertEqual(r.status, 0, r.err)
            XCTAssertEqual(r.out.utf8.count, (1 << 20) + 1, "\(target): payload and a newline")
            XCTAssertTrue(r.out.utf8.elementsEqual(payload + Data("\n".utf8)), "\(target): the bytes came back unchanged")
        }
        let over = c.run(["request", "--via", q, "--to", "echo", "@\(file.path)x"])
        XCTAssertEqual(over.status, 1)
    }

    /// A brother that stops reading fills the shared queue: the sender waits
    /// up to msgq_send_timeout, then gets `queue full` naming the limit.
    func testFullQueueGivesTheSenderAClearError() throws {
        try startAgent(yaml: "msgq_send_timeout: 0.5\nmsgq_queue_bytes: 16384\n")
        try c.start("slow", ["recv", "--via", q, "--name", "slow", "--echo", "--log-level", "info"])
        c.waitFor("slow registered") { names() == ["slow"] }
        c.signal("slow", SIGSTOP)
        let file = c.dir.appendingPathComponent("big.txt")
        try Data(repeating: 0x62, count: 200_000).write(to: file)
        let start = Date()
        let r = c.run(["send", "--via", q, "--to", "slow", "--timeout", "10", "@\(file.path)"])
        XCTAssertEqual(r.status, 1, r.out)
        XCTAssertTrue(r.err.contains("queue full"), r.err)
        XCTAssertTrue(r.err.contains("msgq_send_timeout=0.50s"), r.err)
        XCTAssertTrue(r.err.contains("brother 'slow' is not reading"), r.err)
        XCTAssertLessThan(Date().timeIntervalSince(start), 8)
        c.signal("slow", SIGCONT)
        c.waitFor("the queue drains once slow reads again") { tree()?.msgq.first?.down.messages == 0 }
        // slow may first notice that its agent went quiet and re-register.
        c.waitFor("slow answers again") { c.run(["request", "--via", q, "--to", "slow", "awake"]).out == "awake\n" }
    }

    /// Joining a queue nobody serves fails with the reason, not just a timeout.
    func testJoiningWithoutAnAgentSaysWhy() throws {
        let missing = c.dir.appendingPathComponent("nobody.q").path
        // --join-timeout 1: the first attempt already fails with the reason; no need to wait the default 5 s.
        let r = c.run(["send", "--via", "msgq://\(missing)", "--to", "x", "--join-timeout", "1", "hi"])
        XCTAssertEqual(r.status, 1)
        let last = r.err.split(separator: "\n").last.map(String.init) ?? ""
        XCTAssertTrue(last.hasPrefix("dagent: not ready: could not register"), r.err)
        XCTAssertTrue(last.contains("no agent at msgq://\(missing): the path does not exist"), r.err)
    }

    /// A clean stop removes every queue and the name table: ipcs shows
    /// nothing new afterwards. While running they are mode 0600.
    func testCleanShutdownLeavesNoIPCObjects() throws {
        let before = ipcs()
        try startAgent()
        try startLeaf("a")
        c.waitFor("a registered") { names() == ["a"] }
        let keys = try MsgqKeys.forPath(path, create: false)
        let ours = [keys.up, keys.down, keys.table].map { String(format: "0x%08x", UInt32(bitPattern: $0)) }
        let running = ipcs().filter { line in ours.contains { line.hasPrefix($0) } }
        XCTAssertEqual(running.count, 3, "two queues and the table: \(running)")
        for line in running {
            XCTAssertEqual(line.split(separator: " ", omittingEmptySubsequences: true)[3], "600", line)
        }
        XCTAssertEqual(c.stop("a"), 0)
        XCTAssertEqual(c.stop("agent"), 0)
        let after = ipcs()
        XCTAssertTrue(after.filter { line in ours.contains { line.hasPrefix($0) } }.isEmpty, "left behind: \(after)")
        XCTAssertEqual(Set(after).subtracting(before), [], "IPC objects added by this test and still there")
        XCTAssertTrue(c.log("agent").contains("removed the message queues and the name table"), c.log("agent"))
    }

    /// A leaf that registers properly, then writes garbage, is dropped with
    /// the reason in the agent's log; garbage from nobody is dropped and logged.
    func testGarbageSendingLeafIsDropped() throws {
        try startAgent()
        try startLeaf("good")
        c.waitFor("good registered") { names() == ["good"] }
        let keys = try MsgqKeys.forPath(path, create: false)
        let up = msgget(keys.up, 0), down = msgget(keys.down, 0)
        XCTAssertGreaterThanOrEqual(up, 0)
        let channel = UInt64(0x1234_5678_9ABC)
        // Register as 'junk' by hand: a Register frame in dagent's queue framing.
        var register = Dagent_Frame()
        register.register.name = "junk"
        register.register.session = channel
        register.register.protocolVersion = WireConstants.protocolVersion
        var writer = FrameWriter()
        try writer.append(register)
        var messages: [MsgqOutMessage] = []
        MsgqPacker().pack(writer.take(allocator: ByteBufferAllocator()), sender: channel, incarnation: 7, into: &messages)
        for var m in messages {
            m.setType(Int(channel))
            XCTAssertEqual(m.bytes.withUnsafeReadableBytes { msgsnd(up, $0.baseAddress, m.textSize, IPC_NOWAIT) }, 0)
        }
        c.waitFor("junk registered") { names() == ["good", "junk"] }
        // Its RegisterResult waits on the shared queue under its channel.
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: 8 + 8192, alignment: 8)
        defer { scratch.deallocate() }
        c.waitFor("RegisterResult for junk") { msgrcv(down, scratch, 8192, Int(channel), IPC_NOWAIT) > 0 }
        // Now garbage, with its channel as the message type.
        var junk = [UInt8](repeating: 0, count: 8 + 64)
        withUnsafeBytes(of: Int(channel)) { junk.replaceSubrange(0..<8, with: $0) }
        for i in 8..<junk.count { junk[i] = UInt8(truncatingIfNeeded: i * 37) }
        XCTAssertEqual(junk.withUnsafeBytes { msgsnd(up, $0.baseAddress, 64, IPC_NOWAIT) }, 0)
        c.waitFor("junk dropped") { names() == ["good"] }
        c.waitFor("the reason logged") { c.log("agent").contains("closing link 'junk'") }
        XCTAssertTrue(c.log("agent").contains("garbage on the message queue: bad magic"), c.log("agent"))
        // Garbage from a channel nobody registered: dropped and logged.
        withUnsafeBytes(of: 4242) { junk.replaceSubrange(0..<8, with: $0) }
        XCTAssertEqual(junk.withUnsafeBytes { msgsnd(up, $0.baseAddress, 64, IPC_NOWAIT) }, 0)
        c.waitFor("unregistered garbage logged") { c.log("agent").contains("dropped a garbage message from channel") }
        XCTAssertEqual(c.run(["request", "--via", q, "--to", "good", "fine"]).out, "fine\n")
        XCTAssertGreaterThanOrEqual(tree()?.msgq.first?.garbage ?? 0, 2)
        // What the agent still had for junk is purged after the linger.
        c.waitFor("junk's leftovers purged") { tree()?.msgq.first?.down.messages == 0 }
    }

    /// `ipcs -q -m` lines that describe an object (key, id, owner, perms, ...).
    func ipcs() -> [String] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/ipcs")
        p.arguments = ["-q", "-m"]
        let out = Pipe()
        p.standardOutput = out
        try? p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init).filter { $0.hasPrefix("0x") }
    }
}
