import DAgentWire
import XCTest
@testable import DCNode

/// The small pure types: route table (router cache), queues, rpc table, parent selector, config.
final class PureTypesTests: XCTestCase {
    func testRouteTableEpochsAndInvalidation() {
        var t = RouteTable()
        t.upsert("a", link: 1, session: 5, parent: "p", role: .leaf)
        t.upsert("b", link: 1, session: 6, parent: "p", role: .leaf)
        let e1 = t["a"]!.epoch
        t.upsert("a", link: 2, session: 5, parent: "q", role: .leaf)   // the name moves
        XCTAssertGreaterThan(t["a"]!.epoch, e1, "a move bumps the epoch")
        XCTAssertEqual(t.names(via: 1), ["b"])
        XCTAssertNil(t.remove("a", ifVia: 1), "a stale link cannot remove a moved name")
        XCTAssertEqual(t.removeAll(via: 1), ["b"])
        XCTAssertNil(t["b"])
        XCTAssertEqual(t["a"]?.link, 2)
    }

    func testSendQueuesOrderAndLimits() throws {
        var q = SendQueues(perDestinationLimit: 2, destinationLimit: 2)
        func env(_ dst: String, _ id: UInt64) -> Dagent_Envelope { var e = Dagent_Envelope(); e.dst = dst; e.id = id; return e }
        try q.enqueue(env("x", 1), nowNs: 0)
        try q.enqueue(env("y", 2), nowNs: 5)
        try q.enqueue(env("x", 3), nowNs: 10)
        XCTAssertThrowsError(try q.enqueue(env("x", 4), nowNs: 10))
        XCTAssertThrowsError(try q.enqueue(env("z", 5), nowNs: 10))
        XCTAssertEqual(q.expire(nowNs: 12, timeoutNs: 10).map(\.id), [1], "only the one older than the timeout")
        XCTAssertEqual(q.expire(nowNs: 15, timeoutNs: 10).map(\.id), [2])
        XCTAssertEqual(q.totalCount, 1)
        XCTAssertEqual(q.drainAll().map(\.id), [3])
        XCTAssertTrue(q.isEmpty)
    }

    func testRpcTableExpiry() {
        var t = RpcTable<Int>()
        let c1 = t.add(1, dst: "a", type: 1, nowNs: 0, timeoutNs: 10)
        let c2 = t.add(2, dst: "b", type: 1, nowNs: 0, timeoutNs: 100)
        XCTAssertNotEqual(c1, c2)
        XCTAssertEqual(t.expire(nowNs: 50).map(\.waiter), [1])
        XCTAssertNil(t.complete(cookie: c1))
        XCTAssertEqual(t.complete(cookie: c2)?.waiter, 2)
        XCTAssertEqual(t.count, 0)
    }

    func testParentSelectorFailsOverWithBackoff() {
        var s = ParentSelector(addresses: ["p1", "p2"], initialBackoffNs: 100, maxBackoffNs: 1000)
        XCTAssertEqual(s.next(nowNs: 0).index, 0)
        s.markDown(0, nowNs: 0)
        XCTAssertEqual(s.next(nowNs: 0).index, 1, "fails over to the next address")
        s.markDown(1, nowNs: 0)
        let (i, delay) = s.next(nowNs: 10)
        XCTAssertEqual(i, 0)
        XCTAssertEqual(delay, 90, "both down: wait for the soonest")
        for _ in 0..<10 { s.markDown(0, nowNs: 0) }
        XCTAssertEqual(s.candidates[0].downUntilNs, 1000, "backoff is capped")
        s.markUp(0)
        XCTAssertEqual(s.next(nowNs: 0).index, 0)
    }

    func testShorthandParsing() throws {
        XCTAssertEqual(try Shorthand.parse("pull:tcp://127.0.0.1:7000").listen, [.tcp(host: "127.0.0.1", port: 7000)])
        let push = try Shorthand.parse("push:tcp://h1:1,tcp://h2:2")
        XCTAssertEqual(push.parents, [.tcp(host: "h1", port: 1), .tcp(host: "h2", port: 2)])
        let proxy = try Shorthand.parse("proxy:tcp://0.0.0.0:7001->tcp://10.0.0.1:7000")
        XCTAssertEqual(proxy.listen, [.tcp(host: "0.0.0.0", port: 7001)])
        XCTAssertEqual(proxy.parents, [.tcp(host: "10.0.0.1", port: 7000)])
        XCTAssertEqual(try Shorthand.parse("pull:msgq:///tmp/q").listen, [.msgq(path: "/tmp/q")])
        XCTAssertThrowsError(try Shorthand.parse("tcp://nohost"))
        XCTAssertThrowsError(try Shorthand.parse("proxy:tcp://a:1"))
        XCTAssertThrowsError(try Shorthand.parse("udp://a:1"))
        XCTAssertThrowsError(try Endpoint.parse("tcp://a:99999"))
    }

    func testYamlConfig() throws {
        let c = try ConfigFile.parse(yaml: """
        name: agent1
        role: agent
        listen: tcp://127.0.0.1:7001
        parents: [tcp://127.0.0.1:7000, tcp://127.0.0.1:7100]
        heartbeat_interval: 0.5
        heartbeat_misses: 4
        durable: true
        data: /tmp/x
        plugins: {dir: plugins}
        """)
        XCTAssertEqual(c.name, "agent1")
        XCTAssertEqual(c.effectiveRole, .agent)
        XCTAssertEqual(c.parents.count, 2)
        XCTAssertEqual(c.coreConfig.heartbeatIntervalNs, 500_000_000)
        XCTAssertEqual(c.heartbeatMisses, 4)
        XCTAssertNoThrow(try c.validate())
        let sh = try ConfigFile.parse(yaml: "name: p\naddr: proxy:tcp://127.0.0.1:1->tcp://127.0.0.1:2")
        XCTAssertEqual(sh.effectiveRole, .proxy)
        XCTAssertThrowsError(try ConfigFile.parse(yaml: "name: x\nheartbeat_intervl: 1")) { e in
            XCTAssertTrue("\(e)".contains("unknown option 'heartbeat_intervl'"))
        }
        XCTAssertThrowsError(try ConfigFile.parse(yaml: "name: x\nheartbeat_misses: many"))
        var bad = NodeConfig(name: "x")
        bad.listen = [.tcp(host: "a", port: 1)]
        bad.durable = true
        XCTAssertThrowsError(try bad.validate()) { e in XCTAssertTrue("\(e)".contains("durable")) }
    }

    func testMsgqConfig() throws {
        let agent = try ConfigFile.parse(yaml: """
        name: a1
        msgq: /run/dagent/a1
        parents: [tcp://127.0.0.1:7000]
        msgq_queue_bytes: 1048576
        msgq_send_timeout: 0.5
        """)
        XCTAssertEqual(agent.listen, [.msgq(path: "/run/dagent/a1")])
        XCTAssertEqual(agent.effectiveRole, .agent, "serving msgq:// makes an agent")
        XCTAssertEqual(agent.msgqQueueBytes, 1_048_576)
        XCTAssertEqual(agent.msgqSendTimeout, 0.5)
        XCTAssertNoThrow(try agent.validate())
        let shorthand = try ConfigFile.parse(yaml: "name: a2\naddr: pull:msgq:///tmp/a2")
        XCTAssertEqual(shorthand.listen, [.msgq(path: "/tmp/a2")])
        let leaf = try ConfigFile.parse(yaml: "name: l1\nparent: msgq:///tmp/a2")
        XCTAssertEqual(leaf.parents, [.msgq(path: "/tmp/a2")])
        XCTAssertEqual(leaf.effectiveRole, .leaf)
        XCTAssertNil(leaf.msgqSendTimeoutOverride, "a leaf uses its agent's send timeout unless it sets one")
        XCTAssertEqual(leaf.msgqSendTimeout, 2.0)
        XCTAssertNoThrow(try leaf.validate())
        var two = NodeConfig(name: "x")
        two.listen = [.msgq(path: "/a"), .msgq(path: "/b")]
        XCTAssertThrowsError(try two.validate()) { e in XCTAssertTrue("\(e)".contains("at most one msgq:// path"), "\(e)") }
        var tiny = NodeConfig(name: "x")
        tiny.listen = [.msgq(path: "/a")]
        tiny.msgqSendTimeoutOverride = 0
        XCTAssertThrowsError(try tiny.validate()) { e in XCTAssertTrue("\(e)".contains("msgq_send_timeout"), "\(e)") }
    }
}
