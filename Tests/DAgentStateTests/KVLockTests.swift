import XCTest
import DAgentState

final class KVLockTests: XCTestCase {
    private func machineWithLeases() -> KVStateMachine {
        var m = KVStateMachine()
        _ = m.apply(.leaseGrant(id: 1, ttlMs: 1_000, now: 0))
        _ = m.apply(.leaseGrant(id: 2, ttlMs: 5_000, now: 0))
        return m
    }

    func testAcquireContendRelease() {
        var m = machineWithLeases()
        guard case let .ok(.locked(info, rev)) = m.apply(.lock(name: "job", owner: "alice", lease: 1)) else { return XCTFail() }
        XCTAssertEqual(info, KVLockInfo(name: "job", owner: "alice", lease: 1, createRevision: 1))
        XCTAssertEqual(rev, 1)
        XCTAssertEqual(m.apply(.lock(name: "job", owner: "bob", lease: 2)), .failed(.lockHeld(info)))
        XCTAssertEqual(m.apply(.unlock(name: "job", owner: "bob")), .failed(.notLockOwner(name: "job", holder: "alice")))
        XCTAssertEqual(m.lockHolder("job"), info)
        XCTAssertEqual(m.apply(.unlock(name: "job", owner: "alice")), .ok(.unlocked(name: "job", revision: 2)))
        XCTAssertNil(m.lockHolder("job"))
        XCTAssertEqual(m.apply(.unlock(name: "job", owner: "alice")), .failed(.lockNotHeld(name: "job")))
        guard case let .ok(.locked(bobs, _)) = m.apply(.lock(name: "job", owner: "bob", lease: 2)) else { return XCTFail() }
        XCTAssertGreaterThan(bobs.createRevision, info.createRevision, "create revision works as a fencing token")
    }

    func testReacquireBySameOwnerIsIdempotent() {
        var m = machineWithLeases()
        _ = m.apply(.lock(name: "l", owner: "a", lease: 1))
        let rev = m.revision
        XCTAssertTrue(m.apply(.lock(name: "l", owner: "a", lease: 1)).isOK)
        XCTAssertEqual(m.revision, rev)
        // Moving to another lease is a write.
        guard case let .ok(.locked(info, _)) = m.apply(.lock(name: "l", owner: "a", lease: 2)) else { return XCTFail() }
        XCTAssertEqual(info.lease, 2)
        XCTAssertEqual(m.revision, rev + 1)
    }

    func testLockVanishesWhenItsLeaseExpires() {
        var m = machineWithLeases()
        _ = m.apply(.lock(name: "leader", owner: "n1", lease: 1))
        XCTAssertEqual(m.apply(.lock(name: "leader", owner: "n2", lease: 2)).failure,
                       .lockHeld(KVLockInfo(name: "leader", owner: "n1", lease: 1, createRevision: 1)))
        _ = m.apply(.tick(now: 1_000))
        XCTAssertNil(m.lockHolder("leader"))
        let last = m.allEvents().last!
        XCTAssertEqual(last.kind, .delete)
        XCTAssertEqual(last.key, KVStateMachine.lockKey("leader"))
        XCTAssertTrue(m.apply(.lock(name: "leader", owner: "n2", lease: 2)).isOK)
        XCTAssertEqual(m.lockHolder("leader")?.owner, "n2")
    }

    func testLockNeedsALiveLeaseAndValidNames() {
        var m = machineWithLeases()
        XCTAssertEqual(m.apply(.lock(name: "l", owner: "a", lease: 77)), .failed(.leaseNotFound(id: 77)))
        XCTAssertEqual(m.apply(.lock(name: "", owner: "a", lease: 1)), .failed(.invalidArgument("lock name must not be empty")))
        XCTAssertEqual(m.apply(.lock(name: "l", owner: "", lease: 1)), .failed(.invalidArgument("lock owner must not be empty")))
        XCTAssertEqual(m.revision, 0)
    }

    func testDeleteRangeSkipsLocksAndRevokeReleasesThem() {
        var m = machineWithLeases()
        _ = m.apply(.lock(name: "l", owner: "a", lease: 1))
        m.put("k", "v")
        guard case let .ok(.deleted(_, gone)) = m.apply(.deleteRange(prefix: [])) else { return XCTFail() }
        XCTAssertEqual(gone.map(\.key), [bytes("k")])
        XCTAssertNotNil(m.lockHolder("l"))
        _ = m.apply(.leaseRevoke(id: 1))
        XCTAssertNil(m.lockHolder("l"))
    }
}
