import CDAgent
import DAgentNode
import DAgentRouting
import DAgentTLS
import Foundation

// `dagent_create_tls`: a node with mutual TLS on its links, and/or the options of a
// node YAML file (its `tls:` section among them). Standalone Python's
// `dagent.Node(..., tls_cert=, tls_key=, tls_ca=, config=)` calls it. `tlsFiles` reads the three
// paths of every C call that takes them.

@_cdecl("dagent_create_tls")
public func dagent_create_tls(_ name: UnsafePointer<CChar>?, _ via: UnsafePointer<CChar>?, _ listen: UnsafePointer<CChar>?,
                              _ secret: UnsafePointer<CChar>?, _ cert: UnsafePointer<CChar>?, _ key: UnsafePointer<CChar>?,
                              _ ca: UnsafePointer<CChar>?, _ configFile: UnsafePointer<CChar>?) -> OpaquePointer? {
    createNode(name, via, listen, secret) { config in
        if let path = string(configFile), !path.isEmpty {
            config = try ConfigFile.load(path: path, into: config)
        }
        if let files = try tlsFiles(cert, key, ca) { config.tls = files }
    }
}

/// The TLS files of a C call (`dagent_create_tls`, `dagent_tree_with`): all three paths, or
/// none (NULL or ""), which gives nil. Relative paths are taken from the current directory.
func tlsFiles(_ cert: UnsafePointer<CChar>?, _ key: UnsafePointer<CChar>?, _ ca: UnsafePointer<CChar>?) throws -> TLSFiles? {
    let given = [("tls_cert", string(cert) ?? ""), ("tls_key", string(key) ?? ""), ("tls_ca", string(ca) ?? "")]
    guard given.contains(where: { !$0.1.isEmpty }) else { return nil }
    let missing = given.filter { $0.1.isEmpty }.map(\.0)
    if !missing.isEmpty {
        throw ConfigError("TLS needs tls_cert, tls_key and tls_ca; missing \(missing.joined(separator: ", "))")
    }
    return TLSFiles(cert: given[0].1, key: given[1].1, ca: given[2].1).absolute()
}
