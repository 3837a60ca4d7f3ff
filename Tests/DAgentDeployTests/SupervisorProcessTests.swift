import DAgentDeploy
import DAgentTestSupport
import Foundation
import XCTest

/// The supervisor with real processes (sh, sleep): spawn, capture, restart, crash loop, stop, adopt.
final class SupervisorProcessTests: XCTestCase {
    final class Delegate: SupervisorDelegate, @unchecked Sendable {
        let lock = NSLock()
        var registered: Set<String> = []
        func checkRegistered(_ name: String, _ done: @escaping @Sendable (Bool) -> Void) { done(lock.withLock { registered.contains(name) }) }
        func supervisorChanged() {}
        func supervisorLog(_ message: String) {}
    }

    var dir = ""

    override func setUp() {
        dir = NSTemporaryDirectory() + "dagent-sup-\(getpid())-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func spec(_ name: String, _ run: String, restart: RestartPolicy = .always) -> ProcessSpec {
        var s = ProcessSpec.defaults(name: name, agent: "test", cwd: dir)
        s.run = .shell(run)
        s.restart = restart
        s.backoff = Backoff(initial: 0.05, max: 0.4)
        s.minUptime = 0.5
        s.stopTimeout = 2
        return s
    }

    func row(_ s: Supervisor, _ name: String) -> ProcessStatus? { s.snapshot().first { $0.name == name } }

    func testRunsCapturesAndRestartsAfterKill() throws {
        let d = Delegate()
        let s = Supervisor(directory: dir, owner: "test", baseEnvironment: ["GREETING": "hello"], delegate: d)
        s.start()
        s.apply([spec("p", "echo $GREETING from $DAGENT_NAME; exec sleep 30")])
        waitFor("p running") { row(s, "p")?.state == .running }
        let pid = try XCTUnwrap(row(s, "p")?.pid)
        waitFor("its output in the log") { (try? String(contentsOfFile: s.logPath("p"), encoding: .utf8))?.contains("hello from p") == true }
        kill(pid, SIGKILL)
        // The new pid and the restart count are published by separate updates: wait for both.
        waitFor("a new pid, counted as one restart") {
            row(s, "p")?.pid != nil && row(s, "p")?.pid != pid && row(s, "p")?.restarts == 1
        }
        XCTAssertEqual(row(s, "p")?.restarts, 1)
        XCTAssertEqual(row(s, "p")?.lastExit, "killed by SIGKILL")
        let stopped = expectation(description: "stopped")
        s.stopAll { stopped.fulfill() }
        wait(for: [stopped], timeout: 10)
        XCTAssertTrue(s.snapshot().isEmpty)
    }

    func testAProcessThatExitsAtOnceGoesIntoCrashLoopWithGrowingBackoff() {
        let s = Supervisor(directory: dir, owner: "test", baseEnvironment: [:], delegate: Delegate())
        s.start()
        s.apply([spec("bad", "echo oops >&2; exit 3")])
        waitFor("crash-loop") { row(s, "bad")?.state == .crashLoop }
        var delays: [Double] = []
        waitFor("the delay to reach its max", timeout: 20) {
            if let r = row(s, "bad"), r.pid == nil, let n = r.nextStartIn, r.state == .crashLoop {
                if delays.last.map({ n > $0 + 0.01 }) ?? true { delays.append(n) }
            }
            return delays.count >= 2 && (delays.last ?? 0) > 0.2
        }
        let r = row(s, "bad")!
        XCTAssertEqual(r.lastExit, "exit 3")
        XCTAssertTrue(r.logTail.contains("oops"), r.logTail)
        XCTAssertGreaterThanOrEqual(r.restarts, 3)
        s.stopAll {}
    }

    func testDependsOnWaitsForTheName() {
        let d = Delegate()
        let s = Supervisor(directory: dir, owner: "test", baseEnvironment: [:], delegate: d)
        s.start()
        var w = spec("w", "exec sleep 30")
        w.dependsOn = ["svc"]
        s.apply([w])
        waitFor("w waiting for svc") { row(s, "w")?.waitingFor == ["svc"] }
        XCTAssertEqual(row(s, "w")?.state, .waiting)
        d.lock.withLock { _ = d.registered.insert("svc") }
        waitFor("w running") { row(s, "w")?.state == .running }
        s.stopAll {}
    }

    func testApplyChangesOnlyWhatChanged() throws {
        let s = Supervisor(directory: dir, owner: "test", baseEnvironment: [:], delegate: Delegate())
        s.start()
        s.apply([spec("a", "exec sleep 30"), spec("b", "exec sleep 31")])
        waitFor("both running") { s.snapshot().filter { $0.state == .running }.count == 2 }
        let a = try XCTUnwrap(row(s, "a")?.pid), b = try XCTUnwrap(row(s, "b")?.pid)
        var b2 = spec("b", "exec sleep 31")
        b2.env["X"] = "1"
        s.apply([spec("a", "exec sleep 30"), b2, spec("c", "exec sleep 32")])
        waitFor("b restarted and c running") { row(s, "b")?.pid.map { $0 != b } == true && row(s, "c")?.state == .running }
        XCTAssertEqual(row(s, "a")?.pid, a)
        XCTAssertEqual(row(s, "a")?.restarts, 0)
        s.apply([spec("a", "exec sleep 30")])
        waitFor("b and c removed") { s.snapshot().map(\.name) == ["a"] }
        s.stopAll {}
    }

    func testASecondSupervisorAdoptsInsteadOfStartingAnother() throws {
        let first = Supervisor(directory: dir, owner: "test", baseEnvironment: [:], delegate: Delegate())
        first.start()
        first.apply([spec("p", "exec sleep 30")])
        waitFor("p running") { row(first, "p")?.state == .running }
        let pid = try XCTUnwrap(row(first, "p")?.pid)
        first.detach()   // as if the agent was killed: the process keeps running
        let second = Supervisor(directory: dir, owner: "test", baseEnvironment: [:], delegate: Delegate())
        second.start()
        XCTAssertEqual(row(second, "p")?.pid, pid)
        XCTAssertEqual(row(second, "p")?.adopted, true)
        second.apply([spec("p", "exec sleep 30")])
        usleep(200_000)
        XCTAssertEqual(row(second, "p")?.pid, pid, "not restarted: same command")
        // The adopted process dies: it is noticed and restarted.
        kill(pid, SIGKILL)
        waitFor("restarted after the adopted one vanished") { row(second, "p")?.pid.map { $0 != pid } == true }
        XCTAssertEqual(row(second, "p")?.lastExit, "gone (adopted; exit status unknown)")
        let done = expectation(description: "stopped")
        second.stopAll { done.fulfill() }
        wait(for: [done], timeout: 10)
        var st: Int32 = 0
        waitpid(pid, &st, WNOHANG)   // the first supervisor's child: reap it here
    }

    func testStopEscalatesToKillForAProcessIgnoringTerm() throws {
        let s = Supervisor(directory: dir, owner: "test", baseEnvironment: [:], delegate: Delegate())
        s.start()
        var p = spec("stubborn", "trap '' TERM; while true; do sleep 0.05; done")
        p.stopTimeout = 0.3
        s.apply([p])
        waitFor("running") { row(s, "stubborn")?.state == .running }
        let done = expectation(description: "stopped")
        s.stopAll { done.fulfill() }
        wait(for: [done], timeout: 10)
    }

    func testSpawnFailureIsReportedWithTheReason() {
        let s = Supervisor(directory: dir, owner: "test", baseEnvironment: [:], delegate: Delegate())
        s.start()
        var p = spec("nope", "")
        p.run = .argv(["definitely-not-a-program-\(getpid())"])
        s.apply([p])
        waitFor("failing") { row(s, "nope")?.lastExit.contains("not found on PATH") == true }
        s.stopAll {}
    }

    func testLogRotation() throws {
        let path = dir + "/r.log"
        try Data(repeating: 65, count: 5000).write(to: URL(fileURLWithPath: path))
        let log = LogFile(path: path, maxBytes: 4096, keep: 2)
        XCTAssertTrue(log.rotateIfNeeded())
        XCTAssertEqual(log.size, 0)
        XCTAssertEqual((try? FileManager.default.attributesOfItem(atPath: path + ".1")[.size] as? Int), 5000)
        try Data(repeating: 66, count: 5000).write(to: URL(fileURLWithPath: path))
        XCTAssertTrue(log.rotateIfNeeded())
        try Data(repeating: 67, count: 5000).write(to: URL(fileURLWithPath: path))
        XCTAssertTrue(log.rotateIfNeeded())
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path + ".2")).first, 66)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path + ".1")).first, 67)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".3"))
        XCTAssertFalse(log.rotateIfNeeded())
    }
}
