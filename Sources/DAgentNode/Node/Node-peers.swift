import DAgentWire
import NIOCore
import NIOPosix
import DAgentRouting
import DAgentLink
import DAgentMsgq

/// Events on peer links (links between root-group replicas).
public enum PeerEvent {
    case up(LinkID, Dagent_PeerHello)
    case down(LinkID)
    case frame(LinkID, Dagent_ServiceFrame)
}

/// What a top node asks of its name authority (the root group's directory).
public enum NameAuthorityEvent {
    /// Confirm these names (registered through child `agent`); answer with `namesConfirmed`.
    case confirm(requestID: UInt64, agent: String, [Dagent_NameRecord])
    /// These names left this node's subtree.
    case release([String])
}

/// Services and peer links: what a root-group replica plugs into a node.
/// Call these on the event loop (or before `start`).
extension Node {
    /// Delivers envelopes addressed to `name` (e.g. "@state") to `handler`,
    /// on the event loop. Other nodes route such names up the tree as usual.
    public func addService(_ name: String, handler: @escaping (Dagent_Envelope) -> Void) {
        serviceHandlers[name] = handler
        core.localServices.insert(name)
    }

    /// Dials a peer replica and says `hello` once connected. The returned
    /// future fails if the connection cannot be made; link events arrive
    /// through `onPeer`.
    public func dialPeer(_ endpoint: Endpoint, hello: Dagent_PeerHello) -> EventLoopFuture<LinkID> {
        guard case let .tcp(host, port) = endpoint else {
            return eventLoop.makeFailedFuture(ConfigError("peer address \(endpoint) must be tcp://"))
        }
        let highWater = config.slowConsumerBytes
        let id = nextLinkID
        nextLinkID += 1
        return ClientBootstrap(group: eventLoop)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelOption(ChannelOptions.writeBufferWaterMark, value: .init(low: highWater / 2, high: highWater))
            .connectTimeout(.nanoseconds(Int64(config.connectTimeout * 1e9)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        LinkHandler(node: self, linkID: id, isParent: false, parentIndex: nil,
                                    maxFrameBytes: self.config.maxFrameBytes, peerHello: hello))
                }
            }
            .connect(host: host, port: port)
            .map { _ in id }   // the link announces itself (channelActive) on its own schedule
    }

    func peerLinkUp(_ id: LinkID, io: any LinkIO, address: String, hello: Dagent_PeerHello) {
        links[id] = io
        core.peerLinkUp(id, address: address, hello: hello, nowNs: nowNs)
        perform()
        flushDirty()
    }

    /// Makes this top node defer name registrations to an authority (the root
    /// group's replicated directory), and route unknown names to the peer link
    /// `resolver` returns. Call before `start`.
    public func enableNameAuthority(resolver: @escaping (String) -> LinkID?,
                                    handler: @escaping (NameAuthorityEvent) -> Void) {
        core.nameAuthority = true
        core.peerResolver = resolver
        nameAuthority = handler
    }

    /// The authority's answer to `.confirm(requestID:...)`: the names it refused.
    public func namesConfirmed(requestID: UInt64, refused: [Dagent_NameRefusal]) {
        core.namesConfirmed(requestID: requestID, refused: refused)
        perform()
        scheduleFlush()
    }

    /// Sends a service frame on a peer link (flushed at the end of the loop turn).
    public func sendService(_ frame: Dagent_ServiceFrame, on id: LinkID) {
        guard let link = links[id] else { return }
        var f = Dagent_Frame()
        f.service = frame
        try? link.append(f)
        markDirty(id)
        scheduleFlush()
    }

    /// Closes a link (e.g. a duplicate peer link).
    public func closeLink(_ id: LinkID) {
        links[id]?.close(reason: "closed by the node")
    }
}
