import DAgentDeploy
import XCTest

/// The supervisor state machine, driven by hand with a fake clock: no processes.
final class ProcessMachineTests: XCTestCase {
    func spec(_ restart: RestartPolicy = .always, initial: Double = 0.5, max: Double = 4, crashLoopAfter: Int = 3, maxRestarts: Int = 0) -> ProcessSpec {
        var s = ProcessSpec.defaults(name: "p", agent: "a1", cwd: "/")
        s.run = .shell("prog")
        s.restart = restart
        s.backoff = Backoff(initial: initial, max: max)
        s.crashLoopAfter = crashLoopAfter
        s.maxRestarts = maxRestarts
        s.minUptime = 1
        s.stopTimeout = 10
        return s
    }

    func testStartsWhenDependenciesAreReady() {
        var m = ProcessMachine(spec: spec())
        XCTAssertEqual(m.state, .waiting)
        XCTAssertEqual(m.tick(now: 0), [])
        XCTAssertEqual(m.dependenciesReady(now: 0), [.spawn])
        XCTAssertEqual(m.spawned(pid: 10, now: 0), [])
        XCTAssertEqual(m.state, .running)
        XCTAssertEqual(m.pid, 10)
        XCTAssertEqual(m.restarts, 0)
        XCTAssertEqual(m.dependenciesReady(now: 1), [])   // not twice
    }

    func testAKillAfterAStableRunRestartsAtOnce() {
        var m = ProcessMachine(spec: spec())
        _ = m.dependenciesReady(now: 0)
        _ = m.spawned(pid: 10, now: 0)
        XCTAssertEqual(m.exited(.signaled(9), now: 30), [.spawn])
        XCTAssertEqual(m.lastExit, .signaled(9))
        _ = m.spawned(pid: 11, now: 30)
        XCTAssertEqual(m.restarts, 1)
        XCTAssertEqual(m.state, .running)
    }

    func testQuickExitsBackOffExponentiallyIntoCrashLoop() {
        var m = ProcessMachine(spec: spec(initial: 0.5, max: 4, crashLoopAfter: 3))
        _ = m.dependenciesReady(now: 0)
        var now = 0.0
        var delays: [Double] = []
        var states: [ProcessState] = []
        _ = m.spawned(pid: 1, now: now)
        for i in 0..<6 {
            now += 0.1   // it exits at once
            let effects = m.exited(.exited(1), now: now)
            states.append(m.state)
            guard case .wake(let at)? = effects.first else { return XCTFail("no wake: \(effects)") }
            delays.append(at - now)
            XCTAssertEqual(m.tick(now: at - 0.01), [.wake(at: at)], "not before its time")
            now = at
            XCTAssertEqual(m.tick(now: now), [.spawn])
            _ = m.spawned(pid: Int32(2 + i), now: now)
        }
        XCTAssertEqual(delays.map { ($0 * 1000).rounded() / 1000 }, [0.5, 1, 2, 4, 4, 4])
        XCTAssertEqual(states, [.backoff, .backoff, .crashLoop, .crashLoop, .crashLoop, .crashLoop])
        XCTAssertEqual(m.state, .crashLoop, "still shown as crash-loop while the new run is young")
        XCTAssertEqual(m.restarts, 6)
        // A run that lasts min_uptime ends the crash loop and resets the backoff.
        XCTAssertEqual(m.tick(now: now + 1.5), [])
        XCTAssertEqual(m.state, .running)
        XCTAssertEqual(m.exited(.exited(1), now: now + 20), [.spawn])
    }

    func testOnFailureAndNoPolicies() {
        var m = ProcessMachine(spec: spec(.onFailure))
        _ = m.dependenciesReady(now: 0)
        _ = m.spawned(pid: 1, now: 0)
        XCTAssertEqual(m.exited(.exited(0), now: 5), [])
        XCTAssertEqual(m.state, .exited)
        var f = ProcessMachine(spec: spec(.onFailure))
        _ = f.dependenciesReady(now: 0)
        _ = f.spawned(pid: 1, now: 0)
        XCTAssertEqual(f.exited(.exited(3), now: 5), [.spawn])
        var n = ProcessMachine(spec: spec(.never))
        _ = n.dependenciesReady(now: 0)
        _ = n.spawned(pid: 1, now: 0)
        XCTAssertEqual(n.exited(.signaled(9), now: 5), [])
        XCTAssertEqual(n.state, .failed)
        // `up` again starts an ended process.
        XCTAssertEqual(n.start(now: 6), [.wake(at: 6)])
        XCTAssertEqual(n.state, .waiting)
        XCTAssertEqual(n.dependenciesReady(now: 6), [.spawn])
    }

    func testMaxRestartsGivesUp() {
        var m = ProcessMachine(spec: spec(initial: 0.1, maxRestarts: 2))
        _ = m.dependenciesReady(now: 0)
        _ = m.spawned(pid: 1, now: 0)
        var now = 0.0
        for _ in 0..<2 {
            now += 0.05
            _ = m.exited(.exited(1), now: now)
            now += 10
            XCTAssertEqual(m.tick(now: now), [.spawn])
            _ = m.spawned(pid: 2, now: now)
        }
        XCTAssertEqual(m.exited(.exited(1), now: now + 0.05), [])
        XCTAssertEqual(m.state, .failed)
        XCTAssertEqual(m.restarts, 2)
    }

    func testSpawnFailuresCountAsQuickExits() {
        var m = ProcessMachine(spec: spec(initial: 1, crashLoopAfter: 2))
        _ = m.dependenciesReady(now: 0)
        XCTAssertEqual(m.exited(.spawnFailed("'nope' not found"), now: 0), [.wake(at: 1)])
        XCTAssertEqual(m.state, .backoff)
        XCTAssertEqual(m.tick(now: 1), [.spawn])
        XCTAssertEqual(m.exited(.spawnFailed("'nope' not found"), now: 1), [.wake(at: 3)])
        XCTAssertEqual(m.state, .crashLoop)
        XCTAssertEqual(m.lastExit?.description, "could not start: 'nope' not found")
    }

    func testStopEscalatesToKill() {
        var m = ProcessMachine(spec: spec())
        _ = m.dependenciesReady(now: 0)
        _ = m.spawned(pid: 1, now: 0)
        XCTAssertEqual(m.stop(now: 5), [.signal(15), .wake(at: 15)])
        XCTAssertEqual(m.state, .stopping)
        XCTAssertEqual(m.stop(now: 6), [], "a second stop sends nothing more")
        XCTAssertEqual(m.tick(now: 14), [])
        XCTAssertEqual(m.tick(now: 15), [.signal(9)])
        XCTAssertEqual(m.exited(.signaled(9), now: 15.1), [])
        XCTAssertEqual(m.state, .stopped)
        XCTAssertEqual(m.tick(now: 100), [], "a stopped process is not restarted")
    }

    func testStopWhileInBackoffCancelsTheRestart() {
        var m = ProcessMachine(spec: spec())
        _ = m.dependenciesReady(now: 0)
        _ = m.spawned(pid: 1, now: 0)
        _ = m.exited(.exited(1), now: 0.1)
        XCTAssertEqual(m.stop(now: 0.2), [])
        XCTAssertEqual(m.state, .stopped)
        XCTAssertEqual(m.tick(now: 10), [])
    }

    func testRestartStopsThenStartsAgain() {
        var m = ProcessMachine(spec: spec())
        _ = m.dependenciesReady(now: 0)
        _ = m.spawned(pid: 1, now: 0)
        XCTAssertEqual(m.restart(now: 5), [.signal(15), .wake(at: 15)])
        XCTAssertEqual(m.exited(.signaled(15), now: 5.1), [.wake(at: 5.1)])
        XCTAssertEqual(m.state, .waiting)
        XCTAssertEqual(m.dependenciesReady(now: 5.1), [.spawn])
        _ = m.spawned(pid: 2, now: 5.2)
        XCTAssertEqual(m.restarts, 1)
    }

    func testAdoptedProcessThatVanishesIsRestarted() {
        var m = ProcessMachine(spec: spec())
        m.adopted(pid: 77, startedAt: -100, restarts: 4)
        XCTAssertEqual(m.state, .running)
        XCTAssertEqual(m.uptime(now: 0), 100)
        XCTAssertEqual(m.exited(.vanished, now: 0), [.spawn])
        _ = m.spawned(pid: 78, now: 0)
        XCTAssertEqual(m.restarts, 5)
    }

    func testBackoffDelays() {
        let b = Backoff(initial: 0.5, max: 30)
        XCTAssertEqual((0...8).map { b.delay(afterQuickExits: $0) }, [0, 0.5, 1, 2, 4, 8, 16, 30, 30])
    }

    func testSettledStates() {
        XCTAssertTrue(ProcessState.running.isSettled)
        XCTAssertTrue(ProcessState.crashLoop.isSettled)
        XCTAssertFalse(ProcessState.waiting.isSettled)
        XCTAssertFalse(ProcessState.backoff.isSettled)
    }
}
