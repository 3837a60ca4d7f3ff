import DAgentRaft
import DAgentWire
import Foundation
import DAgentNode
import DAgentRouting
import DAgentRaftStorage
import DAgentState

/// The name directory in Raft: names registered anywhere under the group are
/// confirmed through the log (one holder per name across all replicas), and
/// names held under another replica are routed to it over the peer link.
extension RootReplica {
    /// A registration request of the tree core, waiting for its names to commit.
    struct NameConfirmation {
        var requestID: UInt64
        var records: [Dagent_NameRecord]
        var agent: String
        var remaining: Int
        var refused: [Dagent_NameRefusal] = []
        var proposedAtNs: UInt64 = 0
    }

    /// Proposes a directory command; `tag` (non-zero) comes back in `directoryApplied`.
    @discardableResult
    func proposeDirectory(_ command: StateCommand, tag: UInt64) -> Bool {
        do {
            try raft.propose(Self.le(tag) + Self.le(proposerTag) + command.encode())
            scheduleReady()
            return true
        } catch {
            return false
        }
    }

    /// Proposes what is waiting: first this replica's clean-up after a restart,
    /// then the names of each registration. Called again from the timer until it succeeds.
    func proposeConfirmations() {
        guard raft != nil else { return }
        if !directoryCleaned {
            if !cleanupProposed {
                // Names this replica held before it (re)started are stale: their
                // holders re-register (and reclaim by session) if they are still alive.
                cleanupProposed = proposeDirectory(.releaseAllFor(.replica(selfID)), tag: Self.cleanupTag)
            }
            return
        }
        let now = wallClockNs()
        for i in waitingConfirmations.indices where waitingConfirmations[i].proposedAtNs == 0
            || now - waitingConfirmations[i].proposedAtNs > 3_000_000_000 {
            var c = waitingConfirmations[i]
            c.remaining = c.records.count
            c.refused = []
            var ok = true
            for (j, r) in c.records.enumerated() {
                let tag = Self.nameTagBase | (c.requestID << 16) | UInt64(j)
                ok = ok && proposeDirectory(.registerName(name: r.name, session: r.session, replica: selfID, agent: c.agent), tag: tag)
            }
            c.proposedAtNs = ok ? now : 0
            waitingConfirmations[i] = c
        }
    }

    static let cleanupTag: UInt64 = 1 << 62
    static let nameTagBase: UInt64 = 1 << 63

    /// A directory command proposed here has applied on this replica.
    func directoryApplied(tag: UInt64, result: StateResult) {
        if tag == Self.cleanupTag {
            if !directoryCleaned {
                directoryCleaned = true
                if case .ok(.released(let names)) = result, !names.isEmpty {
                    logger.notice("released \(names.count) stale directory name(s) held under this replica before its restart")
                }
                proposeConfirmations()
            }
            return
        }
        guard tag & Self.nameTagBase != 0 else { return }
        let requestID = (tag & ~Self.nameTagBase) >> 16
        let index = Int(tag & 0xFFFF)
        guard let i = waitingConfirmations.firstIndex(where: { $0.requestID == requestID }) else { return }
        var c = waitingConfirmations[i]
        guard index < c.records.count else { return }
        if case .failed(let failure) = result {
            var refusal = Dagent_NameRefusal()
            refusal.name = c.records[index].name
            if case let .nameTaken(_, holder) = failure {
                refusal.error = .nameTaken
                refusal.reason = "name '\(holder.name)' is already held by a live node (under root replica \(holder.replica), agent '\(holder.agent)'); stop that node, wait for it to expire, or pick another name"
            } else {
                refusal.error = .refused
                refusal.reason = "\(failure)"
            }
            c.refused.append(refusal)
        }
        c.remaining -= 1
        if c.remaining <= 0 {
            waitingConfirmations.remove(at: i)
            node.namesConfirmed(requestID: requestID, refused: c.refused)
        } else {
            waitingConfirmations[i] = c
        }
    }
}
