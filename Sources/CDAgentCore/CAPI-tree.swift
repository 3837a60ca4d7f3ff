import CDAgent
import DAgentWire
import Foundation
import NIOCore
import NIOPosix
import DAgentNode
import DAgentRouting

// `dagent tree` through the C API: what a node sees, rendered by DAgentNode's
// TreeRender as the CLI prints it (text or JSON). The result is a malloc'd,
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
    do {
        endpoint = try Endpoint.parse(text)
    } catch {
        return fail(error)
    }
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { try? group.syncShutdownGracefully() }
    do {
        let reply = try TreeQuery.fetch(endpoint, timeout: timeout, group: group).wait()
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
