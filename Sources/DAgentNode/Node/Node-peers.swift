import DAgentWire
import NIOCore
import NIOPosix
import DAgentRouting
import DAgentLink
import DAgentMsgq

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
    /// With `tls:`, the peer's certificate must name replica `replica` (SAN `@raft.STREAM.ID`).
    public func dialPeer(_ endpoint: Endpoint, hello: Dagent_PeerHello, replica: UInt64? = nil) -> EventLoopFuture<LinkID> {
        guard case let .tcp(host, port) = endpoint else {
            return eventLoop.makeFailedFuture(ConfigError("peer address \(endpoint) must be tcp://"))
        }
        let id = allocateLinkID()
        return connectLink(host: host, port: port) { channel in
            try self.addTLS(channel, id: id, role: .dialedPeer(stream: hello.streamID, node: replica))
            try channel.pipeline.syncOperations.addHandler(
                LinkHandler(node: self, linkID: id, isParent: false, parentIndex: nil,
                            maxFrameBytes: self.config.maxFrameBytes, peerHello: hello))
        }
            .map { _ in id }   // the link announces itself (channelActive) on its own schedule
    }

    func peerLinkUp(_ id: LinkID, io: any LinkIO, address: String, hello: Dagent_PeerHello) {
        links[id] = io
        lastWritten = nil
        core.peerLinkUp(id, address: address, hello: hello, nowNs: nowNs)
        applyCertificate(id)
        perform()
        flushDirty()
    }

    /// Plugs the root group into this top node: names are confirmed and
    /// released through `authority`, unknown names routed to the replica it
    /// names, and peer links reported to it. The node holds it weakly. Call
    /// before `start`, on the event loop or before the node runs.
    public func plugIn(authority: any TopOfTreeAuthority) {
        core.authority = authority
    }

    /// The authority's answer to `confirmNames(requestID:...)`: the names it refused.
    public func namesConfirmed(requestID: UInt64, refused: [Dagent_NameRefusal]) {
        core.namesConfirmed(requestID: requestID, refused: refused)
        perform()
        scheduleFlush()
    }

    /// Sends a service frame on a peer link (flushed at the end of the loop turn).
    public func sendService(_ frame: Dagent_ServiceFrame, on id: LinkID) {
        // Not before the cluster secret handshake is done (Raft resends what is lost).
        guard let link = links[id], core.linkIsAuthenticated(id) else { return }
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
