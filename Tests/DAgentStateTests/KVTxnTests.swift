import XCTest
import DAgentState

final class KVTxnTests: XCTestCase {
    func testSuccessBranchIsOneRevision() {
        var m = KVStateMachine()
        m.put("a", "1")
        let txn = KVTxn(compares: [KVCompare(key: bytes("a"), .value(bytes("1")))],
                        success: [.put(key: bytes("a"), value: bytes("2"), lease: nil),
                                  .put(key: bytes("b"), value: bytes("3"), lease: nil),
                                  .get(key: bytes("a"))],
                        failure: [.put(key: bytes("else"), value: bytes("x"), lease: nil)])
        guard case let .ok(.txn(succeeded, rev, responses)) = m.apply(.txn(txn)) else { return XCTFail() }
        XCTAssertTrue(succeeded)
        XCTAssertEqual(rev, 2)
        XCTAssertEqual(responses.count, 3)
        XCTAssertEqual(responses[1], .put(previous: nil))
        guard case let .get(read) = responses[2] else { return XCTFail() }
        XCTAssertEqual(read?.value, bytes("2"), "later ops see earlier ops")
        XCTAssertEqual(m.allEvents(from: 2).map(\.revision), [2, 2])
        XCTAssertNil(m.get(bytes("else")))
        XCTAssertEqual(m.get(bytes("b"))!.modRevision, 2)
    }

    func testElseBranchRunsWhenACompareFails() {
        var m = KVStateMachine()
        m.put("a", "1")
        let txn = KVTxn(compares: [KVCompare(key: bytes("a"), .exists), KVCompare(key: bytes("a"), .version(7))],
                        success: [.put(key: bytes("yes"), value: [], lease: nil)],
                        failure: [.put(key: bytes("no"), value: [], lease: nil), .delete(key: bytes("a"))])
        guard case let .ok(.txn(succeeded, rev, responses)) = m.apply(.txn(txn)) else { return XCTFail() }
        XCTAssertFalse(succeeded)
        XCTAssertEqual(rev, 2)
        XCTAssertEqual(responses.count, 2)
        XCTAssertNil(m.get(bytes("yes")))
        XCTAssertNotNil(m.get(bytes("no")))
        XCTAssertNil(m.get(bytes("a")))
    }

    func testFailedComparesWithoutElseOpsChangeNothing() {
        var m = KVStateMachine()
        m.put("a", "1")
        let txn = KVTxn(compares: [KVCompare(key: bytes("a"), .missing)],
                        success: [.put(key: bytes("a"), value: bytes("2"), lease: nil)])
        XCTAssertEqual(m.apply(.txn(txn)), .ok(.txn(succeeded: false, revision: 1, responses: [])))
        XCTAssertEqual(m.revision, 1)
        XCTAssertEqual(m.allEvents().count, 1)
        // A txn of reads and deletes of missing keys is no revision either.
        let noop = KVTxn(compares: [], success: [.delete(key: bytes("zz")), .range(prefix: [], limit: 0)])
        guard case let .ok(.txn(true, rev, responses)) = m.apply(.txn(noop)) else { return XCTFail() }
        XCTAssertEqual(rev, 1)
        XCTAssertEqual(responses.first, .deleted([]))
        XCTAssertEqual(m.allEvents().count, 1)
    }

    func testAllOrNothingOnInvalidOp() {
        var m = KVStateMachine()
        let txn = KVTxn(compares: [],
                        success: [.put(key: bytes("a"), value: bytes("1"), lease: nil),
                                  .put(key: bytes("b"), value: bytes("2"), lease: 99)])
        XCTAssertEqual(m.apply(.txn(txn)), .failed(.leaseNotFound(id: 99)))
        XCTAssertNil(m.get(bytes("a")))
        XCTAssertEqual(m.revision, 0)
        let reserved = KVTxn(compares: [], success: [.put(key: bytes("a"), value: [], lease: nil),
                                                     .delete(key: KVStateMachine.lockKey("l"))])
        XCTAssertEqual(m.apply(.txn(reserved)), .failed(.reservedKey(key: KVStateMachine.lockKey("l"))))
        XCTAssertNil(m.get(bytes("a")))
    }

    func testCompareTargetsOnPresentAndAbsentKeys() {
        var m = KVStateMachine()
        m.put("x", "0"); m.put("k", "v"); m.put("k", "w")   // k: create 2, mod 3, version 2
        func run(_ c: KVCompare) -> Bool {
            guard case let .ok(.txn(ok, _, _)) = m.apply(.txn(KVTxn(compares: [c], success: []))) else {
                XCTFail(); return false
            }
            return ok
        }
        let k = bytes("k"), absent = bytes("absent")
        XCTAssertTrue(run(KVCompare(key: k, .value(bytes("w")))))
        XCTAssertFalse(run(KVCompare(key: k, .value(bytes("v")))))
        XCTAssertTrue(run(KVCompare(key: k, .version(2))))
        XCTAssertTrue(run(KVCompare(key: k, .modRevision(3))))
        XCTAssertTrue(run(KVCompare(key: k, .createRevision(2))))
        XCTAssertFalse(run(KVCompare(key: k, .createRevision(3))))
        XCTAssertTrue(run(KVCompare(key: k, .exists)))
        XCTAssertFalse(run(KVCompare(key: k, .missing)))
        XCTAssertTrue(run(KVCompare(key: absent, .missing)))
        XCTAssertTrue(run(KVCompare(key: absent, .version(0))))
        XCTAssertTrue(run(KVCompare(key: absent, .modRevision(0))))
        XCTAssertTrue(run(KVCompare(key: absent, .createRevision(0))))
        XCTAssertFalse(run(KVCompare(key: absent, .value([]))))
        XCTAssertFalse(run(KVCompare(key: absent, .exists)))
    }

    func testDeleteRangeInsideTxnAndLimits() {
        var m = KVStateMachine(config: KVStateConfig(maxTxnOps: 3))
        m.put("p/1", "a"); m.put("p/2", "b")
        let txn = KVTxn(compares: [], success: [.deleteRange(prefix: bytes("p/")), .put(key: bytes("p/3"), value: [], lease: nil)])
        guard case let .ok(.txn(_, rev, responses)) = m.apply(.txn(txn)) else { return XCTFail() }
        XCTAssertEqual(rev, 3)
        guard case let .deleted(gone) = responses[0] else { return XCTFail() }
        XCTAssertEqual(gone.count, 2)
        XCTAssertEqual(m.allEvents(from: 3).map(\.kind), [.delete, .delete, .put])
        let big = KVTxn(compares: [KVCompare(key: bytes("a"), .exists)], success: [.get(key: bytes("a"))],
                        failure: [.get(key: bytes("a")), .get(key: bytes("b"))])
        XCTAssertEqual(m.apply(.txn(big)), .failed(.limitExceeded(limit: "maxTxnOps", value: 4, max: 3)))
    }

    func testCASRaceExpressedAsTxn() {
        var m = KVStateMachine()
        m.put("counter", "0")
        let rev = m.get(bytes("counter"))!.modRevision
        func increment(to value: String) -> StateResult {
            m.apply(.txn(KVTxn(compares: [KVCompare(key: bytes("counter"), .modRevision(rev))],
                               success: [.put(key: bytes("counter"), value: bytes(value), lease: nil)],
                               failure: [.get(key: bytes("counter"))])))
        }
        guard case .ok(.txn(true, 2, _)) = increment(to: "1") else { return XCTFail() }
        guard case let .ok(.txn(false, 2, responses)) = increment(to: "1") else { return XCTFail() }
        XCTAssertEqual(responses, [.get(m.get(bytes("counter")))], "loser learns the winner's value")
    }
}
