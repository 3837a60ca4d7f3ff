import Foundation
import XCTest
@testable import DAgentRaftStorage
import DAgentTestSupport

/// Runs the data-driven scenarios in `testdata/*.txt` (see `ScenarioRunner` for the
/// language). The folder is located relative to this source file, not as a bundle
/// resource, so it works wherever the test target is copied.
final class ScenarioTests: XCTestCase {
    static var testdata: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent() // Scenario
            .deletingLastPathComponent() // DAgentRaftTests
            .appendingPathComponent("testdata")
    }

    static let scenarios = [
        "election", "forwarding", "figure8", "partitioned-leader", "prevote-rejoin",
        "check-quorum", "readindex", "snapshot", "remove-leader", "membership-down",
        "partial-connectivity", "transfer", "conflict-backtracking",
    ]

    private func run(_ name: String, file: StaticString = #filePath, line: UInt = #line) {
        let url = Self.testdata.appendingPathComponent(name + ".txt")
        do {
            try ScenarioRunner.run(file: url)
        } catch {
            XCTFail("\(error)", file: file, line: line)
        }
    }

    func testEveryScenarioFileIsListed() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.testdata.path)
            .filter { $0.hasSuffix(".txt") }
            .map { String($0.dropLast(4)) }
            .sorted()
        XCTAssertEqual(files, Self.scenarios.sorted(), "testdata/*.txt and ScenarioTests.scenarios differ")
    }

    func testElection() { run("election") }
    func testForwarding() { run("forwarding") }
    func testFigure8() { run("figure8") }
    func testPartitionedLeader() { run("partitioned-leader") }
    func testPreVoteRejoin() { run("prevote-rejoin") }
    func testCheckQuorum() { run("check-quorum") }
    func testReadIndex() { run("readindex") }
    func testSnapshot() { run("snapshot") }
    func testRemoveLeader() { run("remove-leader") }
    func testMembershipChangeWhileDown() { run("membership-down") }
    func testPartialConnectivity() { run("partial-connectivity") }
    func testTransfer() { run("transfer") }
    func testConflictBacktracking() { run("conflict-backtracking") }
}
