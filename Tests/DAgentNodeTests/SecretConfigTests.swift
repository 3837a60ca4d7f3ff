import DAgentWire
import Foundation
import XCTest
@testable import DAgentNode

/// `secret_file`, its permission checks, and the open-listener warning.
final class SecretConfigTests: XCTestCase {
    var dir: String!

    override func setUp() {
        dir = NSTemporaryDirectory() + "secretcfg-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func write(_ name: String, _ text: String, mode: Int) -> String {
        let path = dir + "/" + name
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        chmod(path, mode_t(mode))
        return path
    }

    func load(_ yaml: String) throws -> NodeConfig {
        let path = dir + "/node.yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return try ConfigFile.load(path: path)
    }

    func testSecretFileIsReadWithoutItsNewline() throws {
        _ = write("cluster.secret", "0123456789abcdef-cluster\n", mode: 0o600)
        let c = try load("name: n1\nlisten: tcp://127.0.0.1:0\nsecret_file: cluster.secret\n")
        XCTAssertEqual(c.secret, "0123456789abcdef-cluster")
        XCTAssertEqual(c.secretFile, dir + "/cluster.secret")
        XCTAssertEqual(c.coreConfig.secret, "0123456789abcdef-cluster")
    }

    func testAFileOthersCanReadIsRefusedNamingTheFix() {
        let path = write("loose.secret", "0123456789abcdef-cluster\n", mode: 0o644)
        XCTAssertThrowsError(try load("name: n1\nlisten: tcp://127.0.0.1:0\nsecret_file: loose.secret\n")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("secret_file") && text.contains("mode 644") && text.contains("chmod 600 \(path)"), text)
        }
    }

    func testMissingShortAndOddSecretFilesAreRefused() {
        XCTAssertThrowsError(try SecretFile.read(dir + "/nope", label: "--secret-file")) { error in
            XCTAssertTrue("\(error)".contains("cannot read the secret file"), "\(error)")
        }
        let short = write("short.secret", "abc\n", mode: 0o600)
        XCTAssertThrowsError(try SecretFile.read(short, label: "--secret-file")) { error in
            XCTAssertTrue("\(error)".contains("has 3 bytes; use at least 16"), "\(error)")
        }
        XCTAssertThrowsError(try SecretFile.read(dir, label: "--secret-file")) { error in
            XCTAssertTrue("\(error)".contains("not a regular file"), "\(error)")
        }
    }

    func testOpenListenerWarning() {
        XCTAssertTrue(OpenListener.isLoopback("127.0.0.1"))
        XCTAssertTrue(OpenListener.isLoopback("127.3.2.1"))
        XCTAssertTrue(OpenListener.isLoopback("localhost"))
        XCTAssertTrue(OpenListener.isLoopback("::1"))
        XCTAssertFalse(OpenListener.isLoopback("0.0.0.0"))
        XCTAssertFalse(OpenListener.isLoopback("::"))
        XCTAssertFalse(OpenListener.isLoopback("10.0.0.7"))
        XCTAssertFalse(OpenListener.isLoopback("127.example.com"))
        let open = Endpoint.tcp(host: "0.0.0.0", port: 7000)
        XCTAssertNotNil(OpenListener.warning(for: open, secret: false, tls: false))
        XCTAssertTrue(OpenListener.warning(for: open, secret: false, tls: false)!.contains("neither TLS nor a cluster secret"))
        XCTAssertNil(OpenListener.warning(for: open, secret: true, tls: false))
        XCTAssertNil(OpenListener.warning(for: open, secret: false, tls: true))
        XCTAssertNil(OpenListener.warning(for: .tcp(host: "127.0.0.1", port: 7000), secret: false, tls: false))
        XCTAssertNil(OpenListener.warning(for: .msgq(path: "/tmp/x"), secret: false, tls: false))
    }
}
