import DAgentPush
import NIOCore
import XCTest

final class PushStreamsTests: XCTestCase {
    let s = 1_000_000_000 as UInt64

    func testNumberingAndRecoveryBySize() {
        var st = PushStreams(bootID: "b", maxTopics: 100)
        st.configure(history: [PushHistoryPolicy(pattern: "news.>", size: 3, ttl: 0)], conflate: [])
        for i in 1...5 { XCTAssertEqual(st.record(topic: "news.a", payload: Array("m\(i)".utf8), nowNs: UInt64(i) * s).seq, UInt64(i)) }
        XCTAssertEqual(st.currentSeq("news.a"), 5)
        // Saw 3: missed 4 and 5, both kept.
        var r = st.recover(topic: "news.a", epoch: "b-1", after: 3, nowNs: 6 * s)
        XCTAssertTrue(r.recovered)
        XCTAssertEqual(r.frames.map { json(String(buffer: $0))["seq"] as? Int }, [4, 5])
        // Saw 1: 2 is gone (only 3 kept).
        r = st.recover(topic: "news.a", epoch: "b-1", after: 1, nowNs: 6 * s)
        XCTAssertFalse(r.recovered)
        // Up to date.
        XCTAssertTrue(st.recover(topic: "news.a", epoch: "b-1", after: 5, nowNs: 6 * s).recovered)
        // Another epoch (a restarted gateway).
        XCTAssertFalse(st.recover(topic: "news.a", epoch: "old-1", after: 5, nowNs: 6 * s).recovered)
        // A seq from the future.
        XCTAssertFalse(st.recover(topic: "news.a", epoch: "b-1", after: 9, nowNs: 6 * s).recovered)
    }

    func testRecoveryByAge() {
        var st = PushStreams(bootID: "b", maxTopics: 100)
        st.configure(history: [PushHistoryPolicy(pattern: "t", size: 100, ttl: 10)], conflate: [])
        _ = st.record(topic: "t", payload: [1], nowNs: 1 * s)
        _ = st.record(topic: "t", payload: [2], nowNs: 20 * s)
        XCTAssertFalse(st.recover(topic: "t", epoch: "b-1", after: 0, nowNs: 21 * s).recovered)
        XCTAssertTrue(st.recover(topic: "t", epoch: "b-1", after: 1, nowNs: 21 * s).recovered)
        XCTAssertFalse(st.recover(topic: "t", epoch: "b-1", after: 1, nowNs: 40 * s).recovered)
    }

    func testNoHistoryTopicRecoversOnlyWhenNothingMissed() {
        var st = PushStreams(bootID: "b", maxTopics: 100)
        _ = st.record(topic: "x", payload: [1], nowNs: s)
        XCTAssertTrue(st.recover(topic: "x", epoch: "b-1", after: 1, nowNs: s).recovered)
        XCTAssertFalse(st.recover(topic: "x", epoch: "b-1", after: 0, nowNs: s).recovered)
    }

    func testPatternRecovery() {
        var st = PushStreams(bootID: "b", maxTopics: 100)
        st.configure(history: [PushHistoryPolicy(pattern: "n.>", size: 10, ttl: 0)], conflate: [])
        for t in ["n.a", "n.b", "n.a"] { _ = st.record(topic: t, payload: Array(t.utf8), nowNs: s) }
        let r = st.recover(pattern: "n.>", since: PushSince(epoch: "b-1", seqs: ["n.a": 1, "n.b": 0, "other": 0]), nowNs: s)
        XCTAssertTrue(r.recovered)
        XCTAssertEqual(r.frames.count, 2)
    }

    func testMostSpecificPolicyAndMaxTopics() {
        var st = PushStreams(bootID: "b", maxTopics: 2)
        st.configure(history: [PushHistoryPolicy(pattern: ">", size: 1, ttl: 0), PushHistoryPolicy(pattern: "a.b", size: 5, ttl: 0)], conflate: ["m.>"])
        XCTAssertEqual(st.policyFor("a.b")?.size, 5)
        XCTAssertEqual(st.policyFor("a.c")?.size, 1)
        XCTAssertTrue(st.isConflated("m.cpu"))
        XCTAssertFalse(st.isConflated("a.b"))
        _ = st.record(topic: "t1", payload: [1], nowNs: s)
        _ = st.record(topic: "t2", payload: [1], nowNs: s)
        let third = st.record(topic: "t3", payload: [1], nowNs: s)
        XCTAssertTrue(third.newEpoch)
        XCTAssertEqual(st.epoch, "b-2")
        XCTAssertEqual(st.currentSeq("t1"), 0)
    }
}
