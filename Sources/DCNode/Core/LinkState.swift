import DAgentWire

/// What the core knows about one link.
struct LinkState {
    let id: LinkID
    let isParent: Bool
    let address: String
    let openedNs: UInt64
    var lastHeardNs: UInt64
    var lastSentHeartbeatNs: UInt64
    /// Set once the peer registered (children) or we registered with it (parent).
    var peerName: String = ""
    var registered = false
    var closing = false
    var framesIn: UInt64 = 0
    var framesOut: UInt64 = 0
    /// The heartbeat interval the peer announced (0 until it did).
    var peerHeartbeatNs: UInt64 = 0
    /// A replica-to-replica link: no names, no routing, service frames only.
    var isPeer = false
}
