import DAgentNode

/// Nodes on real loopback TCP links for the tests of this target: a started
/// root listening on `port`, and leaves joined to it and registered.
enum TCPTree {
    static func root(port: Int, _ configure: (inout NodeConfig) -> Void = { _ in }) throws -> Node {
        var c = NodeConfig(name: "root")
        c.listen = [.tcp(host: "127.0.0.1", port: port)]
        configure(&c)
        let n = try Node(config: c)
        try n.start().wait()
        return n
    }

    static func leaf(_ name: String, port: Int, _ configure: (inout NodeConfig) -> Void = { _ in }) throws -> Node {
        var c = NodeConfig(name: name)
        c.parents = [.tcp(host: "127.0.0.1", port: port)]
        configure(&c)
        let n = try Node(config: c)
        try n.start().wait()
        try n.ready().wait()
        return n
    }
}
