import DAgentClusterSupport
import Foundation
import XCTest

/// Every command that prints JSON accepts `--json`.
final class JSONFlagTests: XCTestCase {
    var c: Cluster!
    override func setUpWithError() throws { c = try Cluster(name) }
    override func tearDown() { c.shutdown() }

    func testEveryJSONPrintingCommandAcceptsTheFlag() {
        let commands: [[String]] = [
            ["tree"], ["recv"], ["options"], ["status"], ["config"], ["up"],
            ["state", "get"], ["state", "put"], ["state", "del"], ["state", "cas"], ["state", "range"],
            ["state", "lease"], ["state", "lock"], ["state", "status"], ["state", "watch"],
            ["certs", "init"], ["certs", "issue"],
        ]
        for cmd in commands {
            let help = c.run(cmd + ["--help"])
            XCTAssertEqual(help.status, 0, "\(cmd): \(help.err)")
            XCTAssertTrue(help.out.contains("--json"), "`dagent \(cmd.joined(separator: " ")) --help` lists --json")
        }
        for cmd in [["pingpong"], ["mesh"], ["python"], ["state"]] {
            let help = c.run(cmd + ["--help"], executable: c.benchBinary)
            XCTAssertTrue(help.out.contains("--json"), "`dagent-bench \(cmd.joined(separator: " ")) --help` lists --json")
        }
    }

    func testStateStatusJSONIsAcceptedAndFailsOnlyForWantOfAGroup() {
        // Nothing listens there: the command runs (exit 1, not ready), the flag is not refused (exit 64).
        let r = c.run(["state", "status", "--json", "--via", c.addr(Cluster.freePort()), "--join-timeout", "0.5", "--timeout", "1"])
        XCTAssertEqual(r.status, 1, r.err)
        XCTAssertTrue(r.err.contains("not ready"), r.err)
    }
}
