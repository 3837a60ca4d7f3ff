import DAgentClusterSupport
import DAgentWire
import Foundation
import XCTest

/// Durable send queues under kill -9: what a node queued is written ahead, so a crash
/// loses nothing, and what was delivered is not sent again.
final class DurableQueueTests: XCTestCase {
    var c: Cluster!
    var root = 0, a1 = 0

    override func setUpWithError() throws {
        c = try Cluster(name)
        root = Cluster.freePort()
        a1 = Cluster.freePort()
    }

    override func tearDown() { c.shutdown() }

    func segmentSizes(_ dir: String) -> [Int] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".log") }.sorted().compactMap {
            (try? FileManager.default.attributesOfItem(atPath: "\(dir)/\($0)"))?[.size] as? Int
        }
    }

    func testKill9WithQueuedMessagesDeliversAllOnceAfterRestart() throws {
        let data = c.dir.appendingPathComponent("a1").path
        let agent = ["run", "--name", "a1", "--listen", c.addr(a1), "--parent", c.addr(root), "--durable", "--data", data]
        try c.start("a1", agent)
        c.waitFor("a1 listening") { c.tree(at: a1) != nil }
        // The parent is down: every message from the leaf queues at a1.
        let n = 12
        for i in 1...n {
            let payload = "msg\(i)-" + String(repeating: "x", count: i * 97)
            XCTAssertEqual(c.run(["send", "--via", c.addr(a1), "--to", "target", "--no-confirm", payload]).status, 0)
        }
        // A tree answer leaves a1 only after what was queued before it is on disk.
        c.waitFor("\(n) messages queued at a1") { c.tree(at: a1)?.queues.first?.depth == UInt32(n) }
        c.kill9("a1")
        _ = c.waitForExit("a1")
        try c.start("root", ["run", "--name", "root", "--listen", c.addr(root)])
        try c.start("target", ["recv", "--via", c.addr(root), "--name", "target", "--count", "\(n)"])
        c.waitFor("target registered") { c.names(at: root)?.contains("target") == true }
        try c.start("a1b", agent)
        XCTAssertEqual(c.waitForExit("target", timeout: 20), 0, c.allLogs())
        let got = c.output("target").split(separator: "\n").map { String($0.split(separator: " ").last!.split(separator: "-").first!) }
        XCTAssertEqual(got, (1...n).map { "msg\($0)" })
        XCTAssertTrue(c.log("a1b").contains("durable: replayed \(n) queued message(s)"), c.log("a1b"))
        // Once delivered, the log holds nothing live: its one segment is a bare header.
        let dir = data + "/queue"
        c.waitFor("the log truncated to its header") { segmentSizes(dir) == [29] }
        // Another crash and restart sends nothing again: the next message target sees is new.
        c.kill9("a1b")
        _ = c.waitForExit("a1b")
        try c.start("target2", ["recv", "--via", c.addr(root), "--name", "target2", "--count", "1"])
        try c.start("a1c", agent)
        c.waitFor("a1 back under root") { c.names(at: root)?.contains("a1") == true }
        c.waitFor("target2 registered") { c.names(at: root)?.contains("target2") == true }   // else the send below has no route yet
        XCTAssertFalse(c.log("a1c").contains("durable: replayed"), c.log("a1c"))
        XCTAssertEqual(c.run(["send", "--via", c.addr(a1), "--to", "target2", "fresh"]).status, 0, c.allLogs())
        XCTAssertEqual(c.waitForExit("target2", timeout: 10), 0, c.allLogs())
        XCTAssertTrue(c.output("target2").hasSuffix("fresh\n"), c.output("target2"))
    }

    func testTornTailIsTruncatedWithALogLine() throws {
        let data = c.dir.appendingPathComponent("a1").path
        let agent = ["run", "--name", "a1", "--listen", c.addr(a1), "--parent", c.addr(root), "--durable", "--data", data]
        try c.start("a1", agent)
        c.waitFor("a1 listening") { c.tree(at: a1) != nil }
        for i in 1...2 { XCTAssertEqual(c.run(["send", "--via", c.addr(a1), "--to", "target", "--no-confirm", "m\(i)"]).status, 0) }
        c.waitFor("2 queued") { c.tree(at: a1)?.queues.first?.depth == 2 }
        c.kill9("a1")
        _ = c.waitForExit("a1")
        let dir = data + "/queue"
        let seg = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".log") }.sorted().last!
        let h = FileHandle(forWritingAtPath: "\(dir)/\(seg)")!
        h.seekToEndOfFile()
        h.write(Data([0xde, 0xad, 0xbe, 0xef, 0x30, 0, 0, 0, 2, 1]))   // a record cut short by the crash
        h.closeFile()
        try c.start("root", ["run", "--name", "root", "--listen", c.addr(root)])
        try c.start("target", ["recv", "--via", c.addr(root), "--name", "target", "--count", "2"])
        c.waitFor("target registered") { c.names(at: root)?.contains("target") == true }
        try c.start("a1b", agent)
        XCTAssertEqual(c.waitForExit("target", timeout: 20), 0, c.allLogs())
        XCTAssertTrue(c.log("a1b").contains("durable: truncated a torn or corrupt tail of \(dir)/\(seg)"), c.log("a1b"))
        XCTAssertTrue(c.log("a1b").contains("10 byte(s) dropped, 3 intact record(s) kept"), c.log("a1b"))
    }
}
