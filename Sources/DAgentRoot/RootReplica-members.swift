import DAgentRaft
import DAgentWire
import Foundation
import DAgentNode
import DAgentRouting
import DAgentState

/// Operating a running group: membership changes (one server at a time, Raft thesis §4.1)
/// and leadership transfer, as `@state` ops. A new member starts with `--join` (it does not
/// bootstrap), learns the group from the leader's appends or snapshot, and is dialed by
/// lower ids; its address rides in the conf-change entry and in every snapshot.
extension RootReplica {
    /// Whether a peer hello from `id` is accepted: a member, a known address, or (while this
    /// replica is joining and knows no membership yet) anyone of the stream.
    func acceptsPeer(_ id: UInt64) -> Bool {
        guard id != selfID, id != 0 else { return false }
        if addresses[id] != nil { return true }
        guard let raft else { return joining }
        return raft.membership.contains(id) || raft.membership.voters.isEmpty || !raft.membership.contains(selfID)
    }

    func memberListAnswer() -> StateAnswer {
        var a = StateAnswer(ok: true)
        a.leader = raft.status.leader
        a.term = raft.term
        let voters = raft.membership.voters
        a.memberList = voters.map { id in
            StateMemberJSON(node: id, address: addresses[id].map { "\($0)" } ?? "?", voter: true,
                            connected: id == selfID ? true : peers[id] != nil,
                            match: raft.role == .leader ? raft.tracker.progress[id]?.match : nil)
        }
        return a
    }

    func changeMembership(_ request: Dagent_Envelope, add: Bool, node id: UInt64, address: String?) {
        guard raft.role == .leader else {
            let leader = raft.status.leader
            reply(request, .failure(leader == 0 ? "no leader yet; retry" : "replica \(selfID) is not the leader; send member changes to the leader (replica \(leader), \(addresses[leader].map { "\($0)" } ?? "?"))",
                                    code: "not_leader", retry: leader == 0))
            return
        }
        if !add && id == selfID {
            reply(request, .failure("replica \(id) is the leader; move leadership first (dagent state transfer --to OTHER), then remove it", code: "is_leader"))
            return
        }
        let cc = ConfChange(type: add ? .addNode : .removeNode, nodeID: id, context: Array((address ?? "").utf8))
        do {
            try raft.proposeConfChange(cc)
        } catch RaftError.confChangePending {
            reply(request, .failure("another membership change is still in progress; retry when it has committed", code: "change_pending", retry: true))
            return
        } catch {
            reply(request, .failure("membership change refused: \(error)", code: "invalid_change"))
            return
        }
        pendingMemberChanges.append((id, add, request))
        scheduleReady()
    }

    /// A committed conf-change entry reached apply: learn the address, answer the operator.
    func membershipApplied(_ entry: Entry) {
        guard let cc = try? ConfChange(bytes: entry.data) else { return }
        switch cc.type {
        case .addNode:
            if let endpoint = try? Endpoint.parse(String(decoding: cc.context, as: UTF8.self)) {
                addresses[cc.nodeID] = endpoint
            }
            logger.notice("replica \(cc.nodeID) joined the group (\(addresses[cc.nodeID].map { "\($0)" } ?? "no address"))")
        case .removeNode:
            logger.notice("replica \(cc.nodeID) left the group")
            if cc.nodeID != selfID, let link = peers.removeValue(forKey: cc.nodeID) {
                // The removed replica may never see the entry commit: tell it, then hang up.
                var notice = Dagent_ServiceFrame()
                notice.streamID = streamID
                notice.removedNode = cc.nodeID
                node.sendService(notice, on: link)
                peerOf[link] = nil
                node.eventLoop.scheduleTask(in: .milliseconds(300)) { self.node.closeLink(link) }
            }
        }
        if let i = pendingMemberChanges.firstIndex(where: { $0.node == cc.nodeID && $0.add == (cc.type == .addNode) }) {
            let request = pendingMemberChanges.remove(at: i).request
            var a = memberListAnswer()
            a.revision = machine.revision
            reply(request, a)
        }
        if cc.type == .removeNode && cc.nodeID == selfID {
            logger.notice("this replica was removed from the group; it stops serving @state")
            stopFatally("removed from the group (member remove \(selfID))")
        }
        dialMissingPeers()
    }

    func transferLeadership(_ request: Dagent_Envelope, to target: UInt64) {
        guard raft.membership.contains(target) else {
            reply(request, .failure("replica \(target) is not a member (members: \(raft.membership.voters))", code: "not_member"))
            return
        }
        if raft.status.leader == target {
            var a = StateAnswer(ok: true)
            a.leader = target
            a.term = raft.term
            reply(request, a)
            return
        }
        raft.transferLeadership(to: target)
        pendingTransfers.append((target, wallClockNs(), request))
        scheduleReady()
    }

    /// Answers transfer requests whose target now leads, or fails them after 3 election timeouts.
    func checkTransfers() {
        guard !pendingTransfers.isEmpty else { return }
        let now = wallClockNs()
        let leader = raft.status.leader
        pendingTransfers.removeAll { t in
            if leader == t.target {
                var a = StateAnswer(ok: true)
                a.leader = leader
                a.term = raft.term
                reply(t.request, a)
                return true
            }
            if now - t.startedNs > UInt64(tickMs) * 30 * 1_000_000 {
                reply(t.request, .failure("leadership did not move to replica \(t.target) within 3 election timeouts (leader is \(leader)); is it connected and caught up?", code: "transfer_timeout"))
                return true
            }
            return false
        }
    }
}
