/// How the CLI, the agents and the root group's store talk about deployments.
///
/// - The desired state of agent A of tree T is the JSON `DesiredState` under
///   the key `deploy/T/agents/A` of the root group's store.
/// - Each agent reports its processes under `deploy/T/status/A` (an
///   `AgentReport`, refreshed at most once a second) and answers admin
///   requests of type `adminType` addressed to its name:
///   `{"op":"status"}`, `{"op":"reconcile"}` (re-read the desired state now),
///   `{"op":"restart","name":N}`, `{"op":"logs","name":N,"tail":LINES}`.
public enum DeployProtocol {
    /// Message type of deploy admin requests (reserved range).
    public static let adminType: UInt32 = 0xFFFF_0200

    public static func desiredKey(tree: String, agent: String) -> String { "deploy/\(tree)/agents/\(agent)" }
    public static func statusKey(tree: String, agent: String) -> String { "deploy/\(tree)/status/\(agent)" }
    public static func treePrefix(_ tree: String) -> String { "deploy/\(tree)/" }
}

/// What one agent should run.
public struct DesiredState: Codable, Sendable, Equatable {
    public var processes: [ProcessSpec]
    public init(processes: [ProcessSpec]) { self.processes = processes }
}

/// What one agent (or the per-machine supervisor) reports.
public struct AgentReport: Codable, Sendable, Equatable {
    public var agent: String
    public var tree: String
    /// False until the agent has read its desired state.
    public var hasDesired: Bool
    public var processes: [ProcessStatus]
    /// Unix time when the agent made this report (uptimes are as of then).
    public var reportedAt: Double?

    enum CodingKeys: String, CodingKey { case agent, tree, hasDesired = "has_desired", processes, reportedAt = "reported_at" }

    public init(agent: String, tree: String, hasDesired: Bool, processes: [ProcessStatus], reportedAt: Double? = nil) {
        self.agent = agent
        self.tree = tree
        self.hasDesired = hasDesired
        self.processes = processes
        self.reportedAt = reportedAt
    }
}
