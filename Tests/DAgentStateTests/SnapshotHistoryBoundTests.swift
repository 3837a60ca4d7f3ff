import XCTest
import DAgentState

/// `snapshotHistoryBytes`: a snapshot carries only the newest whole revisions of watch
/// history that fit, and a watch from before them on a restored replica gets `.compacted`.
final class SnapshotHistoryBoundTests: XCTestCase {
    func testSnapshotStaysBoundedAndOldWatchesAreCompacted() throws {
        let bound = 64 * 1024
        var m = KVStateMachine(config: KVStateConfig(snapshotHistoryBytes: bound))
        let value = bytes(String(repeating: "v", count: 4000))
        for i in 1 ... 200 { _ = m.apply(.put(key: bytes("k\(i % 10)"), value: value, lease: nil)) }
        // A transaction: several events in one revision, never split by the bound.
        _ = m.apply(.deleteRange(prefix: bytes("k")))
        XCTAssertEqual(m.history.count, 210, "the live replica keeps its whole history")
        let snap = m.snapshot()
        // State: no keys left. History: ~16 revisions of 4 KB fit, not 200 (800 KB), and never
        // more than the bound itself plus the fixed part.
        XCTAssertLessThan(snap.count, bound + 1024, "snapshot of \(snap.count) bytes")
        let r = try KVStateMachine(snapshot: snap, config: m.config)
        guard case let .compacted(point) = r.events(prefix: [], fromRevision: 1) else {
            return XCTFail("a watch from revision 1 must be compacted on the restored replica")
        }
        XCTAssertGreaterThan(point, 150)
        guard case let .events(events, next) = r.events(prefix: [], fromRevision: point + 1) else {
            return XCTFail("a watch inside the window resumes")
        }
        XCTAssertEqual(events, m.allEvents(from: point + 1))
        XCTAssertEqual(next, m.revision + 1)
        XCTAssertEqual(events.last?.revision, 201)
        XCTAssertEqual(events.filter { $0.revision == 201 }.count, 10, "the delete-range revision is carried whole")
        XCTAssertEqual(r.snapshot(), snap, "restoring and snapshotting again gives the same bytes")
    }

    func testAWholeRevisionLargerThanTheBoundIsCompactedAway() throws {
        var m = KVStateMachine(config: KVStateConfig(snapshotHistoryBytes: 100))
        _ = m.apply(.put(key: bytes("a"), value: bytes(String(repeating: "x", count: 500)), lease: nil))
        let r = try KVStateMachine(snapshot: m.snapshot(), config: m.config)
        XCTAssertEqual(r.history.count, 0)
        XCTAssertEqual(r.events(prefix: [], fromRevision: 1), .compacted(compactRevision: 1))
        XCTAssertEqual(r.events(prefix: [], fromRevision: 2), .events([], nextRevision: 2))
        XCTAssertEqual(r.get(bytes("a"))?.value.count, 500, "the state itself is whole")
    }

    func testTheDefaultIsSixteenMiB() {
        XCTAssertEqual(KVStateConfig().snapshotHistoryBytes, 16 << 20)
    }
}
