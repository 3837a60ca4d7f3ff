import DAgentNode
import XCTest

/// Config files the fuzzer (`scripts/fuzz config`, docs/testing.md#fuzzing) found to trap the
/// YAML loader. Each stopped the process (a force unwrap in Yams' constructor) before the fix.
final class ConfigFuzzRegressionTests: XCTestCase {
    func assertRefused(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ConfigFile.parse(yaml: yaml), file: file, line: line) { error in
            XCTAssertEqual("\(type(of: error))", "ConfigError", "\(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains("a mapping key must be a plain value"), "\(error)", file: file, line: line)
        }
    }

    /// The fuzzer's input, byte for byte: a sequence as a mapping key.
    func testSequenceAsMappingKeyIsRefused() {
        assertRefused("[]:")
    }

    func testMappingAsKeyAndNestedBadKeysAreRefused() {
        assertRefused("{a: 1}: 2\n")
        assertRefused("name: x\nplugins:\n  dir: p\n  list:\n    - {[1, 2]: x}\n")
        XCTAssertThrowsError(try ConfigFile.parse(yaml: "name: x\n? [a]\n: 1\n")) { error in
            XCTAssertTrue("\(error)".contains("line 2"), "\(error)")
        }
    }

    func testPlainKeysStillLoad() throws {
        let c = try ConfigFile.parse(yaml: "name: a1\nlisten: tcp://127.0.0.1:7001\nheartbeat_interval: 2\n")
        XCTAssertEqual(c.name, "a1")
        XCTAssertEqual(c.heartbeatInterval, 2)
    }
}
