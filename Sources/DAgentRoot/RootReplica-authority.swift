import DAgentRaft
import DAgentRouting
import DAgentWire

/// How a replica plugs into its node's routing core: the replicated name
/// directory confirms and releases names and says which replica holds a name;
/// peer links (the full mesh between replicas) carry Raft.
extension RootReplica: TopOfTreeAuthority {
    public func confirmNames(requestID: UInt64, agent: String, _ records: [Dagent_NameRecord]) {
        waitingConfirmations.append(NameConfirmation(requestID: requestID, records: records, agent: agent, remaining: records.count))
        proposeConfirmations()
    }

    public func releaseNames(_ names: [String]) {
        guard raft != nil else { return }
        for name in names {
            guard let e = machine.directory.lookup(name), e.replica == selfID else { continue }
            proposeDirectory(.releaseName(name: name, session: e.session), tag: 0)
        }
    }

    public func peerLink(holding name: String) -> LinkID? {
        guard let entry = machine.directory.lookup(name), entry.replica != selfID else { return nil }
        return peers[entry.replica]
    }

    public func peerUp(_ link: LinkID, hello: Dagent_PeerHello) {
        guard stoppedReason == nil, hello.service == "raft", hello.streamID == streamID, acceptsPeer(hello.nodeID) else {
            logger.warning("refusing peer hello from node \(hello.nodeID) stream \(hello.streamID): not a member of stream \(streamID)")
            node.closeLink(link)
            return
        }
        if let why = peerHelloProblem(hello, on: link) {
            logger.warning("refusing peer hello from node \(hello.nodeID): \(why)")
            node.closeLink(link)
            return
        }
        peers[hello.nodeID] = link
        peerOf[link] = hello.nodeID
        logger.info("peer link from replica \(hello.nodeID) up")
    }

    public func peerDown(_ link: LinkID) {
        if let id = peerOf.removeValue(forKey: link), peers[id] == link {
            peers[id] = nil
            raft?.reportUnreachable(id)
            if raft != nil { peerLinkLost(id) }
        }
    }

    public func serviceFrame(_ frame: Dagent_ServiceFrame, on link: LinkID) {
        // Before start() there is no Raft node yet; Raft resends what is lost.
        guard frame.streamID == streamID, raft != nil, stoppedReason == nil, let from = peerOf[link] else { return }
        if frame.removedNode != 0 {
            if frame.removedNode == selfID && raft.membership.contains(from) {
                stopFatally("removed from the group (replica \(from) applied member remove \(selfID))")
            }
            return
        }
        if frame.chunkTotal > 0 || frame.chunkAck > 0 {
            snapshotChunk(frame, from: from)
            return
        }
        stepPeerMessage(Array(frame.body), from: from)
    }
}
