import XCTest
import DAgentState

final class KVWatchTests: XCTestCase {
    private func deliveredEvents(_ deliveries: [WatchHub.Delivery], to id: UInt64) -> [KVEvent] {
        deliveries.flatMap { d -> [KVEvent] in
            if case let .events(wid, events, _) = d, wid == id { return events }
            return []
        }
    }

    func testEveryChangeExactlyOnceInOrder() {
        var m = KVStateMachine()
        var hub = WatchHub()
        let all = hub.add(prefix: [], fromRevision: 1)
        var rng = StateTestRNG(seed: 7)
        var received: [KVEvent] = []
        for i in 0 ..< 500 {
            let key = bytes("k\(Int.random(in: 0 ..< 20, using: &rng))")
            switch Int.random(in: 0 ..< 4, using: &rng) {
            case 0: _ = m.apply(.delete(key: key))
            case 1: _ = m.apply(.deleteRange(prefix: bytes("k1")))
            default: _ = m.apply(.put(key: key, value: bytes("\(i)"), lease: nil))
            }
            received += deliveredEvents(hub.collect(from: m), to: all)
        }
        XCTAssertEqual(received, m.allEvents())
        XCTAssertEqual(Set(received.map(\.revision)).count, Int(m.revision), "every revision delivered")
        XCTAssertEqual(received.map(\.revision), received.map(\.revision).sorted())
        XCTAssertEqual(hub.watcher(all)?.nextRevision, m.revision + 1)
        XCTAssertTrue(hub.collect(from: m).isEmpty, "nothing is delivered twice")
    }

    func testResumeFromLastSeenRevisionPlusOne() {
        var m = KVStateMachine()
        for i in 1 ... 10 { m.put("k\(i % 3)", "\(i)") }
        let full = m.allEvents()
        let seen = full[3].revision
        XCTAssertEqual(m.allEvents(from: seen + 1), Array(full[4...]))
        var hub = WatchHub()
        let id = hub.add(prefix: [], fromRevision: seen + 1)
        XCTAssertEqual(hub.collect(from: m), [.events(watchID: id, events: Array(full[4...]), nextRevision: 11)])
        // From the future: nothing yet, then the change.
        XCTAssertEqual(m.events(prefix: [], fromRevision: 50), .events([], nextRevision: 50))
    }

    func testCompactedHistory() {
        var m = KVStateMachine(config: KVStateConfig(historyRetention: 10))
        var hub = WatchHub()
        let slow = hub.add(prefix: [], fromRevision: 1)
        for i in 1 ... 25 { m.put("k", "\(i)") }
        XCTAssertEqual(m.history.compactRevision, 15)
        XCTAssertEqual(m.events(prefix: [], fromRevision: 1), .compacted(compactRevision: 15))
        XCTAssertEqual(m.events(prefix: [], fromRevision: 15), .compacted(compactRevision: 15))
        XCTAssertEqual(m.allEvents(from: 16).map(\.revision), Array(16 ... 25))
        XCTAssertEqual(hub.collect(from: m), [.compacted(watchID: slow, compactRevision: 15)])
        XCTAssertNil(hub.watcher(slow), "a compacted watcher is removed")
        let failure: StateFailure = .keyNotFound(key: [])
        XCTAssertFalse(failure.description.isEmpty)
    }

    func testEvictionDropsWholeRevisions() {
        var m = KVStateMachine(config: KVStateConfig(historyRetention: 3))
        for i in 0 ..< 5 { m.put("p/\(i)", "x") }                 // revisions 1...5
        _ = m.apply(.deleteRange(prefix: bytes("p/")))            // revision 6, five events
        XCTAssertEqual(m.history.compactRevision, 6)
        XCTAssertEqual(m.history.count, 0)
        XCTAssertEqual(m.events(prefix: [], fromRevision: 7), .events([], nextRevision: 7))
        m.put("q", "1")
        XCTAssertEqual(m.allEvents(from: 7).count, 1)
    }

    func testNoSpuriousEvents() {
        var m = KVStateMachine()
        _ = m.apply(.leaseGrant(id: 1, ttlMs: 100_000, now: 0))
        m.put("a", "1")
        _ = m.apply(.lock(name: "l", owner: "x", lease: 1))
        var hub = WatchHub()
        let id = hub.add(prefix: [], fromRevision: m.revision + 1)
        let noops: [StateCommand] = [
            .txn(KVTxn(compares: [KVCompare(key: bytes("a"), .missing)], success: [.put(key: bytes("a"), value: [], lease: nil)])),
            .delete(key: bytes("missing")),
            .deleteRange(prefix: bytes("none/")),
            .compareAndSet(key: bytes("a"), expected: .value(bytes("wrong")), value: [], lease: nil),
            .put(key: bytes("b"), value: [], lease: 42),
            .get(key: bytes("a")), .range(prefix: [], limit: 0),
            .lock(name: "l", owner: "y", lease: 1), .lock(name: "l", owner: "x", lease: 1), .unlock(name: "l", owner: "y"),
            .leaseGrant(id: 2, ttlMs: 10, now: 1), .leaseKeepAlive(id: 1, now: 2), .tick(now: 3),
            .registerName(name: "n", session: 1, replica: 1, agent: "ag"), .releaseAllFor(.agent("ag")),
        ]
        for c in noops {
            _ = m.apply(c)
            XCTAssertEqual(hub.collect(from: m), [], "\(c)")
        }
        XCTAssertEqual(m.revision, 2)
        XCTAssertEqual(hub.watcher(id)?.nextRevision, 3)
    }

    func testPrefixIsolationAndNoStateDump() {
        var m = KVStateMachine()
        m.put("a/existing", "old")
        var hub = WatchHub()
        let a = hub.add(prefix: bytes("a/"), fromRevision: m.revision + 1)
        let b = hub.add(prefix: bytes("b/"), fromRevision: m.revision + 1)
        XCTAssertEqual(hub.collect(from: m), [], "a new watch gets no dump of existing keys")
        m.put("ab", "not under a/")
        m.put("b/1", "x")
        m.put("a/1", "y")
        let deliveries = hub.collect(from: m)
        XCTAssertEqual(deliveredEvents(deliveries, to: a).map(\.key), [bytes("a/1")])
        XCTAssertEqual(deliveredEvents(deliveries, to: b).map(\.key), [bytes("b/1")])
        XCTAssertEqual(hub.watcher(a)?.nextRevision, 5)
        XCTAssertTrue(hub.remove(a))
        m.put("a/2", "z")
        XCTAssertEqual(hub.collect(from: m), [])
    }

    func testDeliveryLimitNeverSplitsARevision() {
        var m = KVStateMachine()
        var hub = WatchHub(maxEventsPerDelivery: 2)
        let id = hub.add(prefix: [], fromRevision: 1)
        for i in 0 ..< 3 { m.put("p/\(i)", "x") }
        _ = m.apply(.deleteRange(prefix: bytes("p/")))   // revision 4 with three events
        m.put("z", "1")
        var batches: [[Int64]] = []
        while true {
            let d = hub.collect(from: m)
            if d.isEmpty { break }
            batches.append(deliveredEvents(d, to: id).map(\.revision))
        }
        XCTAssertEqual(batches, [[1, 2], [3, 4, 4, 4], [5]])
    }

    func testEventsCarryPrevValueAndMetadata() {
        var m = KVStateMachine()
        _ = m.apply(.leaseGrant(id: 3, ttlMs: 100, now: 0))
        m.put("k", "1")
        m.put("k", "2", lease: 3)
        _ = m.apply(.delete(key: bytes("k")))
        XCTAssertEqual(m.allEvents(), [
            KVEvent(kind: .put, key: bytes("k"), value: bytes("1"), revision: 1, createRevision: 1, version: 1, lease: nil, prevValue: nil),
            KVEvent(kind: .put, key: bytes("k"), value: bytes("2"), revision: 2, createRevision: 1, version: 2, lease: 3, prevValue: bytes("1")),
            KVEvent(kind: .delete, key: bytes("k"), value: [], revision: 3, createRevision: 0, version: 0, lease: nil, prevValue: bytes("2")),
        ])
    }
}
