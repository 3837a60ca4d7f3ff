import DAgentRouting
import DAgentTLS
import NIOCore
import NIOSSL

/// Mutual TLS on the node's TCP links (`tls: {cert, key, ca}`). Every link the
/// node accepts or dials gets a `NIOSSLHandler` and a `TLSIdentityGate` in
/// front of its `LinkHandler`; the link comes up only after the handshake, and
/// the peer's SANs go to the routing core (`NodeCore.linkCertified`), which
/// checks them against the names registered on the link.
extension Node {
    /// Which end of which kind of link a channel is.
    enum TLSLinkRole {
        case child
        case parent(index: Int?)
        /// A peer replica this node dials: its certificate must name replica `node` of `stream`.
        case dialedPeer(stream: UInt64, node: UInt64?)
    }

    /// Adds the TLS handlers for link `id` (nothing without `tls:`). On the event loop of `channel`.
    func addTLS(_ channel: Channel, id: LinkID, role: TLSLinkRole) throws {
        guard let tls else { return }
        let ssl: NIOSSLHandler
        switch role {
        case .child: ssl = NIOSSLServerHandler(context: tls.server)
        case .parent, .dialedPeer: ssl = try NIOSSLClientHandler(context: tls.client, serverHostname: nil)
        }
        let check: ([String]) -> String? = { sans in
            guard case let .dialedPeer(stream, node?) = role else { return nil }
            return CertificateNames(sans: sans).raftPeerProblem(stream: stream, node: node)
        }
        let gate = TLSIdentityGate(
            check: check,
            verified: { sans in self.certifiedSANs[id] = sans },
            failed: { why in self.tlsLinkFailed(id, role: role, channel: channel, why) })
        try channel.pipeline.syncOperations.addHandlers([ssl, gate])
    }

    /// Hands the SANs the gate recorded for `id` to the core. Called by `linkUp`/`peerLinkUp`.
    func applyCertificate(_ id: LinkID) {
        guard let sans = certifiedSANs.removeValue(forKey: id) else { return }
        core.linkCertified(id, sans: sans)
    }

    func tlsLinkFailed(_ id: LinkID, role: TLSLinkRole, channel: Channel, _ why: String) {
        let address = channel.remoteAddress.map(describe) ?? "?"
        switch role {
        case .child:
            logger.warning("refused a connection from \(address): \(why)")
        case .dialedPeer(_, let node):
            logger.warning("peer link to replica \(node.map(String.init) ?? "?") at \(address) refused: \(why)")
        case .parent(let index):
            guard parentLinkID == nil, !stopping else { return }
            logger.warning("parent \(address) refused over TLS: \(why)")
            lastDialError = "parent \(address): \(why)"
            if let index { parentSelector?.markDown(index, nowNs: nowNs) }
            dialParent()
        }
    }
}
