import ArgumentParser
import Foundation
import DAgentNode
import DAgentRouting
import DAgentTLS

/// `--tls-cert/--tls-key/--tls-ca`: the TLS files of a one-shot command (the same
/// as a node's `tls: {cert, key, ca}`). Without `--name`, the command takes the
/// first exact name of its certificate.
package struct TLSOptions: ParsableArguments {
    package init() {}

    @Option(name: .customLong("tls-cert"), help: "TLS certificate (PEM) for a tree that uses TLS; its SAN is the name this command may register (see `dagent certs issue`).")
    package var cert: String?

    @Option(name: .customLong("tls-key"), help: "TLS private key (PEM) of --tls-cert.")
    package var key: String?

    @Option(name: .customLong("tls-ca"), help: "The cluster CA certificate (PEM) the node's certificate must chain to.")
    package var ca: String?

    /// The files, nil if none of the flags is given; all three are needed otherwise.
    package func files() throws -> TLSFiles? {
        if cert == nil && key == nil && ca == nil { return nil }
        let missing = [("--tls-cert", cert), ("--tls-key", key), ("--tls-ca", ca)].filter { $0.1 == nil }.map(\.0)
        if !missing.isEmpty { throw ConfigError("TLS needs --tls-cert, --tls-key and --tls-ca; missing \(missing.joined(separator: ", "))") }
        return TLSFiles(cert: cert!, key: key!, ca: ca!).absolute()
    }

    /// The client contexts for a raw TLS connection (`dagent tree`), nil without TLS.
    package func contexts() throws -> TLSContexts? {
        guard let files = try files() else { return nil }
        do { return try files.load().contexts() } catch { throw ConfigError("\(error)") }
    }

    /// The first exact (non-wildcard, non-`@`) name of the certificate: a one-shot command's default name.
    package func certificateName() throws -> String? {
        guard let files = try files() else { return nil }
        do { return try files.load().clientName } catch {
            throw ConfigError("\(error)")
        }
    }
}
