import DAgentNode
import Foundation

/// A leaf node joined under the root node listening on `port`, started and registered (its
/// name committed in the replicated directory).
func joinLeaf(_ name: String, at port: Int) throws -> Node {
    var c = NodeConfig(name: name)
    c.parents = [.tcp(host: "127.0.0.1", port: port)]
    let n = try Node(config: c)
    try n.start().wait()
    try n.ready().wait()
    return n
}
