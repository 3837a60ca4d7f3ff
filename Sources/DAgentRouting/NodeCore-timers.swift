import DAgentWire

/// Time-driven work: heartbeats, expiry, registration deadlines, queue timeouts.
extension NodeCore {
    /// Call periodically (a few times per heartbeat interval).
    public func tick(nowNs: UInt64) {
        let interval = config.heartbeatIntervalNs
        for id in links.keys.sorted() {
            guard let link = links[id], !link.closing else { continue }
            // Expire on the interval the peer announced: parent and child may differ.
            let peerInterval = link.peerHeartbeatNs > 0 ? link.peerHeartbeatNs : interval
            let expiry = peerInterval * UInt64(config.heartbeatMisses)
            let silent = nowNs &- link.lastHeardNs
            if silent > expiry {
                let who = link.peerName.isEmpty ? link.address : "'\(link.peerName)'"
                let reason = "expired: nothing heard from \(who) for \(seconds(silent)) "
                    + "(its heartbeat_interval=\(seconds(peerInterval)), heartbeat_misses=\(config.heartbeatMisses))"
                log(.warning, reason)
                closeLink(id, reason)
                continue
            }
            if !link.registered && nowNs &- link.openedNs > config.registerTimeoutNs {
                let reason = link.isParent
                    ? "parent \(link.address) did not answer our registration within register_timeout=\(seconds(config.registerTimeoutNs))"
                    : "peer \(link.address) connected but did not register within register_timeout=\(seconds(config.registerTimeoutNs))"
                refuseLink(id, .refused, reason)
                continue
            }
            if nowNs &- link.lastSentHeartbeatNs >= interval && !link.authPending {
                links[id]!.lastSentHeartbeatNs = nowNs
                heartbeatSeq &+= 1
                var hb = Dagent_Heartbeat()
                hb.seq = heartbeatSeq
                hb.timeNs = nowNs
                sendFrame(id, .heartbeat(hb))
            }
        }
        if !queues.isEmpty {
            for envelope in queues.expire(nowNs: nowNs, timeoutNs: config.queueTimeoutNs) {
                fail(envelope, .notReady, "route to '\(envelope.dst)' not ready within queue_timeout=\(seconds(config.queueTimeoutNs)) (parent not reachable)", nowNs: nowNs)
            }
        }
    }

    /// What this node sees, for `dagent tree` (the driver adds socket buffer depths).
    public func treeReply(requestID: UInt64) -> Dagent_TreeReply {
        settleFramesOut()
        var reply = Dagent_TreeReply()
        reply.requestID = requestID
        reply.name = config.name
        reply.role = config.role
        reply.parent = parentName
        reply.parentReady = parentReady
        reply.names = publicRecords
        reply.links = links.keys.sorted().map { id in
            let link = links[id]!
            var info = Dagent_LinkInfo()
            info.peer = link.peerName
            info.address = link.address
            info.isParent = link.isParent
            info.ready = link.registered
            info.framesIn = link.framesIn
            info.framesOut = link.framesOut
            return info
        }
        reply.queues = queues.depths().map { dst, depth in
            var q = Dagent_QueueInfo()
            q.destination = dst
            q.depth = UInt32(depth)
            return q
        }
        reply.messagesRouted = stats.routed
        reply.messagesDelivered = stats.delivered
        addPubSub(to: &reply)
        return reply
    }
}

package func seconds(_ ns: UInt64) -> String {
    let s = Double(ns) / 1e9
    if s == s.rounded() { return "\(Int(s))s" }
    let centis = Int((s * 100).rounded())
    let frac = centis % 100
    return "\(centis / 100).\(frac < 10 ? "0" : "")\(frac)s"
}
