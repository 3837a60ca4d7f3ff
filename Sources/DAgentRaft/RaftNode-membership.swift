/// Single-server membership changes (Raft thesis §4.1). A change is a `.confChange` entry;
/// it takes effect on every node when the entry commits. A leader allows only one
/// uncommitted change at a time and only after it committed an entry of its own term.
extension RaftNode {
    package func validateConfChange(_ cc: ConfChange) throws {
        if pendingConfIndex > log.committed || !committedEntryInCurrentTerm {
            throw RaftError.confChangePending
        }
        let m = tracker.membership
        switch cc.type {
        case .addNode:
            if cc.nodeID == noNode { throw RaftError.invalidConfChange("node id 0") }
            if m.contains(cc.nodeID) { throw RaftError.invalidConfChange("\(cc.nodeID) is already a voter") }
        case .removeNode:
            if !m.contains(cc.nodeID) { throw RaftError.invalidConfChange("\(cc.nodeID) is not a voter") }
            if m.voters.count == 1 { throw RaftError.invalidConfChange("cannot remove the last voter") }
        }
    }

    /// Applies a committed conf-change entry to the tracker.
    package func applyConfChange(entry e: Entry) {
        guard let cc = try? ConfChange(bytes: e.data) else {
            fatalError("DAgentRaft: committed conf change at \(e.index) is undecodable")
        }
        let newMembership = cc.applied(to: tracker.membership)
        tracker.setMembership(newMembership, lastIndex: log.lastIndex)
        membershipHistory.append((e.index, newMembership))
        if cc.type == .removeNode && cc.nodeID == leadTransferee {
            abortLeaderTransfer()
        }
    }
}
