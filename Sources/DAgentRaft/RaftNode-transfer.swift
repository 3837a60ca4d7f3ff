/// Leadership transfer (Raft thesis §3.10): the leader stops accepting proposals, brings
/// the target up to date, then sends it TimeoutNow so it campaigns immediately.
extension RaftNode {
    package func handleTransferLeader(target: NodeID) {
        guard role == .leader, tracker.membership.contains(target) else { return }
        if leadTransferee != noNode {
            if leadTransferee == target { return } // already in progress
            abortLeaderTransfer()
        }
        if target == id { return }
        // The transfer must finish within one election timeout.
        electionElapsed = 0
        leadTransferee = target
        if tracker.progress[target]!.match == log.lastIndex {
            sendTimeoutNow(to: target)
        } else {
            sendAppend(to: target)
        }
    }

    package func sendTimeoutNow(to peer: NodeID) {
        send(Message(type: .timeoutNow, to: peer))
    }

    package func abortLeaderTransfer() {
        leadTransferee = noNode
    }
}
