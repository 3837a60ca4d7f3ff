import DAgentWire
import XCTest
@testable import DAgentNode

/// Addresses, the original shorthand, YAML config and its validation.
final class ConfigTests: XCTestCase {
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
