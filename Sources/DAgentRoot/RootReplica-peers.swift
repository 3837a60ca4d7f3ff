import DAgentRouting
import DAgentWire

/// Who may be a peer link: the rules a replica applies to a `PeerHello`.
extension RootReplica {
    /// Why `hello` on `link` is refused, or nil. Lower ids dial higher ones,
    /// so a hello can only come from a lower id; and a member whose link is
    /// up keeps it: a second hello claiming the same id does not replace it
    /// (the real member re-dials once its old link is gone).
    func peerHelloProblem(_ hello: Dagent_PeerHello, on link: LinkID) -> String? {
        if hello.nodeID >= selfID {
            return "node \(hello.nodeID) would not dial node \(selfID) (lower ids dial higher ones)"
        }
        if let old = peers[hello.nodeID], old != link {
            return "node \(hello.nodeID) already has a live peer link here; a second one is not accepted while it is up"
        }
        return nil
    }
}
