import XCTest
import DAgentState

final class StateSnapshotTests: XCTestCase {
    /// A machine with keys, leases, a lock, directory entries and compacted history.
    private func richMachine(retention: Int = 20) -> KVStateMachine {
        var m = KVStateMachine(config: KVStateConfig(historyRetention: retention))
        _ = m.apply(.leaseGrant(id: 1, ttlMs: 1_000, now: 100))
        _ = m.apply(.leaseGrant(id: 0, ttlMs: 9_000, now: 200))
        for i in 0 ..< 30 { m.put("k/\(i % 7)", "v\(i)", lease: i % 3 == 0 ? 1 : nil) }
        m.put("bin", "\u{0}\u{1}")
        _ = m.apply(.lock(name: "job", owner: "w1", lease: 2))
        _ = m.apply(.deleteRange(prefix: bytes("k/5")))
        _ = m.apply(.registerName(name: "svc", session: 3, replica: 1, agent: "ag"))
        _ = m.apply(.registerName(name: "alpha", session: 4, replica: 2, agent: "ag2"))
        return m
    }

    func testSnapshotRestoreRoundTripIsByteIdentical() throws {
        let m = richMachine()
        let snap = m.snapshot()
        XCTAssertEqual(m.snapshot(), snap, "snapshotting twice gives the same bytes")
        var r = KVStateMachine(config: KVStateConfig(historyRetention: 20))
        try r.restore(snap)
        XCTAssertEqual(r.snapshot(), snap)
        XCTAssertEqual(r.revision, m.revision)
        XCTAssertEqual(r.clockMs, m.clockMs)
        XCTAssertEqual(r.range(prefix: []).records, m.range(prefix: []).records)
        XCTAssertEqual(r.leases.all, m.leases.all)
        XCTAssertEqual(r.leases.keys(of: 1), m.leases.keys(of: 1))
        XCTAssertEqual(r.leases.nextID, m.leases.nextID)
        XCTAssertEqual(r.directory.all, m.directory.all)
        XCTAssertEqual(r.directory.epoch, m.directory.epoch)
        XCTAssertEqual(r.lockHolder("job"), m.lockHolder("job"))
        XCTAssertEqual(r.history.compactRevision, m.history.compactRevision)
        for from in Int64(0) ... m.revision + 2 {
            XCTAssertEqual(r.events(prefix: bytes("k/"), fromRevision: from), m.events(prefix: bytes("k/"), fromRevision: from))
        }
        XCTAssertNotEqual(m.history.compactRevision, 0, "the fixture exercises compaction")
    }

    func testRestoredMachineBehavesTheSame() throws {
        var a = richMachine()
        var b = try KVStateMachine(snapshot: a.snapshot(), config: a.config)
        let next: [StateCommand] = [
            .tick(now: 1_100),                                     // lease 1 expires: its keys go
            .leaseGrant(id: 0, ttlMs: 5, now: 1_100),              // auto id continues
            .lock(name: "job", owner: "w2", lease: 2),
            .put(key: bytes("new"), value: [], lease: 2),
            .registerName(name: "svc", session: 9, replica: 1, agent: "x"),
        ]
        for c in next { XCTAssertEqual(a.apply(c), b.apply(c), "\(c)") }
        XCTAssertEqual(a.snapshot(), b.snapshot())
    }

    func testRestoreIntoSmallerRetentionCompacts() throws {
        let m = richMachine(retention: 100)
        let r = try KVStateMachine(snapshot: m.snapshot(), config: KVStateConfig(historyRetention: 5))
        XCTAssertLessThanOrEqual(r.history.count, 5)
        XCTAssertGreaterThan(r.history.compactRevision, m.history.compactRevision)
        guard case .compacted = r.events(prefix: [], fromRevision: 1) else { return XCTFail() }
    }

    func testCorruptSnapshotsThrowAndLeaveStateAlone() {
        let snap = richMachine().snapshot()
        var target = KVStateMachine()
        target.put("mine", "1")
        let before = target.snapshot()
        XCTAssertThrowsError(try target.restore([])) { XCTAssertEqual($0 as? StateCodecError, .badMagic) }
        XCTAssertThrowsError(try target.restore(Array("XXXX".utf8) + [1]))
        XCTAssertThrowsError(try target.restore(snap + [0])) {
            guard case .trailingBytes = $0 as? StateCodecError else { return XCTFail("\($0)") }
        }
        // Every truncation fails cleanly.
        for n in 0 ..< snap.count {
            XCTAssertThrowsError(try target.restore(Array(snap[..<n])))
        }
        // Random corruption never traps; when it still decodes the state is self-consistent.
        var rng = StateTestRNG(seed: 99)
        for _ in 0 ..< 2_000 {
            var bad = snap
            for _ in 0 ..< Int.random(in: 1 ... 4, using: &rng) {
                bad[Int.random(in: 0 ..< bad.count, using: &rng)] = UInt8.random(in: 0 ... 255, using: &rng)
            }
            var probe = KVStateMachine()
            if (try? probe.restore(bad)) != nil {
                XCTAssertNoThrow(try KVStateMachine(snapshot: probe.snapshot()))
            }
        }
        XCTAssertEqual(target.snapshot(), before)
    }

    func testSnapshotRejectsImpossibleStates() {
        // A key attached to a lease the snapshot does not contain.
        var m = KVStateMachine()
        _ = m.apply(.leaseGrant(id: 1, ttlMs: 10, now: 0))
        m.put("k", "v", lease: 1)
        var snap = m.snapshot()
        // Layout after the header (magic 4, version 1, revision, clock, nextID, compact, epoch — 1 byte each
        // here) is the record count; the lease count follows the record. Zero the lease count.
        let recordStart = 4 + 1 + 5
        let recordLength = 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1   // count, key(2), value(2), 3 varints, flag, lease
        let leaseCountAt = recordStart + recordLength
        XCTAssertEqual(snap[leaseCountAt], 1)
        snap.replaceSubrange(leaseCountAt ..< leaseCountAt + 4, with: [0])
        XCTAssertThrowsError(try KVStateMachine(snapshot: snap)) {
            guard case let .inconsistent(why) = $0 as? StateCodecError else { return XCTFail("\($0)") }
            XCTAssertTrue(why.contains("unknown lease 1"), why)
        }
    }
}
