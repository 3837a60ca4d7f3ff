import DAgentWire

/// Mutual TLS in the core: what a link's certificate allows (`CertificateNames`)
/// is checked where names enter the route table and where peers say hello.
/// A link without a certificate (a plaintext listener) is not restricted here.
extension NodeCore {
    /// The TLS handshake of link `id` is done and its peer presented these DNS SANs.
    /// Call right after `linkUp`/`peerLinkUp`, before any frame of the link.
    public func linkCertified(_ id: LinkID, sans: [String]) {
        links[id]?.certificate = CertificateNames(sans: sans)
    }

    /// Why the child on `id` may not register as `name` under its certificate, or nil.
    package func certificateOwnProblem(_ name: String, on id: LinkID) -> String? {
        links[id]?.certificate?.ownNameProblem(name)
    }

    /// Why the child on `id`, registered as `owner`, may not bring `name` below it, or nil.
    package func certificateSubtreeProblem(_ name: String, on id: LinkID, owner: String) -> String? {
        links[id]?.certificate?.subtreeNameProblem(name, owner: owner)
    }

    /// Why the parent on `id` may not call itself `name` (its `RegisterResult.parentName`), or nil.
    package func certificateParentProblem(_ name: String, on id: LinkID) -> String? {
        guard let names = links[id]?.certificate, !names.exact.contains(name) else { return nil }
        return "the parent answered as '\(name)', which its TLS certificate does not allow (its names: \(names.listed))"
    }

    /// Why `hello` on `id` may not come from this certificate, or nil.
    package func certificatePeerProblem(_ hello: Dagent_PeerHello, on id: LinkID) -> String? {
        links[id]?.certificate?.raftPeerProblem(stream: hello.streamID, node: hello.nodeID)
    }
}
