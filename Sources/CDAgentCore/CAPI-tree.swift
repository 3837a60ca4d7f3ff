import CDAgent
import DAgentWire
import Foundation
import NIOCore
import NIOPosix
import DAgentNode
import DAgentRouting
import DAgentTLS

// `dagent tree` through the C API: what a node sees, rendered by DAgentNode's
// TreeRender as the CLI prints it (text or JSON). `dagent_tree_with` takes what
// `dagent tree --name --secret-file --tls-*` takes, for trees in secret or TLS mode. The result is a malloc'd,
// NUL-terminated string the caller frees with dagent_free.

/// Hands `text` to the caller as a malloc'd C string in `*out`.
private func give(_ text: String, _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    guard let out else { return fail(Int32(DAGENT_E_CONFIG), "dagent_tree: out must not be NULL") }
    guard let copy = strdup(text) else { return fail(Int32(DAGENT_E_STATE), "dagent_tree: out of memory") }
    out.pointee = copy
    return 0
}

private func render(_ reply: Dagent_TreeReply, json: Int32) -> String {
    json != 0 ? TreeRender.json(reply) : TreeRender.text(reply)
}

@_cdecl("dagent_tree")
public func dagent_tree(_ addr: UnsafePointer<CChar>?, _ json: Int32, _ timeout: Double,
                        _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    treeQuery(addr, json, timeout, out) { Credentials() }
}

/// What the tree query needs beyond the address: its name, the cluster secret, TLS contexts.
private struct Credentials {
    var name: String?
    var secret = ""
    var tls: TLSContexts?

    init() {}

    /// The arguments of `dagent_tree_with` (NULL or "" for what is not given), checked; the
    /// secret file is read and the TLS files loaded here.
    init(name: UnsafePointer<CChar>?, secret: UnsafePointer<CChar>?, secretFile: UnsafePointer<CChar>?,
         cert: UnsafePointer<CChar>?, key: UnsafePointer<CChar>?, ca: UnsafePointer<CChar>?) throws {
        self.name = string(name).flatMap { $0.isEmpty ? nil : $0 }
        let given = string(secret) ?? "", file = string(secretFile) ?? ""
        if !given.isEmpty && !file.isEmpty {
            throw ConfigError("dagent_tree: give secret or secret_file, not both")
        }
        self.secret = file.isEmpty ? given : try SecretFile.read(file, label: "secret_file")
        if let files = try tlsFiles(cert, key, ca) {
            do {
                let identity = try files.load()
                tls = try identity.contexts()
                if self.name == nil { self.name = identity.clientName }
            } catch {
                throw ConfigError("\(error)")
            }
        }
    }
}

@_cdecl("dagent_tree_with")
public func dagent_tree_with(_ addr: UnsafePointer<CChar>?, _ name: UnsafePointer<CChar>?, _ secret: UnsafePointer<CChar>?,
                             _ secretFile: UnsafePointer<CChar>?, _ cert: UnsafePointer<CChar>?, _ key: UnsafePointer<CChar>?,
                             _ ca: UnsafePointer<CChar>?, _ json: Int32, _ timeout: Double,
                             _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    treeQuery(addr, json, timeout, out) {
        try Credentials(name: name, secret: secret, secretFile: secretFile, cert: cert, key: key, ca: ca)
    }
}

/// The tree query of `dagent_tree` and `dagent_tree_with`: the address and timeout checked,
/// then `credentials` (which may throw a config error), then the query itself.
private func treeQuery(_ addr: UnsafePointer<CChar>?, _ json: Int32, _ timeout: Double,
                       _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                       credentials makeCredentials: () throws -> Credentials) -> Int32 {
    cdagent_clear_error()
    out?.pointee = nil
    guard var text = string(addr), !text.isEmpty else {
        return fail(Int32(DAGENT_E_CONFIG), "dagent_tree needs an address (tcp://HOST:PORT or msgq://PATH)")
    }
    guard timeout > 0, timeout.isFinite else {
        return fail(Int32(DAGENT_E_CONFIG), "dagent_tree: timeout must be > 0 seconds (got \(timeout))")
    }
    for prefix in ["pull:", "push:"] where text.hasPrefix(prefix) { text = String(text.dropFirst(prefix.count)) }
    let endpoint: Endpoint
    let credentials: Credentials
    do {
        endpoint = try Endpoint.parse(text)
        credentials = try makeCredentials()
    } catch {
        return fail(error)
    }
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { try? group.syncShutdownGracefully() }
    do {
        let reply = try TreeQuery.fetch(endpoint, timeout: timeout, name: credentials.name, secret: credentials.secret,
                                        group: group, tls: credentials.tls).wait()
        return give(render(reply, json: json), out)
    } catch {
        return fail(error)
    }
}

@_cdecl("dagent_node_tree")
public func dagent_node_tree(_ p: OpaquePointer?, _ json: Int32,
                             _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    out?.pointee = nil
    guard let h = handle(p) else { return -Int32(DAGENT_E_STATE) }
    let node = h.node
    if node.eventLoop.inEventLoop {
        return fail(Int32(DAGENT_E_STATE), "dagent_node_tree blocks; it cannot be called on the node's event loop")
    }
    do {
        let reply = try node.treeSnapshot().wait()
        return give(render(reply, json: json), out)
    } catch {
        return fail(error)
    }
}
