import DAgentNode
import DAgentRouting
import DAgentTLS
import Foundation
import XCTest

/// `tls: {cert, key, ca}` and `--tls-*`: parsing, relative paths, and validation of the
/// files (real PEM files made by the cluster CA of `dagent certs`).
final class TLSConfigTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "dagent-tlsconfig-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        _ = try ClusterCA.create(in: dir + "/ca")
        _ = try ClusterCA.issue(caDir: dir + "/ca", name: "n1", outDir: dir)
        _ = try ClusterCA.issue(caDir: dir + "/ca", name: "n2", extraNames: ["*.n2", "@raft.1.2"], outDir: dir)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func config(_ yaml: String) throws -> NodeConfig {
        try ConfigFile.parse(yaml: "name: n1\nlisten: tcp://127.0.0.1:7000\n" + yaml)
    }

    func testMappingAndFlagsGiveTheSameFiles() throws {
        let fromYAML = try config("tls: {cert: \(dir!)/n1.crt, key: \(dir!)/n1.key, ca: \(dir!)/ca/ca.crt}")
        var fromFlags = NodeConfig(name: "n1")
        _ = try NodeOptions.table.apply(flags: ["--tls-cert", "\(dir!)/n1.crt", "--tls-key", "\(dir!)/n1.key",
                                                "--tls-ca", "\(dir!)/ca/ca.crt"], to: &fromFlags)
        XCTAssertEqual(fromYAML.tls, fromFlags.tls)
        XCTAssertNoThrow(try fromYAML.validate())
        let identity = try fromYAML.tls!.load()
        XCTAssertEqual(identity.names, ["n1"])
        XCTAssertEqual(try fromYAML.tls!.load().contexts().names, ["n1"])
        XCTAssertEqual(try TLSFiles(cert: "\(dir!)/n2.crt", key: "\(dir!)/n2.key", ca: "\(dir!)/ca/ca.crt").load().names,
                       ["n2", "*.n2", "@raft.1.2"])
    }

    func testRelativePathsAreTakenFromTheConfigFilesDirectory() throws {
        let path = dir + "/node.yaml"
        try "name: n1\nlisten: tcp://127.0.0.1:7000\ntls:\n  cert: n1.crt\n  key: n1.key\n  ca: ca/ca.crt\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let c = try ConfigFile.load(path: path)
        XCTAssertEqual(c.tls?.cert, URL(fileURLWithPath: dir + "/n1.crt").standardizedFileURL.path)
        XCTAssertNoThrow(try c.validate())
    }

    func assertRefused(_ yaml: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let c = try config(yaml)
            try c.validate()
            XCTFail("accepted: \(yaml)", file: file, line: line)
        } catch {
            XCTAssertTrue("\(error)".contains(expected), "\(error)", file: file, line: line)
        }
    }

    func testBadFilesAreRefusedNamingTheOptionAndFile() throws {
        let d = dir!
        try "not pem at all".write(toFile: d + "/junk.pem", atomically: true, encoding: .utf8)
        try "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".write(toFile: d + "/broken.crt", atomically: true, encoding: .utf8)
        assertRefused("tls: {cert: \(d)/missing.crt, key: \(d)/n1.key, ca: \(d)/ca/ca.crt}", "tls.cert: \(d)/missing.crt does not exist")
        assertRefused("tls: {cert: \(d)/n1.crt, key: \(d)/n1.key, ca: \(d)/junk.pem}", "tls.ca: \(d)/junk.pem holds no PEM certificate")
        assertRefused("tls: {cert: \(d)/broken.crt, key: \(d)/n1.key, ca: \(d)/ca/ca.crt}", "tls.cert: \(d)/broken.crt has a PEM certificate that does not parse")
        assertRefused("tls: {cert: \(d)/n1.crt, key: \(d)/junk.pem, ca: \(d)/ca/ca.crt}", "tls.key: \(d)/junk.pem is not a PEM private key")
        assertRefused("tls: {cert: \(d)/n1.crt, key: \(d)/n2.key, ca: \(d)/ca/ca.crt}", "does not match the certificate")
        assertRefused("tls: {cert: \(d)/n1.crt, ca: \(d)/ca/ca.crt}", "tls.key is empty; tls needs cert, key and ca")
        assertRefused("tls: {cert: \(d)/n1.crt, key: \(d)/n1.key, ca: \(d)/ca/ca.crt, verify: false}", "unknown key 'verify'")
        assertRefused("tls: yes", "tls must be a mapping")
        // A certificate that another CA issued.
        _ = try ClusterCA.create(in: d + "/other", commonName: "another CA")
        _ = try ClusterCA.issue(caDir: d + "/other", name: "x", outDir: d + "/other")
        assertRefused("tls: {cert: \(d)/other/x.crt, key: \(d)/other/x.key, ca: \(d)/ca/ca.crt}", "was not issued by the CA in tls.ca")
    }

    func testTheCARefusesToBeReplacedAndNamesAreChecked() throws {
        XCTAssertThrowsError(try ClusterCA.create(in: dir + "/ca")) { e in
            XCTAssertTrue("\(e)".contains("already holds a CA"), "\(e)")
        }
        XCTAssertThrowsError(try ClusterCA.issue(caDir: dir + "/ca", name: "*.x", outDir: dir)) { e in
            XCTAssertTrue("\(e)".contains("a node's own name must be exact"), "\(e)")
        }
        XCTAssertThrowsError(try ClusterCA.issue(caDir: dir + "/ca", name: "a b", outDir: dir)) { e in
            XCTAssertTrue("\(e)".contains("contains ' '"), "\(e)")
        }
        XCTAssertThrowsError(try ClusterCA.issue(caDir: dir + "/ca", name: "n1", outDir: dir)) { e in
            XCTAssertTrue("\(e)".contains("exists already"), "\(e)")
        }
        XCTAssertThrowsError(try ClusterCA.issue(caDir: dir + "/nowhere", name: "n3", outDir: dir)) { e in
            XCTAssertTrue("\(e)".contains("--ca: \(dir!)/nowhere/ca.crt does not exist"), "\(e)")
        }
        let keyMode = try FileManager.default.attributesOfItem(atPath: dir + "/n1.key")[.posixPermissions] as? Int
        XCTAssertEqual(keyMode, 0o600)
    }
}
