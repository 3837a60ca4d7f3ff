import XCTest
import DAgentState

final class KVLeaseTests: XCTestCase {
    func testExpiryOnTickDeletesAttachedKeysWithEvents() {
        var m = KVStateMachine()
        XCTAssertEqual(m.apply(.leaseGrant(id: 7, ttlMs: 1_000, now: 10_000)),
                       .ok(.lease(KVLease(id: 7, ttlMs: 1_000, expiresAtMs: 11_000), revision: 0)))
        m.put("svc/a", "1", lease: 7)
        m.put("svc/b", "2", lease: 7)
        m.put("plain", "3")
        XCTAssertEqual(m.leases.keys(of: 7), [bytes("svc/a"), bytes("svc/b")])
        XCTAssertEqual(m.apply(.tick(now: 10_999)), .ok(.ticked(nowMs: 10_999, expiredLeases: [], revision: 3)))
        XCTAssertNotNil(m.get(bytes("svc/a")))
        XCTAssertEqual(m.apply(.tick(now: 11_000)), .ok(.ticked(nowMs: 11_000, expiredLeases: [7], revision: 4)))
        XCTAssertNil(m.get(bytes("svc/a")))
        XCTAssertNil(m.get(bytes("svc/b")))
        XCTAssertNotNil(m.get(bytes("plain")))
        XCTAssertNil(m.leases.lease(7))
        let events = m.allEvents(from: 4)
        XCTAssertEqual(events.map(\.kind), [.delete, .delete])
        XCTAssertEqual(events.map(\.key), [bytes("svc/a"), bytes("svc/b")])
        XCTAssertEqual(events.map(\.revision), [4, 4])
        XCTAssertEqual(m.put("x", "y", lease: 7), .failed(.leaseNotFound(id: 7)))
    }

    func testSeveralLeasesExpireInExpiryThenIdOrderEachOneRevision() {
        var m = KVStateMachine()
        _ = m.apply(.leaseGrant(id: 3, ttlMs: 500, now: 0))
        _ = m.apply(.leaseGrant(id: 1, ttlMs: 500, now: 0))
        _ = m.apply(.leaseGrant(id: 2, ttlMs: 100, now: 0))
        _ = m.apply(.leaseGrant(id: 4, ttlMs: 100, now: 0))   // no keys: expires without a revision
        m.put("k3", "", lease: 3); m.put("k1", "", lease: 1); m.put("k2", "", lease: 2)
        XCTAssertEqual(m.apply(.tick(now: 1_000)), .ok(.ticked(nowMs: 1_000, expiredLeases: [2, 4, 1, 3], revision: 6)))
        XCTAssertEqual(m.allEvents(from: 4).map { "\($0.revision):\(String(decoding: $0.key, as: UTF8.self))" },
                       ["4:k2", "5:k1", "6:k3"])
        XCTAssertEqual(m.leases.count, 0)
    }

    func testKeepAliveExtendsAndClockNeverGoesBack() {
        var m = KVStateMachine()
        _ = m.apply(.leaseGrant(id: 1, ttlMs: 1_000, now: 5_000))
        m.put("k", "v", lease: 1)
        XCTAssertEqual(m.apply(.leaseKeepAlive(id: 1, now: 5_800)),
                       .ok(.lease(KVLease(id: 1, ttlMs: 1_000, expiresAtMs: 6_800), revision: 1)))
        _ = m.apply(.tick(now: 6_500))
        XCTAssertNotNil(m.get(bytes("k")))
        _ = m.apply(.tick(now: 100))                      // a new leader with a slow clock
        XCTAssertEqual(m.clockMs, 6_500)
        _ = m.apply(.tick(now: 6_800))
        XCTAssertNil(m.get(bytes("k")))
        XCTAssertEqual(m.apply(.leaseKeepAlive(id: 1, now: 7_000)), .failed(.leaseNotFound(id: 1)))
    }

    func testKeepAliveOfALeaseAlreadyDueExpiresIt() {
        var m = KVStateMachine()
        _ = m.apply(.leaseGrant(id: 1, ttlMs: 100, now: 0))
        m.put("k", "v", lease: 1)
        XCTAssertEqual(m.apply(.leaseKeepAlive(id: 1, now: 150)), .failed(.leaseNotFound(id: 1)))
        XCTAssertNil(m.get(bytes("k")))
        XCTAssertEqual(m.allEvents().last?.kind, .delete)
    }

    func testRevokeDeletesKeysAndUnknownLeaseFails() {
        var m = KVStateMachine()
        _ = m.apply(.leaseGrant(id: 9, ttlMs: 60_000, now: 0))
        m.put("a", "1", lease: 9)
        XCTAssertEqual(m.apply(.leaseRevoke(id: 9)), .ok(.leaseRevoked(id: 9, deletedKeys: [bytes("a")], revision: 2)))
        XCTAssertNil(m.get(bytes("a")))
        XCTAssertEqual(m.apply(.leaseRevoke(id: 9)), .failed(.leaseNotFound(id: 9)))
    }

    func testAutomaticIdsDuplicatesAndZeroTTL() {
        var m = KVStateMachine()
        guard case let .ok(.lease(l1, _)) = m.apply(.leaseGrant(id: 0, ttlMs: 10, now: 0)) else { return XCTFail() }
        XCTAssertEqual(l1.id, 1)
        _ = m.apply(.leaseGrant(id: 2, ttlMs: 10, now: 0))
        guard case let .ok(.lease(l3, _)) = m.apply(.leaseGrant(id: 0, ttlMs: 10, now: 0)) else { return XCTFail() }
        XCTAssertEqual(l3.id, 3)
        XCTAssertEqual(m.apply(.leaseGrant(id: 2, ttlMs: 10, now: 0)), .failed(.leaseExists(id: 2)))
        XCTAssertEqual(m.apply(.leaseGrant(id: 5, ttlMs: 0, now: 0)), .failed(.invalidArgument("lease ttlMs must be > 0")))
        // A huge TTL saturates instead of overflowing.
        guard case let .ok(.lease(big, _)) = m.apply(.leaseGrant(id: 6, ttlMs: .max, now: 5)) else { return XCTFail() }
        XCTAssertEqual(big.expiresAtMs, .max)
    }

    func testPutMovesOrDetachesAKeysLease() {
        var m = KVStateMachine()
        _ = m.apply(.leaseGrant(id: 1, ttlMs: 100, now: 0))
        _ = m.apply(.leaseGrant(id: 2, ttlMs: 1_000, now: 0))
        m.put("moved", "x", lease: 1)
        m.put("moved", "x", lease: 2)
        m.put("freed", "x", lease: 1)
        m.put("freed", "y")
        XCTAssertEqual(m.leases.keys(of: 1), [])
        _ = m.apply(.tick(now: 500))
        XCTAssertNotNil(m.get(bytes("moved")))
        XCTAssertNotNil(m.get(bytes("freed")))
        _ = m.apply(.tick(now: 1_000))
        XCTAssertNil(m.get(bytes("moved")))
        XCTAssertNotNil(m.get(bytes("freed")))
    }

    func testDeletedKeyIsDetachedFromItsLease() {
        var m = KVStateMachine()
        _ = m.apply(.leaseGrant(id: 1, ttlMs: 100, now: 0))
        m.put("k", "x", lease: 1)
        _ = m.apply(.delete(key: bytes("k")))
        m.put("k", "again")
        let revision = m.revision
        _ = m.apply(.tick(now: 100))
        XCTAssertEqual(m.value("k"), "again")
        XCTAssertEqual(m.revision, revision, "expiring a lease with no keys is no revision")
    }
}
