import DAgentClusterSupport
import Foundation
import XCTest

/// Mutual TLS with real processes: certificates made by `dagent certs`, nodes with
/// `--tls-cert/--tls-key/--tls-ca`, refusals logged with their reason.
final class TLSTests: XCTestCase {
    var c: Cluster!

    override func setUpWithError() throws { c = try Cluster(name) }
    override func tearDown() { c.shutdown() }

    var ca: String { c.dir.appendingPathComponent("ca").path }
    var certs: String { c.dir.appendingPathComponent("certs").path }

    /// Issues a certificate for `name` (plus `sans`) from the cluster CA (`ca` dir).
    func issue(_ name: String, _ sans: [String] = [], subtree: Bool = false, caDir: String? = nil, out: String? = nil) {
        var args = ["certs", "issue", "--ca", caDir ?? ca, "--name", name, "--out", out ?? certs, "--json"]
        for s in sans { args += ["--san", s] }
        if subtree { args.append("--subtree") }
        let r = c.run(args)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("\"names\""), r.out)
    }

    /// The TLS flags for the certificate of `name`.
    func tls(_ name: String, dir: String? = nil, caDir: String? = nil) -> [String] {
        let d = dir ?? certs
        return ["--tls-cert", "\(d)/\(name).crt", "--tls-key", "\(d)/\(name).key", "--tls-ca", "\(caDir ?? ca)/ca.crt"]
    }

    func initCA(_ dir: String? = nil) {
        let r = c.run(["certs", "init", "--out", dir ?? ca, "--json"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("ca.crt"), r.out)
    }

    func startRoot(_ port: Int) throws {
        issue("root", subtree: true)
        try c.startNode("root", ["--listen", c.addr(port)] + tls("root"))
        c.waitFor("root listens") { c.log("root").contains("listening on") }
    }

    func testThreeHopRouteOverTLSWithWildcardSubtrees() throws {
        initCA()
        let root = Cluster.freePort(), a1 = Cluster.freePort(), a2 = Cluster.freePort()
        try startRoot(root)
        issue("a1", subtree: true)
        issue("a2", subtree: true)
        issue("l1")
        issue("l2")
        try c.startNode("a1", ["--listen", c.addr(a1), "--parent", c.addr(root)] + tls("a1"))
        try c.startNode("a2", ["--listen", c.addr(a2), "--parent", c.addr(root)] + tls("a2"))
        try c.start("l1", ["recv", "--via", c.addr(a1), "--count", "1", "--timeout", "30"] + tls("l1"))
        c.waitFor("l1 registered with a1 (its name from its certificate)") { c.log("l1").contains("'l1' ready") }
        // l2 → a2 → root → a1 → l1, every hop mutual TLS; root learnt l1 through a1's *.a1.
        let sent = c.run(["send", "--via", c.addr(a2), "--to", "l1", "over-tls"] + tls("l2"))
        XCTAssertEqual(sent.status, 0, sent.err)
        XCTAssertEqual(c.waitForExit("l1", timeout: 10), 0, c.log("l1"))
        XCTAssertTrue(c.output("l1").hasPrefix("l2 ") && c.output("l1").contains("over-tls"), c.output("l1"))
        // `dagent tree` over TLS sees the subtree.
        let tree = c.run(["tree", "--via", c.addr(root), "--json"] + tls("l2"))
        XCTAssertEqual(tree.status, 0, tree.err)
        XCTAssertTrue(tree.out.contains("\"a1\""), tree.out)
    }

    func testACertificateNamingAnotherNodeIsRefused() throws {
        initCA()
        let root = Cluster.freePort()
        try startRoot(root)
        issue("l9")
        let r = c.run(["send", "--via", c.addr(root), "--name", "evil", "--to", "root", "x", "--join-timeout", "3"] + tls("l9"))
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("does not allow the name 'evil'"), r.err)
        c.waitFor("root says why") { c.log("root").contains("does not allow the name 'evil'") }
        XCTAssertFalse(c.names(atTLS: root, tls("l9"))?.contains("evil") ?? true)
    }

    func testASubtreeNeedsTheWildcard() throws {
        initCA()
        let root = Cluster.freePort(), a1 = Cluster.freePort()
        try startRoot(root)
        issue("a1")   // no *.a1
        issue("l1")
        try c.startNode("a1", ["--listen", c.addr(a1), "--parent", c.addr(root)] + tls("a1"))
        c.waitFor("a1 registered") { c.log("a1").contains("registered") }
        let r = c.run(["recv", "--via", c.addr(a1), "--count", "1", "--timeout", "2"] + tls("l1"))
        _ = r
        c.waitFor("root refuses l1 under a1") { c.log("a1").contains("no SAN '*.a1'") || c.log("root").contains("no SAN '*.a1'") }
    }

    func testACertificateFromAnotherCAIsRefused() throws {
        initCA()
        let root = Cluster.freePort()
        try startRoot(root)
        let other = c.dir.appendingPathComponent("other-ca").path
        initCA(other)
        issue("l1", caDir: other, out: other)
        let r = c.run(["send", "--via", c.addr(root), "--to", "root", "x", "--join-timeout", "3"]
                      + tls("l1", dir: other, caDir: ca))
        XCTAssertNotEqual(r.status, 0)
        c.waitFor("root refuses the handshake") { c.log("root").contains("refused a connection") }
        XCTAssertTrue(c.log("root").contains("not issued by the cluster CA") || c.log("root").contains("CERTIFICATE_VERIFY_FAILED"),
                      c.log("root"))
    }

    func testAPlaintextClientOnATLSListenerIsRefused() throws {
        initCA()
        let root = Cluster.freePort()
        try startRoot(root)
        let r = c.run(["send", "--via", c.addr(root), "--name", "plain", "--to", "root", "x", "--join-timeout", "2"])
        XCTAssertNotEqual(r.status, 0)
        c.waitFor("root refuses it") { c.log("root").contains("refused a connection") }
        XCTAssertFalse(c.log("root").contains("child 'plain' registered"))
    }

    func testRaftReplicasOverTLSElectAndCommit() throws {
        initCA()
        let ports = [Cluster.freePort(), Cluster.freePort(), Cluster.freePort()]
        let cluster = try c.writeRaftCluster(ports: ports)
        for id in 1...3 { issue("r\(id)", ["@raft.1.\(id)"], subtree: true) }
        issue("ops")
        for id in 1...3 { try c.startReplica(id, cluster: cluster, tls("r\(id)")) }
        c.waitFor("a leader is elected and commits", timeout: 30) {
            c.run(["state", "put", "--via", c.addr(ports[2]), "k", "v", "--timeout", "1"] + tls("ops")).status == 0
        }
        let got = c.run(["state", "get", "--via", c.addr(ports[0]), "k"] + tls("ops"))
        XCTAssertEqual(got.status, 0, got.err)
        XCTAssertTrue(got.out.contains("v"), got.out)
        XCTAssertTrue(c.log("r3").contains("peer link from replica 1 up") || c.log("r3").contains("peer link from replica 2 up"), c.log("r3"))
    }

    func testAReplicaCertificateMustNameTheReplica() throws {
        initCA()
        let ports = [Cluster.freePort(), Cluster.freePort()]
        let cluster = try c.writeRaftCluster(ports: ports)
        issue("r1", ["@raft.1.2"], subtree: true)   // r1 holds replica 2's identity, not its own
        issue("r2", ["@raft.1.2"], subtree: true)
        try c.startReplica(2, cluster: cluster, tls("r2"))
        try c.startReplica(1, cluster: cluster, tls("r1"))
        c.waitFor("r2 refuses r1's hello") { c.log("r2").contains("does not name replica 1 of stream 1") }
    }

    func testBadTLSFilesAreRefusedAtStart() throws {
        initCA()
        issue("n1")
        issue("n2")
        let missing = c.run(["run", "--name", "n1", "--listen", c.addr(Cluster.freePort()),
                             "--tls-cert", "/nonexistent.crt", "--tls-key", "\(certs)/n1.key", "--tls-ca", "\(ca)/ca.crt"])
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.err.contains("tls.cert: /nonexistent.crt does not exist"), missing.err)
        let mismatch = c.run(["run", "--name", "n1", "--listen", c.addr(Cluster.freePort()),
                              "--tls-cert", "\(certs)/n1.crt", "--tls-key", "\(certs)/n2.key", "--tls-ca", "\(ca)/ca.crt"])
        XCTAssertEqual(mismatch.status, 2)
        XCTAssertTrue(mismatch.err.contains("does not match the certificate"), mismatch.err)
        let notPEM = c.run(["run", "--name", "n1", "--listen", c.addr(Cluster.freePort()),
                            "--tls-cert", "\(certs)/n1.crt", "--tls-key", "\(certs)/n1.key", "--tls-ca", "\(certs)/n1.key"])
        XCTAssertEqual(notPEM.status, 2)
        XCTAssertTrue(notPEM.err.contains("tls.ca") && notPEM.err.contains("holds no PEM certificate"), notPEM.err)
        let partial = c.run(["send", "--via", c.addr(Cluster.freePort()), "--to", "x", "y", "--tls-cert", "\(certs)/n1.crt"])
        XCTAssertNotEqual(partial.status, 0)
        XCTAssertTrue(partial.err.contains("missing --tls-key, --tls-ca"), partial.err)
    }
}

extension Cluster {
    /// `dagent tree --json` over TLS: the names the node at `port` sees (nil if no answer).
    func names(atTLS port: Int, _ tls: [String]) -> Set<String>? {
        let r = run(["tree", "--via", addr(port), "--json"] + tls)
        guard r.status == 0, let data = r.out.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let names = object["names"] as? [[String: Any]] else { return nil }
        return Set(names.compactMap { $0["name"] as? String })
    }
}
