import XCTest
import DAgentState

final class DirectoryTests: XCTestCase {
    func testRegisterLookupAndRefuseOtherSession() {
        var m = KVStateMachine()
        let entry = DirectoryEntry(name: "svc.a", session: 11, replica: 1, agent: "agent-1", epoch: 1)
        XCTAssertEqual(m.apply(.registerName(name: "svc.a", session: 11, replica: 1, agent: "agent-1")),
                       .ok(.registered(entry, previous: nil)))
        XCTAssertEqual(m.directory.lookup("svc.a"), entry)
        XCTAssertNil(m.directory.lookup("svc.b"))
        let refused = m.apply(.registerName(name: "svc.a", session: 12, replica: 2, agent: "agent-2"))
        XCTAssertEqual(refused, .failed(.nameTaken(name: "svc.a", holder: entry)))
        XCTAssertTrue(refused.failure!.description.contains("agent-1"), "the error names the holder")
        XCTAssertEqual(m.directory.lookup("svc.a"), entry)
        XCTAssertEqual(m.revision, 0, "the directory does not touch the key revision")
    }

    func testSameSessionReclaimsAndMoves() {
        var m = KVStateMachine()
        _ = m.apply(.registerName(name: "n", session: 5, replica: 1, agent: "a1"))
        let old = m.directory.lookup("n")!
        // Restarted node presents the same session: idempotent, same epoch.
        XCTAssertEqual(m.apply(.registerName(name: "n", session: 5, replica: 1, agent: "a1")),
                       .ok(.registered(old, previous: old)))
        XCTAssertEqual(m.directory.epoch, 1)
        // Same session under another agent/replica: the name moves, epoch advances.
        let moved = DirectoryEntry(name: "n", session: 5, replica: 2, agent: "a2", epoch: 2)
        XCTAssertEqual(m.apply(.registerName(name: "n", session: 5, replica: 2, agent: "a2")),
                       .ok(.registered(moved, previous: old)))
        XCTAssertEqual(m.directory.lookup("n"), moved)
    }

    func testReleaseNameChecksSession() {
        var m = KVStateMachine()
        _ = m.apply(.registerName(name: "n", session: 5, replica: 1, agent: "a"))
        let holder = m.directory.lookup("n")!
        XCTAssertEqual(m.apply(.releaseName(name: "n", session: 6)), .failed(.sessionMismatch(name: "n", holder: holder)))
        XCTAssertEqual(m.apply(.releaseName(name: "n", session: 5)), .ok(.released([holder])))
        XCTAssertNil(m.directory.lookup("n"))
        XCTAssertEqual(m.apply(.releaseName(name: "n", session: 5)), .failed(.nameNotFound(name: "n")))
        // Free again: anyone may take it.
        XCTAssertTrue(m.apply(.registerName(name: "n", session: 9, replica: 3, agent: "b")).isOK)
    }

    func testReleaseAllForAgentOrReplica() {
        var m = KVStateMachine()
        _ = m.apply(.registerName(name: "z", session: 1, replica: 1, agent: "a"))
        _ = m.apply(.registerName(name: "b", session: 2, replica: 1, agent: "a"))
        _ = m.apply(.registerName(name: "c", session: 3, replica: 2, agent: "b"))
        _ = m.apply(.registerName(name: "d", session: 4, replica: 1, agent: "c"))
        guard case let .ok(.released(gone)) = m.apply(.releaseAllFor(.agent("a"))) else { return XCTFail() }
        XCTAssertEqual(gone.map(\.name), ["b", "z"], "released in name order")
        guard case let .ok(.released(gone2)) = m.apply(.releaseAllFor(.replica(1))) else { return XCTFail() }
        XCTAssertEqual(gone2.map(\.name), ["d"])
        XCTAssertEqual(m.apply(.releaseAllFor(.agent("nobody"))), .ok(.released([])))
        XCTAssertEqual(m.directory.all.map(\.name), ["c"])
        XCTAssertEqual(m.directory.entries(heldBy: .replica(2)).map(\.agent), ["b"])
    }

    func testInvalidNames() {
        var m = KVStateMachine(config: KVStateConfig(maxKeyBytes: 4))
        XCTAssertEqual(m.apply(.registerName(name: "", session: 1, replica: 1, agent: "a")),
                       .failed(.invalidArgument("name must not be empty")))
        XCTAssertEqual(m.apply(.registerName(name: "toolong", session: 1, replica: 1, agent: "a")),
                       .failed(.limitExceeded(limit: "maxKeyBytes", value: 7, max: 4)))
        XCTAssertEqual(m.directory.count, 0)
    }
}
