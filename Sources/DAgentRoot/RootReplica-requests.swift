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

    /// The largest answer payload sent: `max_message_bytes` less room for the reply's envelope.
    var maxAnswerBytes: Int { node.config.maxMessageBytes - 512 }

    func reply(_ request: Dagent_Envelope, _ answer: StateAnswer) {
        let payload = StateCoding.encode(answer)
        guard payload.count <= maxAnswerBytes else {
            let more = answer.records != nil ? "; read fewer keys with \"limit\" (dagent state range --limit N) and continue after the last key" : ""
            reply(request, .failure("too large: the answer of \(payload.count) bytes exceeds max_message_bytes=\(node.config.maxMessageBytes)\(more)", code: "too_large"))
            return
        }
        node.reply(to: request, payload: payload)
    }

    /// Answers `request` with `result`: the common answers written by hand
    /// (`StateAnswerJSON`), the others (and any too large) through `StateAnswer`'s encoder.
    func reply(_ request: Dagent_Envelope, result: StateResult) {
        if let payload = StateAnswerJSON.encode(result), payload.count <= maxAnswerBytes {
            node.reply(to: request, payload: payload)
        } else {
            reply(request, StateAnswer(result))
        }
    }

    func notReady(_ request: Dagent_Envelope, _ error: Error) {
        reply(request, .failure("not ready: \(error) (no leader yet? retry)", code: "not_ready", retry: true))
    }

    /// A fresh id for a proposal or a ReadIndex context. Ids start at a random point of a
    /// 2^61 space in every process, and entries carry this process's `proposerTag`, so an
    /// entry or read state from before a restart can never answer a new request.
    func nextRequestID() -> UInt64 {
        let id = nextProposal
        nextProposal = nextProposal &+ 1
        if nextProposal >= Self.cleanupTag { nextProposal = 1 }
        return id
    }

    func handleRequest(_ envelope: Dagent_Envelope) {
        if let stopped = stoppedReason {
            if envelope.kind == .request { reply(envelope, .failure("replica stopped: \(stopped)", code: "stopped")) }
            return
        }
        guard raft != nil else {
            reply(envelope, .failure("not ready: the replica is starting", code: "not_ready", retry: true))
            return
        }
        if envelope.kind == .request, envelope.type == StateTypes.backupChunk {
            serveBackupChunk(envelope)
            return
        }
        guard envelope.kind == .request, envelope.type == StateTypes.request else {
            if envelope.kind == .request { node.replyError(to: envelope, reason: "@state expects type \(StateTypes.request) requests") }
            return
        }
        let request: StateRequest
        if let common = StateRequest.parseCommon(envelope.payload, servingStream: streamID) {
            request = common   // put, get, del: read without Foundation
        } else {
            do {
                request = try StateRequest.parse(envelope.payload, nowMs: wallClockNs() / 1_000_000, servingStream: streamID)
            } catch {
                reply(envelope, .failure("bad request: \(error)", code: "bad_request"))
                return
            }
        }
        switch request {
        case .write(let command):
            // Proposed with the rest of this loop turn's writes (`proposeQueuedWrites`).
            let id = nextRequestID()
            queuedWrites.append((id, Self.le(id) + Self.le(proposerTag) + command.encode()))
            pendingWrites[id] = envelope
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
                reply(envelope, .failure("too many watches: '\(envelope.src)' holds \(held); max_watches_per_client=\(node.config.maxWatchesPerClient)", code: "too_many_watches"))
                return
            }
            let hubID = hub.add(prefix: prefix, fromRevision: start)
            watchClients[hubID] = (envelope.src, clientID)
            var answer = StateAnswer(ok: true)
            answer.watch = clientID
            answer.revision = machine.revision
            answer.from = start
            reply(envelope, answer)
            deliverWatches()
        case let .unwatch(clientID):
            for (hubID, c) in watchClients where c.client == envelope.src && c.clientID == clientID {
                _ = hub.remove(hubID)
                watchClients[hubID] = nil
            }
            reply(envelope, StateAnswer(ok: true))
        case .status:
            reply(envelope, statusAnswer())
        case .memberList:
            reply(envelope, memberListAnswer())
        case let .memberAdd(id, address):
            changeMembership(envelope, add: true, node: id, address: address)
        case let .memberRemove(id):
            changeMembership(envelope, add: false, node: id, address: nil)
        case let .transfer(id):
            transferLeadership(envelope, to: id)
        }
        scheduleReady()
    }

    /// Proposes the writes queued by this loop turn's requests as one batch: one append
    /// per follower carries them all, instead of one per write.
    func proposeQueuedWrites() {
        guard !queuedWrites.isEmpty else { return }
        let batch = queuedWrites
        queuedWrites = []
        do {
            try raft.propose(batch: batch.map(\.data))
            metrics?.proposals.increment(by: batch.count)
        } catch {
            for w in batch {
                if let request = pendingWrites.removeValue(forKey: w.id) { notReady(request, error) }
            }
        }
    }

    func startRead(_ envelope: Dagent_Envelope, command: StateCommand?) {
        let id = nextRequestID()
        do {
            try raft.readIndex(context: Self.le(id))
            pendingReads[id] = (envelope, command)
        } catch {
            notReady(envelope, error)
        }
    }

    func statusAnswer() -> StateAnswer {
        let s = raft.status
        var a = StateAnswer(ok: true)
        a.nodeId = selfID
        a.name = node.config.name
        a.stream = streamID
        a.role = "\(s.role)"
        a.term = s.term
        a.leader = s.leader
        a.commit = s.commit
        a.applied = s.applied
        a.members = s.membership.voters
        a.revision = machine.revision
        a.peersConnected = peers.keys.sorted()
        a.snapshotIndex = raft.firstIndex > 0 ? raft.firstIndex - 1 : 0
        return a
    }

    /// Applies one committed entry and answers the client waiting here for it.
    func apply(_ entry: Entry) {
        guard entry.type == .normal, entry.data.count >= 16 else { return }
        let id = Self.readLE(entry.data[0..<8])
        let proposer = Self.readLE(entry.data[8..<16])
        let result = machine.apply(entry: Array(entry.data[16...]))
        appliedSinceSnapshot += 1
        if proposer == proposerTag {
            if id >= Self.cleanupTag {
                directoryApplied(tag: id, result: result)
            } else if let request = pendingWrites.removeValue(forKey: id) {
                reply(request, result: result)
            }
        } else {
            appliedForeignEntry = true
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
                reply(pending.request, result: machine.read(command))
            } else {
                beginBackup(pending.request)
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
                let body = StateCoding.encode(StateWatchEvent(events: events, watchID: c.clientID, next: next))
                do {
                    try node.sendOnLoop(to: c.client, type: StateTypes.watchEvent, payload: body)
                } catch {
                    _ = hub.remove(watchID)
                    watchClients[watchID] = nil
                }
            case let .compacted(watchID, compactRevision):
                guard let c = watchClients.removeValue(forKey: watchID) else { continue }
                let body = StateCoding.encode(StateWatchEvent(compactedWatch: c.clientID, compactRevision: compactRevision))
                try? node.sendOnLoop(to: c.client, type: StateTypes.watchEvent, payload: body)
            }
        }
    }

    /// The leader moves the replicated clock so that leases expire.
    func proposeLeaseTick() {
        guard raft.role == .leader, machine.leases.count > 0 else { return }
        let command = StateCommand.tick(now: wallClockNs() / 1_000_000)
        try? raft.propose(Self.le(0) + Self.le(proposerTag) + command.encode())
        scheduleReady()
    }
}
