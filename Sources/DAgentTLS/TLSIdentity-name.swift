extension TLSIdentity {
    /// The first exact name of this certificate (not a `*.` wildcard, not an `@` service
    /// identity such as `@raft.S.N`): the name a one-shot client registers as when it is given
    /// no name (`dagent tree --tls-*`, `dagent_tree_with`). Nil if the certificate has none.
    public var clientName: String? {
        names.first { !$0.hasPrefix("*") && !$0.hasPrefix("@") }
    }
}
