import DAgentPush
import NIOCore
import XCTest

final class PushHubTests: XCTestCase {
    var sink = RecordingSink()
    lazy var hub = PushHub(limits: PushLimits(), bootID: "b", sink: sink)

    func connect(_ id: PushClientID) {
        XCTAssertTrue(hub.add(id))
        hub.authorize(id, user: "u\(id)")
    }

    func msgs(_ id: PushClientID) -> [[String: Any]] {
        (sink.written[id] ?? []).map(json).filter { $0["op"] as? String == "msg" }
    }

    func testFanOutOncePerClientAndInterest() {
        connect(1); connect(2)
        hub.subscribe(1, pattern: "news.>", since: nil, ref: nil, nowNs: 0)
        hub.subscribe(1, pattern: "news.eu", since: nil, ref: nil, nowNs: 0)
        hub.subscribe(2, pattern: "news.eu", since: nil, ref: nil, nowNs: 0)
        XCTAssertEqual(sink.changes, [.subscribe("news.>"), .subscribe("news.eu")])
        // The tree delivers once per matching pattern; only the canonical one counts.
        hub.deliver(topic: "news.eu", payload: Array("x".utf8), via: "news.>", nowNs: 1)
        hub.deliver(topic: "news.eu", payload: Array("x".utf8), via: "news.eu", nowNs: 1)
        XCTAssertEqual(msgs(1).count, 1)
        XCTAssertEqual(msgs(2).count, 1)
        XCTAssertEqual(msgs(1)[0]["seq"] as? Int, 1)
        XCTAssertEqual(hub.stats.messages, 1)
        hub.unsubscribe(2, pattern: "news.eu", ref: nil)
        XCTAssertEqual(sink.changes.count, 2, "client 1 still holds news.eu")
        hub.remove(1, code: 1000)
        XCTAssertEqual(Set(sink.changes.suffix(2).map { "\($0)" }), ["unsubscribe(\"news.>\")", "unsubscribe(\"news.eu\")"])
        XCTAssertEqual(hub.stats.closes[1000], 1)
    }

    func testSlowClientClosedWith4008() {
        hub.limits.sendQueueBytes = 200
        hub = PushHub(limits: hub.limits, bootID: "b", sink: sink)
        connect(1); connect(2)
        hub.subscribe(1, pattern: "t", since: nil, ref: nil, nowNs: 0)
        hub.subscribe(2, pattern: "t", since: nil, ref: nil, nowNs: 0)
        sink.capacity[1] = 1   // client 1's socket fills after one write
        for i in 0..<10 { hub.deliver(topic: "t", payload: Array("message \(i)".utf8), via: nil, nowNs: 0) }
        XCTAssertEqual(sink.closed[1]?.0, PushCodes.slowConsumer)
        XCTAssertTrue(sink.closed[1]!.1.contains("send_queue_bytes=200"))
        XCTAssertEqual(msgs(2).count, 10, "the other client is served")
        XCTAssertEqual(hub.stats.closes[PushCodes.slowConsumer], 1)
        XCTAssertEqual(hub.stats.queueBytes, 0)
    }

    func testConflatedTopicKeepsLatest() {
        hub.configure(history: [], conflate: ["m.>"])
        connect(1)
        hub.subscribe(1, pattern: "m.>", since: nil, ref: nil, nowNs: 0)
        hub.unwritable(1)
        for i in 1...1000 { hub.deliver(topic: "m.cpu", payload: Array("\(i)".utf8), via: nil, nowNs: 0) }
        hub.deliver(topic: "m.mem", payload: Array("7".utf8), via: nil, nowNs: 0)
        XCTAssertNil(sink.closed[1])
        XCTAssertEqual(hub.stats.conflated, 999)
        let before = msgs(1).count
        hub.writable(1)
        let got = msgs(1).dropFirst(before)
        XCTAssertEqual(got.map { $0["data"] as? String }, ["1000", "7"])
        XCTAssertEqual(got.first?["seq"] as? Int, 1000)
    }

    func testSubscribeWithRecovery() {
        hub.configure(history: [PushHistoryPolicy(pattern: "h.>", size: 10, ttl: 0)], conflate: [])
        XCTAssertEqual(sink.changes, [.subscribe("h.>")], "history patterns are heard without clients")
        for i in 1...3 { hub.deliver(topic: "h.a", payload: Array("\(i)".utf8), via: nil, nowNs: 0) }
        connect(1)
        hub.subscribe(1, pattern: "h.a", since: PushSince(epoch: hub.streams.epoch, seq: 1), ref: "1", nowNs: 0)
        let frames = (sink.written[1] ?? []).map(json)
        let sub = frames.first { $0["op"] as? String == "subscribed" }!
        XCTAssertEqual(sub["recovered"] as? Bool, true)
        XCTAssertEqual(sub["seq"] as? Int, 3)
        XCTAssertEqual(msgs(1).map { $0["data"] as? String }, ["2", "3"])
        connect(2)
        hub.subscribe(2, pattern: "h.a", since: PushSince(epoch: "gone-1", seq: 1), ref: nil, nowNs: 0)
        XCTAssertEqual((sink.written[2] ?? []).map(json).first { $0["op"] as? String == "subscribed" }?["recovered"] as? Bool, false)
        XCTAssertEqual(msgs(2).count, 0)
    }

    func testLimits() {
        hub.limits.maxSubscriptions = 2
        hub.limits.maxPendingOps = 1
        hub.limits.maxClients = 1
        connect(1)
        XCTAssertFalse(hub.add(2))
        hub.subscribe(1, pattern: "a", since: nil, ref: nil, nowNs: 0)
        hub.subscribe(1, pattern: "b", since: nil, ref: nil, nowNs: 0)
        XCTAssertEqual(hub.checkSubscribe(1, pattern: "c", ref: nil)?.code, PushCodes.limit)
        XCTAssertNil(hub.checkSubscribe(1, pattern: "a", ref: nil))
        XCTAssertNil(hub.beginOp(1, ref: nil))
        XCTAssertEqual(hub.beginOp(1, ref: nil)?.code, PushCodes.limit)
        hub.endOp(1)
        XCTAssertNil(hub.beginOp(1, ref: nil))
    }
}
