import DAgentWire

/// What the top of a root group plugs into its routing core: the replicated
/// name directory and the peer links between replicas. `DAgentRoot` implements
/// it; the core calls it (on the driver's event loop) once its own state is
/// consistent, so an implementation may call back into the node.
///
/// Without an authority a top node confirms names itself and answers unknown
/// names with `no route`; peer links still carry pub/sub interest.
public protocol TopOfTreeAuthority: AnyObject {
    /// Names registered through the child `agent` must be confirmed by the
    /// directory. Answer with `NodeCore.namesConfirmed(requestID:refused:)`,
    /// now or later.
    func confirmNames(requestID: UInt64, agent: String, _ records: [Dagent_NameRecord])
    /// These names left this node's subtree.
    func releaseNames(_ names: [String])
    /// The peer link toward the replica that holds `name` (a name this node
    /// does not route itself), or nil: `no route`. Called on the routing path:
    /// must be a lookup, cheap and non-blocking.
    func peerLink(holding name: String) -> LinkID?
    /// A peer replica said hello on `link` (its secret was checked).
    func peerUp(_ link: LinkID, hello: Dagent_PeerHello)
    /// A peer link is gone.
    func peerDown(_ link: LinkID)
    /// A service frame arrived on a peer link.
    func serviceFrame(_ frame: Dagent_ServiceFrame, on link: LinkID)
    /// Whether the peer link that said `hello` carries pub/sub interest. With several
    /// links per replica pair (one per Raft stream) only one of them may (default: all).
    func peerCarriesInterest(_ hello: Dagent_PeerHello) -> Bool
}

extension TopOfTreeAuthority {
    public func peerCarriesInterest(_ hello: Dagent_PeerHello) -> Bool { true }
}
