import DAgentWire
import DAgentRouting
import DAgentLink
import DAgentMsgq

/// Lifecycle events a node reports to its owner (the CLI, the Python host).
public enum NodeEvent: Sendable {
    /// Our name is registered; `parent` is "" at the top of the tree.
    case registered(session: UInt64, parent: String)
    /// Our registration was refused or revoked; the node stops reconnecting.
    case registrationFailed(DAgentError)
    /// The parent link was lost; the node is failing over.
    case parentLost(reason: String)
}
