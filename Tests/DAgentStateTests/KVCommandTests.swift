import XCTest
import DAgentState

final class KVCommandTests: XCTestCase {
    func testPutAssignsRevisionsAndVersions() {
        var m = KVStateMachine()
        XCTAssertEqual(m.revision, 0)
        XCTAssertEqual(m.put("a", "1"), .ok(.put(revision: 1, previous: nil)))
        let first = m.get(bytes("a"))!
        XCTAssertEqual(first, KVRecord(key: bytes("a"), value: bytes("1"), createRevision: 1,
                                       modRevision: 1, version: 1, lease: nil))
        XCTAssertEqual(m.put("a", "2"), .ok(.put(revision: 2, previous: first)))
        XCTAssertEqual(m.put("b", "x"), .ok(.put(revision: 3, previous: nil)))
        let a = m.get(bytes("a"))!
        XCTAssertEqual([a.createRevision, a.modRevision, a.version], [1, 2, 2])
        XCTAssertEqual(m.revision, 3)
    }

    func testGetAndRangeReads() {
        var m = KVStateMachine()
        XCTAssertEqual(m.apply(.get(key: bytes("nope"))), .failed(.keyNotFound(key: bytes("nope"))))
        for k in ["b/2", "a", "b/1", "b/10", "c"] { m.put(k, k) }
        guard case let .ok(.record(rec, rev)) = m.apply(.get(key: bytes("a"))) else { return XCTFail() }
        XCTAssertEqual(rec.value, bytes("a"))
        XCTAssertEqual(rev, 5)
        guard case let .ok(.records(all, more, _)) = m.read(.range(prefix: bytes("b/"), limit: 0)) else { return XCTFail() }
        XCTAssertEqual(all.map(\.key), [bytes("b/1"), bytes("b/10"), bytes("b/2")])  // byte order
        XCTAssertFalse(more)
        guard case let .ok(.records(two, more2, _)) = m.read(.range(prefix: bytes("b/"), limit: 2)) else { return XCTFail() }
        XCTAssertEqual(two.count, 2)
        XCTAssertTrue(more2)
        XCTAssertEqual(m.range(prefix: []).records.count, 5)
        XCTAssertEqual(m.revision, 5, "reads never bump the revision")
    }

    func testKeysCompareByBytesNotUnicodeEquivalence() {
        var m = KVStateMachine()
        m.put("caf\u{E9}", "composed")
        m.put("cafe\u{301}", "decomposed")
        XCTAssertEqual(m.store.count, 2)
        XCTAssertEqual(m.value("caf\u{E9}"), "composed")
        XCTAssertEqual(m.value("cafe\u{301}"), "decomposed")
    }

    func testDeleteAndDeleteMissing() {
        var m = KVStateMachine()
        m.put("a", "1")
        let rec = m.get(bytes("a"))!
        XCTAssertEqual(m.apply(.delete(key: bytes("a"))), .ok(.deleted(revision: 2, deleted: [rec])))
        XCTAssertNil(m.get(bytes("a")))
        XCTAssertEqual(m.apply(.delete(key: bytes("a"))), .failed(.keyNotFound(key: bytes("a"))))
        XCTAssertEqual(m.revision, 2, "deleting a missing key is not a revision")
        XCTAssertEqual(m.allEvents().count, 2)
    }

    func testRecreateAfterDeleteResetsVersionAndCreateRevision() {
        var m = KVStateMachine()
        m.put("a", "1"); m.put("a", "2")
        _ = m.apply(.delete(key: bytes("a")))
        m.put("a", "3")
        let rec = m.get(bytes("a"))!
        XCTAssertEqual([rec.createRevision, rec.modRevision, rec.version], [4, 4, 1])
    }

    func testDeleteRangeIsOneRevision() {
        var m = KVStateMachine()
        m.put("a/1", "x"); m.put("a/2", "y"); m.put("b/1", "z")
        guard case let .ok(.deleted(rev, deleted)) = m.apply(.deleteRange(prefix: bytes("a/"))) else { return XCTFail() }
        XCTAssertEqual(rev, 4)
        XCTAssertEqual(deleted.map(\.key), [bytes("a/1"), bytes("a/2")])
        let events = m.allEvents(from: 4)
        XCTAssertEqual(events.map(\.revision), [4, 4])
        XCTAssertEqual(events.map(\.kind), [.delete, .delete])
        XCTAssertEqual(events.map(\.prevValue), [bytes("x"), bytes("y")])
        XCTAssertEqual(m.apply(.deleteRange(prefix: bytes("a/"))), .ok(.deleted(revision: 4, deleted: [])))
        XCTAssertEqual(m.revision, 4)
        XCTAssertNotNil(m.get(bytes("b/1")))
    }

    func testCompareAndSetByModRevision() {
        var m = KVStateMachine()
        m.put("cfg", "v1")
        let seen = m.get(bytes("cfg"))!.modRevision
        // Two clients read the same revision and race; the log orders them.
        let first = m.apply(.compareAndSet(key: bytes("cfg"), expected: .modRevision(seen), value: bytes("A"), lease: nil))
        let second = m.apply(.compareAndSet(key: bytes("cfg"), expected: .modRevision(seen), value: bytes("B"), lease: nil))
        XCTAssertEqual(first.replyRevision, 2)
        XCTAssertEqual(second, .failed(.compareFailed(key: bytes("cfg"), current: m.get(bytes("cfg")))))
        XCTAssertEqual(m.value("cfg"), "A")
        XCTAssertEqual(m.revision, 2)
        XCTAssertEqual(m.allEvents().count, 2, "a failed CAS emits nothing")
        // modRevision 0 means "create only if absent".
        XCTAssertTrue(m.apply(.compareAndSet(key: bytes("new"), expected: .modRevision(0), value: bytes("1"), lease: nil)).isOK)
        XCTAssertFalse(m.apply(.compareAndSet(key: bytes("new"), expected: .modRevision(0), value: bytes("2"), lease: nil)).isOK)
    }

    func testCompareAndSetByValueAndAbsent() {
        var m = KVStateMachine()
        XCTAssertEqual(m.apply(.compareAndSet(key: bytes("k"), expected: .value(bytes("x")), value: bytes("y"), lease: nil)),
                       .failed(.compareFailed(key: bytes("k"), current: nil)))
        XCTAssertTrue(m.apply(.compareAndSet(key: bytes("k"), expected: .absent, value: bytes("x"), lease: nil)).isOK)
        XCTAssertFalse(m.apply(.compareAndSet(key: bytes("k"), expected: .absent, value: bytes("z"), lease: nil)).isOK)
        XCTAssertTrue(m.apply(.compareAndSet(key: bytes("k"), expected: .value(bytes("x")), value: bytes("y"), lease: nil)).isOK)
        XCTAssertEqual(m.value("k"), "y")
    }

    func testValidationNamesTheLimit() {
        var m = KVStateMachine(config: KVStateConfig(maxKeyBytes: 8, maxValueBytes: 4))
        XCTAssertEqual(m.put("", "x"), .failed(.invalidArgument("key must not be empty")))
        XCTAssertEqual(m.put("123456789", "x"), .failed(.limitExceeded(limit: "maxKeyBytes", value: 9, max: 8)))
        let tooBig = m.put("k", "12345")
        XCTAssertEqual(tooBig, .failed(.limitExceeded(limit: "maxValueBytes", value: 5, max: 4)))
        XCTAssertTrue("\(tooBig.failure!)".contains("maxValueBytes"))
        XCTAssertEqual(m.put("k", "1", lease: 42), .failed(.leaseNotFound(id: 42)))
        XCTAssertEqual(m.revision, 0)
    }

    func testReservedLockPrefixIsNotWritable() {
        var m = KVStateMachine()
        let key = KVStateMachine.lockKey("x")
        XCTAssertEqual(m.apply(.put(key: key, value: bytes("me"), lease: nil)), .failed(.reservedKey(key: key)))
        XCTAssertEqual(m.apply(.delete(key: key)), .failed(.reservedKey(key: key)))
        XCTAssertEqual(m.apply(.compareAndSet(key: key, expected: .absent, value: bytes("me"), lease: nil)),
                       .failed(.reservedKey(key: key)))
    }

    func testReadRejectsWritesAndApplyServesReads() {
        var m = KVStateMachine()
        m.put("a", "1")
        XCTAssertEqual(m.read(.put(key: bytes("a"), value: [], lease: nil)), .failed(.notARead("put")))
        XCTAssertEqual(m.apply(.get(key: bytes("a"))), m.read(.get(key: bytes("a"))))
        XCTAssertTrue(StateCommand.get(key: []).isRead)
        XCTAssertFalse(StateCommand.tick(now: 1).isRead)
        XCTAssertEqual(StateCommand.leaseGrant(id: 1, ttlMs: 1, now: 1).name, "leaseGrant")
    }

    func testMalformedEntryFailsWithoutChange() {
        var m = KVStateMachine()
        m.put("a", "1")
        let before = m.snapshot()
        let result = m.apply(entry: [1, 200, 0])
        XCTAssertEqual(result, .failed(.malformedCommand(.unknownTag(field: "command", tag: 200, offset: 1))))
        XCTAssertEqual(m.snapshot(), before)
        XCTAssertEqual(m.apply(entry: StateCommand.put(key: bytes("b"), value: [], lease: nil).encode()).replyRevision, 2)
    }
}
