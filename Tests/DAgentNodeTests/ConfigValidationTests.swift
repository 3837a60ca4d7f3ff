import DAgentWire
import XCTest
@testable import DAgentNode

/// Every number in the config is range-checked, naming the option; nothing traps.
final class ConfigValidationTests: XCTestCase {
    func problem(_ yaml: String) -> String? {
        do {
            let c = try ConfigFile.parse(yaml: "name: n\nlisten: tcp://127.0.0.1:0\n" + yaml)
            try c.validate()
            return nil
        } catch {
            return "\(error)"
        }
    }

    func testBadNumbersAreRefusedNamingTheOption() {
        XCTAssertEqual(problem("register_timeout: -1"), "register_timeout=-1 is out of range: it must be between 0.001 and 3600")
        XCTAssertEqual(problem("heartbeat_interval: .nan"), "heartbeat_interval must be a number, not NaN")
        XCTAssertEqual(problem("heartbeat_interval: .inf"), "heartbeat_interval=inf is out of range: it must be between 0.001 and 3600")
        XCTAssertEqual(problem("queue_timeout: 1e300"), "queue_timeout=1e+300 is out of range: it must be between 0.001 and 2592000")
        XCTAssertEqual(problem("connect_timeout: -0.5"), "connect_timeout=-0.5 is out of range: it must be between 0.001 and 3600")
        XCTAssertEqual(problem("max_children: 0"), "max_children=0 is out of range: it must be between 1 and 1000000")
        XCTAssertEqual(problem("registration_rate: .nan"), "registration_rate must be a number, not NaN")
        XCTAssertEqual(problem("max_names_per_child: -3"), "max_names_per_child=-3 is out of range: it must be between 1 and 100000000")
        XCTAssertEqual(problem("msgq_send_timeout: -1"), "msgq_send_timeout=-1 is out of range: it must be between 0.001 and 3600")
        XCTAssertEqual(problem("reconnect_initial_backoff: 10\nreconnect_max_backoff: 1"),
                       "reconnect_initial_backoff=10 exceeds reconnect_max_backoff=1")
        XCTAssertNil(problem("max_pending_requests: 10\nmax_watches_per_client: 5\nregistration_burst: 3\nmax_unregistered_links: 7"))
    }

    func testServiceNamesCannotBeNodeNames() {
        var c = NodeConfig(name: "@state")
        c.listen = [.tcp(host: "127.0.0.1", port: 0)]
        XCTAssertThrowsError(try c.validate()) { error in
            XCTAssertEqual("\(error)", "name: name '@state' starts with '@', which is reserved for services (such as @state)")
        }
    }

    func testLimitsReachTheCore() throws {
        let c = try ConfigFile.parse(yaml: "name: n\nlisten: tcp://127.0.0.1:0\nmax_names_per_child: 7\nregistration_rate: 2.5\n")
        XCTAssertEqual(c.coreConfig.limits.maxNamesPerChild, 7)
        XCTAssertEqual(c.coreConfig.limits.registrationRate, 2.5)
    }
}
