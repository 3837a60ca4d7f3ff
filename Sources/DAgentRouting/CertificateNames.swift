/// What a peer's TLS certificate allows it to be: the pure rules behind mutual
/// TLS (the handshake itself is in DAgentTLS). Built from the certificate's DNS
/// subject alternative names.
///
/// - An exact SAN `n` lets a link register as `n` (its own name, `Register.name`).
/// - A wildcard SAN `*.n` lets the link registered as `n` bring names below it:
///   every name its `Register.subtree` or later `NameAdded` carries. It does not let
///   the link register as `n` (that needs the SAN `n`), nor as any other name.
///   Names have no hierarchy of their own, so "below `n`" means "reached through the
///   link that registered as `n`": the agent vouches for its subtree, and each hop
///   below it checks its own children's certificates in turn.
/// - A SAN `@raft.S.N` makes the holder replica `N` of root group stream `S`: the only
///   certificate that may say `PeerHello` as node `N` (names starting with `@` can
///   never be registered, so this never doubles as a tree name).
/// - No other wildcard form (`*`, `a*`, `*.*.n`) means anything; such SANs allow nothing.
public struct CertificateNames: Sendable, Equatable {
    /// Exact names (SAN `n`).
    public let exact: Set<String>
    /// Names whose subtree is allowed (SAN `*.n` gives `n`).
    public let subtrees: Set<String>
    /// All SANs as presented, for error messages.
    public let sans: [String]

    public init(sans: [String]) {
        var exact = Set<String>()
        var subtrees = Set<String>()
        for san in sans {
            if san.hasPrefix("*.") {
                let base = String(san.dropFirst(2))
                if !base.isEmpty && !base.contains("*") { subtrees.insert(base) }
            } else if !san.isEmpty && !san.contains("*") {
                exact.insert(san)
            }
        }
        self.exact = exact
        self.subtrees = subtrees
        self.sans = sans
    }

    /// Why a link with this certificate may not register as `name`, or nil.
    public func ownNameProblem(_ name: String) -> String? {
        if exact.contains(name) { return nil }
        return "the TLS certificate of this link does not allow the name '\(name)' (its names: \(listed)); "
            + "issue one with `dagent certs issue --name \(name)`"
    }

    /// Why the link registered as `owner` may not bring `name` in its subtree, or nil.
    public func subtreeNameProblem(_ name: String, owner: String) -> String? {
        if subtrees.contains(owner) { return nil }
        return "the TLS certificate of '\(owner)' does not allow names below it (no SAN '*.\(owner)'; its names: \(listed)), "
            + "so '\(name)' is refused; issue it with `--subtree`"
    }

    /// The SAN that names replica `node` of stream `stream` for Raft peer links.
    public static func raftIdentity(stream: UInt64, node: UInt64) -> String { "@raft.\(stream).\(node)" }

    /// Why this certificate may not speak for replica `node` of `stream`, or nil.
    public func raftPeerProblem(stream: UInt64, node: UInt64) -> String? {
        let want = Self.raftIdentity(stream: stream, node: node)
        if exact.contains(want) { return nil }
        return "the TLS certificate of this peer does not name replica \(node) of stream \(stream) "
            + "(needs the SAN '\(want)'; its names: \(listed))"
    }

    var listed: String { sans.isEmpty ? "none" : sans.map { "'\($0)'" }.joined(separator: ", ") }
}
