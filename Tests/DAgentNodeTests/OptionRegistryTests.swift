import Foundation
import XCTest
@testable import DAgentNode

/// The option registry: the YAML parser and the flags agree for every option,
/// and out-of-range numbers are refused with the option's name.
final class OptionRegistryTests: XCTestCase {
    /// A value of the option's type that differs from the default (YAML text, flag text).
    func sample(_ o: ConfigOption<NodeConfig>) -> (yaml: String, flag: String?) {
        switch o.type {
        case .int: let v = Int(o.range!.upperBound) - 1; return ("\(v)", "\(v)")
        case .seconds, .number: let v = (o.range!.lowerBound + o.range!.upperBound) / 2; return ("\(v)", "\(v)")
        case .bool: return ("true", nil)
        case .choice: return (o.choices[1], o.choices[1])
        case .address:
            let v = o.key == "addr" ? "pull:tcp://127.0.0.1:7001" : "tcp://127.0.0.1:7001"
            return (v, v)
        case .addresses: return ("[tcp://127.0.0.1:7002, tcp://127.0.0.1:7003]", "tcp://127.0.0.1:7002,tcp://127.0.0.1:7003")
        case .path where o.key == "secret_file":
            // A real file: secret_file reads it (0600, at least 16 bytes).
            let path = NSTemporaryDirectory() + "dagent-options-\(getpid()).secret"
            FileManager.default.createFile(atPath: path, contents: Data("sample-cluster-secret\n".utf8))
            chmod(path, 0o600)
            return (path, path)
        case .path: return ("/tmp/dagent-x", "/tmp/dagent-x")
        case .string where o.key == "streams": return ("orders/=2", "orders/=2")
        case .string, .mapping: return ("node-x", "node-x")
        }
    }

    func testYamlAndFlagsAgreeForEveryOption() throws {
        let table = NodeOptions.table
        XCTAssertEqual(Set(table.options.map(\.key)).count, table.options.count, "keys are unique")
        XCTAssertEqual(Set(table.options.compactMap(\.flag)).count, table.options.compactMap(\.flag).count, "flags are unique")
        for o in table.options where o.flag != nil {   // YAML-only ones (tls:) have their own tests
            let (yaml, flag) = sample(o)
            let fromYAML = try ConfigFile.parse(yaml: "\(o.key): \(yaml)")
            var fromFlags = NodeConfig(name: "")
            let args = flag.map { ["--\(o.flag!)", $0] } ?? ["--\(o.flag!)"]
            XCTAssertEqual(try table.apply(flags: args, to: &fromFlags), [], o.key)
            let shown = { (c: NodeConfig) in
                table.options.map { $0.current(c) ?? "-" }.joined(separator: "|") + "\(c.listen)\(c.parents)"
            }
            XCTAssertEqual(shown(fromYAML), shown(fromFlags), "YAML and --\(o.flag!) give the same config for \(o.key)")
            XCTAssertNotEqual(shown(fromYAML), shown(table.defaults), "the sample of \(o.key) differs from its default")
        }
    }

    func testOutOfRangeNumbersAreRefusedNamingTheOption() {
        let bad = ["nan", "-1", "1e300", ".inf", "-.inf"]
        for o in NodeOptions.table.options where o.range != nil {
            for v in bad {
                XCTAssertThrowsError(try ConfigFile.parse(yaml: "\(o.key): \(v)"), "\(o.key): \(v)") { e in
                    XCTAssertTrue("\(e)".contains(o.key), "\(e)")
                }
                var c = NodeConfig(name: "")
                XCTAssertThrowsError(try NodeOptions.table.apply(flags: ["--\(o.flag!)", v.replacingOccurrences(of: ".inf", with: "inf")], to: &c),
                                     "--\(o.flag!) \(v)") { e in
                    XCTAssertTrue("\(e)".contains("--\(o.flag!)"), "\(e)")
                }
            }
        }
        XCTAssertThrowsError(try ConfigFile.parse(yaml: "heartbeat_interval: .nan")) { e in
            XCTAssertEqual("\(e)", "config: heartbeat_interval must be in 0.001...3600 seconds (got nan)")
        }
        XCTAssertThrowsError(try ConfigFile.parse(yaml: "hop_limit: 300")) { e in
            XCTAssertEqual("\(e)", "config: hop_limit must be in 1...255 (got 300)")
        }
    }

    func testValidateHoldsValuesSetInCodeToTheSameRanges() {
        var c = NodeConfig(name: "x")
        c.listen = [.tcp(host: "127.0.0.1", port: 1)]
        XCTAssertNoThrow(try c.validate())
        c.queueTimeout = .nan
        XCTAssertThrowsError(try c.validate()) { e in XCTAssertEqual("\(e)", "queue_timeout must be in 0.001...86400 seconds (got nan)") }
        c.queueTimeout = 1e300   // would trap in UInt64(queueTimeout * 1e9)
        XCTAssertThrowsError(try c.validate()) { e in XCTAssertTrue("\(e)".contains("queue_timeout"), "\(e)") }
        c.queueTimeout = 60
        c.msgqSendTimeoutOverride = -1
        XCTAssertThrowsError(try c.validate()) { e in XCTAssertTrue("\(e)".contains("msgq_send_timeout"), "\(e)") }
    }

    func testFlagForms() throws {
        let t = NodeOptions.table
        var c = NodeConfig(name: "")
        let rest = try t.apply(flags: ["--name=n1", "--echo", "--addr", "pull:tcp://127.0.0.1:1", "--addr", "push:tcp://127.0.0.1:2",
                                       "--other", "x", "--durable=false"], to: &c)
        XCTAssertEqual(rest, ["--other", "x"], "what is not a node flag is handed back")
        XCTAssertEqual(c.name, "n1")
        XCTAssertTrue(c.echo)
        XCTAssertFalse(c.durable)
        XCTAssertEqual(c.listen, [.tcp(host: "127.0.0.1", port: 1)])
        XCTAssertEqual(c.parents, [.tcp(host: "127.0.0.1", port: 2)])
        XCTAssertThrowsError(try t.apply(flags: ["--name", "a", "--name", "b"], to: &c)) { e in
            XCTAssertTrue("\(e)".contains("--name was given 2 times"), "\(e)")
        }
        XCTAssertThrowsError(try t.apply(flags: ["--heartbeat-misses"], to: &c)) { e in
            XCTAssertTrue("\(e)".contains("--heartbeat-misses needs a value"), "\(e)")
        }
        XCTAssertThrowsError(try t.apply(flags: ["--log-level", "loud"], to: &c)) { e in
            XCTAssertTrue("\(e)".contains("--log-level must be one of trace, debug"), "\(e)")
        }
    }

    func testMarkdownTableHasARowPerOption() {
        let md = OptionDocs.markdown(NodeOptions.table.docs)
        for o in NodeOptions.table.options { XCTAssertTrue(md.contains("| `\(o.key)`"), o.key) }
        XCTAssertTrue(md.contains("| `hop_limit` | `--hop-limit` | int | `32` | `1...255` |"), md)
    }
}

/// `streams:` (several streams per root process): the prefix map's parser and lookup.
final class StreamPrefixTests: XCTestCase {
    func testParseAndLongestPrefixWins() throws {
        let map = try StreamPrefix.parseList("orders/=2, orders/eu/=3,jobs/=2", context: "streams")
        XCTAssertEqual(map, [StreamPrefix(prefix: "orders/", stream: 2), StreamPrefix(prefix: "orders/eu/", stream: 3),
                             StreamPrefix(prefix: "jobs/", stream: 2)])
        XCTAssertEqual(StreamPrefix.stream(of: "orders/eu/1", in: map), 3)
        XCTAssertEqual(StreamPrefix.stream(of: "orders/us/1", in: map), 2)
        XCTAssertNil(StreamPrefix.stream(of: "cfg/x", in: map))
        XCTAssertEqual(try ConfigFile.parse(yaml: "streams: orders/=2").streams, [StreamPrefix(prefix: "orders/", stream: 2)])
    }

    func testBadEntriesNameTheEntry() {
        for (text, want) in [("orders", "entry 'orders' must be PREFIX=STREAM"), ("=2", "has an empty prefix"),
                             ("a/=x", "stream 'x' must be an integer >= 1"), ("a/=0", "stream '0' must be an integer >= 1"),
                             ("a/=1,a/=2", "prefix 'a/' is mapped twice")] {
            XCTAssertThrowsError(try StreamPrefix.parseList(text, context: "streams")) { error in
                XCTAssertTrue("\(error)".contains(want), "\(error) lacks \(want)")
            }
        }
    }
}
