import DAgentState

extension RootReplica {
    /// The records under `prefix` in this replica's own copy of the store, as
    /// far as it has applied the log (a follower may lag the leader). At most
    /// `limit` records (0: all); `more` is true when some were left out.
    /// On the node's event loop (the replica's state lives there).
    public func localRecords(prefix: String, limit: Int) -> (records: [(key: String, value: String)], more: Bool) {
        let r = machine.range(prefix: Array(prefix.utf8), limit: limit)
        return (r.records.map { (String(decoding: $0.key, as: UTF8.self), String(decoding: $0.value, as: UTF8.self)) }, r.more)
    }
}
