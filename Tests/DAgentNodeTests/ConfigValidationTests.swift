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
        // The two values of issue 12 (they passed validation and then trapped).
        XCTAssertEqual(problem("register_timeout: -1"), "config: register_timeout must be in 0.01...3600 seconds (got -1.0)")
        XCTAssertEqual(problem("heartbeat_interval: .nan"), "config: heartbeat_interval must be in 0.001...3600 seconds (got nan)")
        // The security limits.
        XCTAssertEqual(problem("registration_rate: .nan"), "config: registration_rate must be in 0.001...1000000 (got nan)")
        XCTAssertEqual(problem("max_names_per_child: -3"), "config: max_names_per_child must be in 1...100000000 (got -3)")
        XCTAssertEqual(problem("max_unregistered_links: 0"), "config: max_unregistered_links must be in 1...1000000 (got 0)")
        XCTAssertEqual(problem("max_pending_requests: 0"), "config: max_pending_requests must be in 1...100000000 (got 0)")
        XCTAssertEqual(problem("max_watches_per_client: 1e9"), "config: max_watches_per_client must be an integer (got 1000000000.0)")
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
