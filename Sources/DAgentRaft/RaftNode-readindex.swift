/// Linearizable reads (ReadIndex, Raft thesis §6.4): the leader records its commit index,
/// confirms it is still leader with a heartbeat round acknowledged by a quorum, and then
/// answers. A new leader first waits until it has committed an entry of its own term.
extension RaftNode {
    package var committedEntryInCurrentTerm: Bool { log.term(log.committed) == term }

    /// Leader: handles a local or forwarded ReadIndex request.
    package func handleReadIndex(_ m: Message) {
        guard role == .leader else { return }
        if tracker.voters == [id] {
            // Single-voter cluster: our commit index is authoritative.
            respondToReadIndex(m, index: log.committed)
            return
        }
        guard committedEntryInCurrentTerm else {
            // Our commit index may lag the previous leader's until our no-op commits.
            pendingReadIndexMessages.append(m)
            return
        }
        readOnly.addRequest(index: log.committed, request: m)
        if let acks = readOnly.recvAck(from: id, context: m.context), tracker.isQuorum(acks) {
            for status in readOnly.advance(through: m.context) {
                respondToReadIndex(status.request, index: status.index)
            }
            return
        }
        bcastHeartbeat()
    }

    package func respondToReadIndex(_ req: Message, index: UInt64) {
        if req.from == noNode || req.from == id {
            readStates.append(ReadState(index: index, context: req.context))
        } else {
            send(Message(type: .readIndexResponse, to: req.from, index: index, context: req.context))
        }
    }

    package func releasePendingReadIndexMessages() {
        guard role == .leader, !pendingReadIndexMessages.isEmpty, committedEntryInCurrentTerm else { return }
        let pending = pendingReadIndexMessages
        pendingReadIndexMessages = []
        for m in pending { handleReadIndex(m) }
    }
}
