/// Where a message goes next from this node: out on a link to that link's
/// peer, or — on a leaf whose parent link is a message queue — straight onto a
/// brother's channel through that link (brother p2p: the agent is not a hop).
/// The core decides the hop (`NodeCore.nextHop`); a link writes where it is told.
public struct Hop: Hashable, Sendable {
    /// The link the message is written on.
    public var link: LinkID
    /// The brother's channel on that link's transport, or 0: the link's own peer.
    public var brother: UInt64

    public init(link: LinkID, brother: UInt64 = 0) {
        self.link = link
        self.brother = brother
    }

    /// True if the message skips the link's peer and goes to a brother.
    @inline(__always) public var isBrother: Bool { brother != 0 }
}
