import DAgentRaft
import DAgentWire
import Foundation
import DAgentNode
import DAgentRouting
import DAgentRaftStorage
import DAgentState

/// Serving `@state`: writes through the log, reads through ReadIndex,
/// watches from the applied log.
extension RootReplica {
    static func le(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func readLE(_ b: ArraySlice<UInt8>) -> UInt64 {
        var v: UInt64 = 0
        for (i, byte) in b.prefix(8).enumerated() { v |= UInt64(byte) << (8 * UInt64(i)) }
        return v
    }

    func reply(_ request: Dagent_Envelope, _ obj: [String: Any]) {
        node.reply(to: request, payload: StateJSON.encode(obj))
    }

    func handleRequest(_ envelope: Dagent_Envelope) {
        guard raft != nil else {
            reply(envelope, ["ok": false, "error": "not ready: the replica is starting", "retry": true])
            return
        }
        guard envelope.kind == .request, envelope.type == StateTypes.request else {
            if envelope.kind == .request { node.replyError(to: envelope, reason: "@state expects type \(StateTypes.request) requests") }
            return
        }
        let request: StateRequest
        do {
            request = try StateRequest.parse(envelope.payload, nowMs: wallClockNs() / 1_000_000)
        } catch {
            reply(envelope, ["ok": false, "error": "bad request: \(error)"])
            return
        }
        switch request {
        case .write(let command):
            let id = nextProposal
            nextProposal += 1
            do {
                try raft.propose(Self.le(id) + Self.le(selfID) + command.encode())
                pendingWrites[id] = envelope
            } catch {
                reply(envelope, ["ok": false, "error": "not ready: \(error) (no leader yet? retry)", "retry": true])
            }
        case .read(let command):
            startRead(envelope, command: command)
        case .backup:
            startRead(envelope, command: nil)
        case let .watch(prefix, from, clientID):
            let start = from > 0 ? from : machine.revision + 1
            // A client re-sending the same watch id replaces its old watch (never two streams).
            for (old, c) in watchClients where c.client == envelope.src && c.clientID == clientID {
                _ = hub.remove(old)
                watchClients[old] = nil
            }
            let held = watchClients.values.reduce(0) { $0 + ($1.client == envelope.src ? 1 : 0) }
            if held >= node.config.maxWatchesPerClient {
                reply(envelope, ["ok": false, "error": "too many watches: '\(envelope.src)' holds \(held); max_watches_per_client=\(node.config.maxWatchesPerClient)"])
                return
            }
            let hubID = hub.add(prefix: prefix, fromRevision: start)
            watchClients[hubID] = (envelope.src, clientID)
            reply(envelope, ["ok": true, "watch": clientID, "revision": machine.revision, "from": start])
            deliverWatches()
        case let .unwatch(clientID):
            for (hubID, c) in watchClients where c.client == envelope.src && c.clientID == clientID {
                _ = hub.remove(hubID)
                watchClients[hubID] = nil
            }
            reply(envelope, ["ok": true])
        case .status:
            reply(envelope, statusObject())
        }
        scheduleReady()
    }

    func startRead(_ envelope: Dagent_Envelope, command: StateCommand?) {
        let id = nextProposal
        nextProposal += 1
        do {
            try raft.readIndex(context: Self.le(id))
            pendingReads[id] = (envelope, command)
        } catch {
            reply(envelope, ["ok": false, "error": "not ready: \(error) (no leader yet? retry)", "retry": true])
        }
    }

    func statusObject() -> [String: Any] {
        let s = raft.status
        return ["ok": true, "node_id": selfID, "name": node.config.name, "stream": streamID,
                "role": "\(s.role)", "term": s.term, "leader": s.leader, "commit": s.commit,
                "applied": s.applied, "members": s.membership.voters, "revision": machine.revision,
                "peers_connected": peers.keys.sorted()]
    }

    /// Applies one committed entry and answers the client waiting here for it.
    func apply(_ entry: Entry) {
        guard entry.type == .normal, entry.data.count >= 16 else { return }
        let id = Self.readLE(entry.data[0..<8])
        let proposer = Self.readLE(entry.data[8..<16])
        let result = machine.apply(entry: Array(entry.data[16...]))
        appliedSinceSnapshot += 1
        if proposer == selfID {
            if id >= Self.cleanupTag {
                directoryApplied(tag: id, result: result)
            } else if let request = pendingWrites.removeValue(forKey: id) {
                reply(request, StateJSON.object(result))
            }
        }
        deliverWatches()
    }

    /// Answers reads whose ReadIndex the apply index has reached.
    func serveReadyReads() {
        guard !readyReads.isEmpty else { return }
        let applied = raft.appliedIndex
        var waiting: [(index: UInt64, id: UInt64)] = []
        for r in readyReads {
            guard r.index <= applied else { waiting.append(r); continue }
            guard let pending = pendingReads.removeValue(forKey: r.id) else { continue }
            if let command = pending.command {
                reply(pending.request, StateJSON.object(machine.read(command)))
            } else {
                node.reply(to: pending.request, payload: Data(machine.snapshot()))
            }
        }
        readyReads = waiting
    }

    /// Pushes new events to every watcher (each event once, in order).
    func deliverWatches() {
        guard hub.count > 0 else { return }
        for delivery in hub.collect(from: machine) {
            switch delivery {
            case let .events(watchID, events, next):
                guard let c = watchClients[watchID] else { continue }
                let body = StateJSON.encode(StateJSON.events(events, watchID: c.clientID, next: next))
                do {
                    try node.sendOnLoop(to: c.client, type: StateTypes.watchEvent, payload: body)
                } catch {
                    _ = hub.remove(watchID)
                    watchClients[watchID] = nil
                }
            case let .compacted(watchID, compactRevision):
                guard let c = watchClients.removeValue(forKey: watchID) else { continue }
                let body = StateJSON.encode(["watch": c.clientID, "compacted": compactRevision])
                try? node.sendOnLoop(to: c.client, type: StateTypes.watchEvent, payload: body)
            }
        }
    }

    /// The leader moves the replicated clock so that leases expire.
    func proposeLeaseTick() {
        guard raft.role == .leader, machine.leases.count > 0 else { return }
        let command = StateCommand.tick(now: wallClockNs() / 1_000_000)
        try? raft.propose(Self.le(0) + Self.le(selfID) + command.encode())
        scheduleReady()
    }
}
