import DAgentClusterSupport
import DAgentNode
import Foundation
import XCTest

/// The option registry, the docs table, the YAML parser and `dagent run`'s flags agree;
/// bad numbers are refused by the real executable, naming the option.
final class ConfigDocsTests: XCTestCase {
    var c: Cluster!
    override func setUpWithError() throws { c = try Cluster(name) }
    override func tearDown() { c.shutdown() }

    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testDocsTableIsTheRegistry() throws {
        let table = c.run(["options", "--markdown"])
        XCTAssertEqual(table.status, 0, table.err)
        let docs = try String(contentsOf: Self.repo.appendingPathComponent("docs/config.md"), encoding: .utf8)
        let expected = try XCTUnwrap(OptionDocs.replacingTable(in: docs, with: table.out), "docs/config.md lacks the OPTIONS markers")
        XCTAssertEqual(docs, expected, "docs/config.md's table differs from `dagent options --markdown`: run scripts/gen-docs")
    }

    func testEveryOptionIsAFlagOfRunAndAKeyOfTheFile() throws {
        let json = c.run(["options", "--json"])
        XCTAssertEqual(json.status, 0, json.err)
        let rows = try JSONDecoder().decode([OptionDoc].self, from: Data(json.out.utf8))
        XCTAssertGreaterThan(rows.count, 25)
        let help = c.run(["run", "--help"]).out
        for r in rows {
            if let flag = r.flag { XCTAssertTrue(help.contains(flag), "`dagent run --help` lists \(flag)") }
        }
        // Each node key is understood by the real parser: a bad value of it is refused naming the key.
        for r in rows where r.type == .int || r.type == .seconds {
            let (section, key) = r.key.hasPrefix("plugins.") ? ("plugins:\n  ", String(r.key.dropFirst(8))) : ("", r.key)
            let file = c.dir.appendingPathComponent("bad-\(r.key).yaml")
            try "name: n\nlisten: tcp://127.0.0.1:1\n\(section)\(key): -1e300\n".write(to: file, atomically: true, encoding: .utf8)
            let out = c.run(["run", "--config", file.path])
            XCTAssertEqual(out.status, 2, "\(r.key): \(out.err)")
            XCTAssertTrue(out.err.contains(key), "\(r.key): \(out.err)")
        }
    }

    func testRunRefusesBadNumbersNamingTheFlag() {
        for (flag, value) in [("--heartbeat-interval", "nan"), ("--queue-timeout", "1e300"), ("--hop-limit", "-1"),
                              ("--handler-budget", "inf"), ("--max-message-bytes", "0")] {
            let r = c.run(["run", "--name", "n", "--listen", c.addr(Cluster.freePort()), flag, value])
            XCTAssertEqual(r.status, 2, "\(flag) \(value): \(r.err)")
            XCTAssertTrue(r.err.contains(flag) && r.err.contains("must be"), "\(flag) \(value): \(r.err)")
        }
        let unknown = c.run(["run", "--name", "n", "--listen", c.addr(Cluster.freePort()), "--heartbeat-intervl", "1"])
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(unknown.err.contains("unknown option '--heartbeat-intervl'"), unknown.err)
    }
}
