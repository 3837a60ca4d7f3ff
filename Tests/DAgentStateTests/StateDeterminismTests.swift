import XCTest
import DAgentState

/// Seeded random command stream that looks at a reference machine to make compares,
/// CAS revisions and lock owners plausible (so both branches of everything are exercised).
struct RandomCommandStream {
    var rng: StateTestRNG
    var now: UInt64 = 1_000

    init(seed: UInt64) { rng = StateTestRNG(seed: seed) }

    private mutating func pick<T>(_ items: [T]) -> T { items.randomElement(using: &rng)! }
    private mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0 ..< 100, using: &rng) < percent }

    private mutating func key() -> [UInt8] {
        switch Int.random(in: 0 ..< 10, using: &rng) {
        case 0 ..< 6: return bytes("a/\(Int.random(in: 0 ..< 15, using: &rng))")
        case 6 ..< 9: return bytes("b/\(Int.random(in: 0 ..< 10, using: &rng))")
        default: return bytes("c")
        }
    }

    private mutating func value() -> [UInt8] {
        (0 ..< Int.random(in: 0 ... 12, using: &rng)).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
    }

    private mutating func lease() -> UInt64? { chance(60) ? nil : UInt64.random(in: 0 ... 6, using: &rng) }

    private mutating func op(_ m: KVStateMachine) -> KVOp {
        switch Int.random(in: 0 ..< 6, using: &rng) {
        case 0, 1: return .put(key: key(), value: value(), lease: lease())
        case 2: return .delete(key: key())
        case 3: return .deleteRange(prefix: pick([bytes("a/1"), bytes("b/"), bytes("zz")]))
        case 4: return .get(key: key())
        default: return .range(prefix: pick([bytes("a/"), bytes("b/"), []]), limit: Int.random(in: 0 ... 3, using: &rng))
        }
    }

    private mutating func compare(_ m: KVStateMachine) -> KVCompare {
        let k = key()
        let current = m.get(k)
        switch Int.random(in: 0 ..< 6, using: &rng) {
        case 0: return KVCompare(key: k, .value(chance(70) ? (current?.value ?? []) : value()))
        case 1: return KVCompare(key: k, .version(chance(70) ? (current?.version ?? 0) : 1))
        case 2: return KVCompare(key: k, .modRevision(chance(70) ? (current?.modRevision ?? 0) : m.revision))
        case 3: return KVCompare(key: k, .createRevision(current?.createRevision ?? 0))
        case 4: return KVCompare(key: k, .exists)
        default: return KVCompare(key: k, .missing)
        }
    }

    /// The next entry: a command and its bytes, or (rarely) garbage bytes.
    mutating func next(_ m: KVStateMachine) -> (command: StateCommand?, entry: [UInt8]) {
        if chance(1) {
            let garbage = (0 ..< Int.random(in: 0 ... 16, using: &rng)).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
            return (nil, [1] + garbage)
        }
        let command: StateCommand
        switch Int.random(in: 0 ..< 100, using: &rng) {
        case 0 ..< 28:
            command = .put(key: key(), value: value(), lease: lease())
        case 28 ..< 35:
            command = .delete(key: key())
        case 35 ..< 38:
            command = .deleteRange(prefix: pick([bytes("a/1"), bytes("b/"), [], bytes("c")]))
        case 38 ..< 42:
            command = chance(50) ? .get(key: key()) : .range(prefix: pick([bytes("a/"), bytes("_lock/")]), limit: 2)
        case 42 ..< 50:
            let k = key()
            let expected: KVExpectation
            switch Int.random(in: 0 ..< 3, using: &rng) {
            case 0: expected = .modRevision(chance(70) ? (m.get(k)?.modRevision ?? 0) : Int64.random(in: 0 ... 9, using: &rng))
            case 1: expected = .value(chance(70) ? (m.get(k)?.value ?? []) : value())
            default: expected = .absent
            }
            command = .compareAndSet(key: k, expected: expected, value: value(), lease: lease())
        case 50 ..< 60:
            let compares = (0 ..< Int.random(in: 0 ... 3, using: &rng)).map { _ in compare(m) }
            let success = (0 ..< Int.random(in: 0 ... 3, using: &rng)).map { _ in op(m) }
            let failure = (0 ..< Int.random(in: 0 ... 2, using: &rng)).map { _ in op(m) }
            command = .txn(KVTxn(compares: compares, success: success, failure: failure))
        case 60 ..< 65:
            command = .leaseGrant(id: UInt64.random(in: 0 ... 6, using: &rng),
                                  ttlMs: UInt64.random(in: 0 ... 3_000, using: &rng), now: now)
        case 65 ..< 70:
            command = .leaseKeepAlive(id: UInt64.random(in: 1 ... 6, using: &rng), now: now)
        case 70 ..< 72:
            command = .leaseRevoke(id: UInt64.random(in: 1 ... 6, using: &rng))
        case 72 ..< 80:
            if chance(10) { now -= min(now, 500) } else { now += UInt64.random(in: 0 ... 400, using: &rng) }
            command = .tick(now: now)
        case 80 ..< 87:
            let name = "l\(Int.random(in: 0 ..< 4, using: &rng))"
            let owner = "o\(Int.random(in: 0 ..< 3, using: &rng))"
            command = chance(65) ? .lock(name: name, owner: owner, lease: UInt64.random(in: 1 ... 6, using: &rng))
                                 : .unlock(name: name, owner: m.lockHolder(name)?.owner ?? owner)
        default:
            let name = "n\(Int.random(in: 0 ..< 10, using: &rng))"
            switch Int.random(in: 0 ..< 10, using: &rng) {
            case 0 ..< 6:
                command = .registerName(name: name, session: UInt64.random(in: 1 ... 4, using: &rng),
                                        replica: UInt64.random(in: 1 ... 3, using: &rng),
                                        agent: "ag\(Int.random(in: 0 ..< 4, using: &rng))")
            case 6 ..< 9:
                command = .releaseName(name: name, session: m.directory.lookup(name)?.session ?? 1)
            default:
                command = .releaseAllFor(chance(50) ? .agent("ag\(Int.random(in: 0 ..< 4, using: &rng))")
                                                    : .replica(UInt64.random(in: 1 ... 3, using: &rng)))
            }
        }
        return (command, command.encode())
    }
}

final class StateDeterminismTests: XCTestCase {
    func testTwoReplicasOneRestoredMidwayStayIdentical() throws {
        let config = KVStateConfig(historyRetention: 300)
        let total = 10_000, restoreAt = 5_000
        var a = KVStateMachine(config: config)       // applies decoded commands directly
        var b = KVStateMachine(config: config)       // applies entry bytes; replaced by a restore midway
        var hubA = WatchHub(), hubB = WatchHub()
        for prefix in ["", "a/", "b/", "_lock/"] {
            XCTAssertEqual(hubA.add(prefix: bytes(prefix), fromRevision: 1), hubB.add(prefix: bytes(prefix), fromRevision: 1))
        }
        var lazyA = WatchHub(), lazyB = WatchHub()    // collected rarely, so it falls behind compaction
        _ = lazyA.add(prefix: bytes("a/"), fromRevision: 1); _ = lazyB.add(prefix: bytes("a/"), fromRevision: 1)

        var stream = RandomCommandStream(seed: 0xDA6E_2025)
        var mismatches = 0, okCount = 0, deliveries = 0, compactedSeen = 0
        for step in 0 ..< total {
            if step == restoreAt {
                let snap = b.snapshot()
                XCTAssertEqual(snap, a.snapshot())
                b = try KVStateMachine(snapshot: snap, config: config)
            }
            let (command, entry) = stream.next(a)
            let ra = command.map { a.apply($0) } ?? a.apply(entry: entry)
            let rb = b.apply(entry: entry)
            if ra != rb {
                mismatches += 1
                if mismatches < 5 { XCTFail("step \(step): \(String(describing: command)) → \(ra) vs \(rb)") }
            }
            if ra.isOK { okCount += 1 }
            let da = hubA.collect(from: a), db = hubB.collect(from: b)
            if da != db { mismatches += 1 }
            deliveries += da.count
            if step % 997 == 0 {
                let la = lazyA.collect(from: a), lb = lazyB.collect(from: b)
                if la != lb { mismatches += 1 }
                for d in la { if case .compacted = d { compactedSeen += 1; _ = lazyA.add(prefix: bytes("a/"), fromRevision: a.revision + 1); _ = lazyB.add(prefix: bytes("a/"), fromRevision: b.revision + 1) } }
            }
        }
        XCTAssertEqual(mismatches, 0)
        XCTAssertEqual(a.snapshot(), b.snapshot(), "byte-identical snapshots")
        // Sanity: the stream really exercised the machine.
        XCTAssertGreaterThan(a.revision, 2_000)
        XCTAssertGreaterThan(okCount, 4_000)
        XCTAssertLessThan(okCount, total, "some commands must fail")
        XCTAssertGreaterThan(deliveries, 1_000)
        XCTAssertGreaterThan(compactedSeen, 0)
        XCTAssertGreaterThan(a.history.compactRevision, 0)
        // Every watcher delivery of the "" watcher equals the retained history once more after a restore.
        let c = try KVStateMachine(snapshot: a.snapshot(), config: config)
        XCTAssertEqual(c.events(prefix: [], fromRevision: a.history.compactRevision + 1),
                       a.events(prefix: [], fromRevision: a.history.compactRevision + 1))
    }

    func testSameStreamTwiceGivesSameBytes() {
        func run() -> [UInt8] {
            var m = KVStateMachine(config: KVStateConfig(historyRetention: 300))
            var stream = RandomCommandStream(seed: 12345)
            for _ in 0 ..< 2_000 { _ = m.apply(entry: stream.next(m).entry) }
            return m.snapshot()
        }
        XCTAssertEqual(run(), run())
    }
}
