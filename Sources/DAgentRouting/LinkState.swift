import DAgentWire

/// What the core knows about one link.
package struct LinkState {
    package let id: LinkID
    package let isParent: Bool
    package let address: String
    package let openedNs: UInt64
    package var lastHeardNs: UInt64
    package var lastSentHeartbeatNs: UInt64
    /// Set once the peer registered (children) or we registered with it (parent).
    package var peerName: String = ""
    package var registered = false
    package var closing = false
    package var framesIn: UInt64 = 0
    package var framesOut: UInt64 = 0
    /// The heartbeat interval the peer announced (0 until it did).
    package var peerHeartbeatNs: UInt64 = 0
    /// A replica-to-replica link: no names, no routing, service frames only.
    package var isPeer = false
    /// The cluster-secret handshake has not finished: only its frames pass.
    package var authPending = false
    /// A query-only link (`dagent tree`): registered, but its name is not in
    /// the tree, and it may only ask TreeRequest.
    package var queryOnly = false
    /// The source last validated on this child link, and the route-table
    /// version it was validated at (the fast path's source check).
    package var lastSource = ""
    package var lastSourceVersion: UInt64 = .max
    /// What the peer's TLS certificate allows (nil on a link without TLS).
    package var certificate: CertificateNames?
}
