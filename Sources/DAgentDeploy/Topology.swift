/// A deployed tree, as the topology file describes it (see `docs/deploy.md`):
/// the root group, one agent per machine, and each agent's processes.
/// Paths are absolute once parsed (relative ones are taken from the file's folder).
public struct Topology: Sendable, Equatable {
    /// The tree's name; keys in the root group's store live under `deploy/NAME/`.
    public var name: String
    /// Folder under which every node and process keeps its state and logs.
    public var data: String
    /// Cluster secret every node of the tree presents (optional).
    public var secret: String?
    /// Log level of the nodes `up` starts (`info` by default).
    public var logLevel: String
    /// The root group's replicas (1, 3 or 5).
    public var roots: [RootSpec]
    /// The agents, in file order.
    public var agents: [AgentSpec]
    /// The file it was read from ("" when parsed from text).
    public var source: String

    /// Every process of every agent, in file order.
    public var processes: [ProcessSpec] { agents.flatMap(\.processes) }

    public func agent(named name: String) -> AgentSpec? { agents.first { $0.name == name } }
    public func root(id: UInt64) -> RootSpec? { roots.first { $0.id == id } }
    public func process(named name: String) -> ProcessSpec? { processes.first { $0.name == name } }

    /// The parent addresses of an agent: every root replica, in id order (failover).
    public var rootAddresses: [TCPAddress] { roots.map(\.listen) }

    /// Folder of a root replica's Raft log, metadata and logs.
    public func dataDir(root: RootSpec) -> String { data + "/roots/" + root.name }
    /// Folder of an agent's session, supervisor state and process logs.
    public func dataDir(agent: String) -> String { data + "/agents/" + agent }
    /// Folder of the per-machine supervisor (`dagent supervise`).
    public var superviseDir: String { data + "/supervise" }
}

/// `tcp://HOST:PORT`, the only listen address a topology accepts for nodes.
public struct TCPAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
    public var description: String { "tcp://\(host):\(port)" }

    /// Parses `tcp://HOST:PORT` (an IPv6 host in brackets); nil if it is not one.
    public static func parse(_ text: String) -> TCPAddress? {
        guard text.hasPrefix("tcp://") else { return nil }
        let rest = text.dropFirst(6)
        guard let colon = rest.lastIndex(of: ":") else { return nil }
        var host = String(rest[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        return TCPAddress(host: host, port: port)
    }

    /// True if both addresses may bind the same port on one machine
    /// (same port and same host, or either is a wildcard).
    public func overlaps(_ other: TCPAddress) -> Bool {
        guard port == other.port else { return false }
        let any: Set<String> = ["0.0.0.0", "::", "*"]
        return host == other.host || any.contains(host) || any.contains(other.host)
    }
}

/// One replica of the root group.
public struct RootSpec: Sendable, Equatable {
    /// Raft node id (the DCF `node_id`), unique in the group.
    public var id: UInt64
    /// Its name in the tree (`r<ID>` by default).
    public var name: String
    /// The machine it runs on (nil: this one).
    public var host: String?
    public var listen: TCPAddress
    /// Line of its entry in the file.
    public var line: Int
}

/// One agent: the node of one machine, supervising that machine's processes.
public struct AgentSpec: Sendable, Equatable {
    public var name: String
    /// The machine it runs on (nil: this one).
    public var host: String?
    /// Where it accepts TCP children (optional when it serves only message queues).
    public var listen: TCPAddress?
    /// The path keying the System V queues it serves (optional).
    public var msgq: String?
    /// Python plugin folders (absolute).
    public var plugins: [String]
    /// Per-plugin config sections, as JSON text (`{}` when none).
    public var pluginConfigJSON: String
    public var processes: [ProcessSpec]
    public var line: Int
    /// Line of its `listen:` (its own line when it has none).
    public var listenLine: Int = 0
    /// Its HTTP listener (`/healthz`, `/metrics` with the `dagent_process_*` series), if any.
    public var http: TCPAddress?
    /// Line of its `http:`.
    public var httpLine: Int = 0
    /// Its node's `metrics:` section (report_to, ...) as JSON text ("" when none).
    public var metricsJSON: String = ""

    /// The address its processes join through: `msgq://PATH` if it serves
    /// message queues, else its TCP listen address ("" if neither).
    public var childAddress: String {
        if let msgq { return "msgq://" + msgq }
        return listen?.description ?? ""
    }
}
