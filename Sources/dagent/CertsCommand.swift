import ArgumentParser
import DAgentTLS
import Foundation
import DAgentCLI

/// `dagent certs`: the cluster CA and node certificates for mutual TLS.
struct CertsCommandGroup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "Create a cluster CA and issue node certificates for mutual TLS (P-256, PEM).",
        discussion: """
        Every TCP link of a tree with `tls: {cert, key, ca}` is mutual TLS against one cluster CA.
        A certificate's DNS SANs are the names its holder may register:
          NAME         the node may register as NAME
          *.NAME       the node registered as NAME may bring names below it (its subtree)
          @raft.S.N    the holder is replica N of root-group stream S (Raft peer links)
        Example:
          dagent certs init --out ca
          dagent certs issue --ca ca --name root --san @raft.1.1 --subtree --out certs
          dagent certs issue --ca ca --name a1 --subtree --out certs
          dagent certs issue --ca ca --name leaf1 --out certs
        See docs/security.md.
        """,
        subcommands: [CertsInitCommand.self, CertsIssueCommand.self]
    )
}

struct CertsInitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a cluster CA: writes DIR/ca.crt (give it to every node as tls.ca) and DIR/ca.key (mode 0600; keep it off the nodes)."
    )
    @Option(help: "Directory to write ca.crt and ca.key into (created if missing).") var out: String
    @Option(help: "The CA's common name.") var commonName = "dagent cluster CA"
    @Option(help: "Days the CA certificate is valid.") var days = 3650
    @Flag(help: "Replace an existing CA in DIR (every certificate it issued stops being trusted).") var force = false
    @Flag(help: "Print what was written as JSON.") var json = false

    func validate() throws {
        guard (1...36_500).contains(days) else { throw ValidationError("--days must be in 1...36500 (got \(days))") }
    }

    func run() throws {
        do {
            let w = try ClusterCA.create(in: out, commonName: commonName, days: days, force: force)
            printWritten(w, json: json)
        } catch {
            fail("\(error)")
        }
    }
}

struct CertsIssueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue",
        abstract: "Issue a node certificate signed by the CA in --ca: writes OUT/NAME.crt and OUT/NAME.key (mode 0600).",
        discussion: """
        The certificate names NAME (its first DNS SAN); --san adds more names and --subtree adds *.NAME,
        which lets NAME bring the names of its subtree (an agent or proxy). A root replica also needs
        --san @raft.STREAM.ID for its Raft peer links. The certificate is for TLS client and server use.
        """
    )
    @Option(help: "Directory holding ca.crt and ca.key (from `dagent certs init`).") var ca: String
    @Option(help: "The node name the certificate is for.") var name: String
    @Option(help: "Directory to write NAME.crt and NAME.key into (default: --ca).") var out: String?
    @Option(help: "Another name (DNS SAN) for the certificate; repeatable. `*.N` allows N's subtree, `@raft.S.N` a Raft replica.")
    var san: [String] = []
    @Flag(help: "Add the SAN *.NAME: the node may bring the names below it (agents, proxies, roots).") var subtree = false
    @Option(help: "Days the certificate is valid.") var days = 825
    @Flag(help: "Replace existing NAME.crt/NAME.key.") var force = false
    @Flag(help: "Print what was written as JSON.") var json = false

    func validate() throws {
        guard (1...36_500).contains(days) else { throw ValidationError("--days must be in 1...36500 (got \(days))") }
    }

    func run() throws {
        do {
            let extra = san + (subtree ? ["*.\(name)"] : [])
            let w = try ClusterCA.issue(caDir: ca, name: name, extraNames: extra, outDir: out ?? ca, days: days, force: force)
            printWritten(w, json: json)
        } catch {
            fail("\(error)")
        }
    }
}

private func printWritten(_ w: ClusterCA.Written, json: Bool) {
    let notAfter = ISO8601DateFormatter().string(from: w.notAfter)
    if json {
        let object: [String: Any] = ["cert": w.cert, "key": w.key, "names": w.names, "not_after": notAfter, "serial": w.serial]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        print(String(decoding: data, as: UTF8.self))
    } else {
        print("wrote \(w.cert)")
        print("wrote \(w.key) (mode 0600)")
        if !w.names.isEmpty { print("names: \(w.names.joined(separator: ", "))") }
        print("valid until \(notAfter)")
    }
}
