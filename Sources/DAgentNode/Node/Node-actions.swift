import DAgentWire
import Foundation
import NIOCore
import DAgentRouting
import DAgentLink
import DAgentMsgq

/// Performing the core's actions: writes (batched, flushed once per burst),
/// closes, local delivery and lifecycle events.
extension Node {
    /// Drains the core's actions. Called on the event loop after every input.
    package func perform() {
        defer {
            if durableQueue != nil && !core.queues.journal.isEmpty { scheduleDurableCommit() }
            if !core.inbox.isEmpty && !core.draining { deliverInbox() }
            if !core.publications.isEmpty && !core.draining { deliverPublications() }
        }
        core.drainActions { action in
            switch action {
            case let .forwardRaw(hop, raw, offset, hopLimit):
                writeRaw(raw, hopLimitOffset: offset, hopLimit: hopLimit, to: hop)
            case let .forwardRawBatch(hop, raw, offset, hopLimit):
                writeRawBatch(raw, hopLimitOffset: offset, hopLimit: hopLimit, to: hop)
            case let .forward(hop, envelope):
                write(envelope, to: hop)
            case let .send(id, frame):
                guard let link = links[id] else { break }
                do {
                    try link.append(frame)
                } catch {
                    logger.error("cannot encode \(frame.body.map { "\($0)" } ?? "frame"): \(error)")
                }
                markDirty(id)
            case let .treeRequested(id, requestID):
                answerTree(requestID: requestID, on: id)
            case let .deliverPublish(envelope, ids):
                deliverPublish(envelope, to: ids)
            case let .close(id, reason):
                if let link = links[id], !link.closing {
                    logger.debug("closing link \(id): \(reason)")
                    link.closing = true
                    link.close(reason: reason)
                }
            case let .registered(session, parent):
                if let dir = config.dataDir, let secret = core.sessionSecret { SessionFile.save(dir: dir, session: secret, logger: logger) }
                if let index = parentIndex { parentSelector?.markUp(index) }
                if !readyDone {
                    readyDone = true
                    readyPromise.succeed(())
                }
                onEvent?(.registered(session: session, parent: parent))
            case let .registrationFailed(code, reason):
                let error = DAgentError(code, reason)
                registrationRefused = true
                if !readyDone {
                    readyDone = true
                    readyPromise.fail(error)
                }
                onEvent?(.registrationFailed(error))
            case .parentReady:
                break
            case let .parentLost(reason):
                onEvent?(.parentLost(reason: reason))
            case let .log(level, message):
                switch level {
                case .debug: logger.debug("\(message)")
                case .info: logger.info("\(message)")
                case .notice: logger.notice("\(message)")
                case .warning: logger.warning("\(message)")
                case .error: logger.error("\(message)")
                }
            }
        }
    }

    /// Writes an envelope where the core said: a link, or a brother's
    /// channel through the msgq parent link.
    @inline(__always)
    func write(_ envelope: Dagent_Envelope, to hop: Hop) {
        if hop.isBrother {
            guard let leaf = msgqLeaf, leaf.link == hop.link else { return }
            leaf.append(envelope, brother: hop.brother)
        } else {
            guard let link = links[hop.link] else { return }
            link.append(envelope)
        }
        markDirty(hop.link)
    }

    @inline(__always)
    func writeRaw(_ raw: ByteBuffer, hopLimitOffset: Int, hopLimit: UInt32, to hop: Hop) {
        if hop.isBrother {
            guard let leaf = msgqLeaf, leaf.link == hop.link else { return }
            leaf.appendRaw(raw, hopLimitOffset: hopLimitOffset, hopLimit: hopLimit, brother: hop.brother)
        } else {
            guard let link = links[hop.link] else { return }
            link.appendRaw(raw, hopLimitOffset: hopLimitOffset, hopLimit: hopLimit)
        }
        markDirty(hop.link)
    }

    @inline(__always)
    func writeRawBatch(_ raw: ByteBuffer, hopLimitOffset: Int, hopLimit: UInt32, to hop: Hop) {
        if hop.isBrother {
            guard let leaf = msgqLeaf, leaf.link == hop.link else { return }
            leaf.appendRawBatch(raw, hopLimitOffset: hopLimitOffset, hopLimit: hopLimit, brother: hop.brother)
        } else {
            guard let link = links[hop.link] else { return }
            link.appendRawBatch(raw, hopLimitOffset: hopLimitOffset, hopLimit: hopLimit)
        }
        markDirty(hop.link)
    }

    @inline(__always)
    func markDirty(_ id: LinkID) {
        if dirty.last == id { return }   // a burst to one link: no hashing per message
        if dirtySet.insert(id).inserted { dirty.append(id) }
    }

    /// Flushes every link written since the last flush.
    package func flushDirty() {
        if durableQueue != nil { durableBeforeFlush() }   // queued messages reach the disk first
        guard !dirty.isEmpty else {
            if windowUnflushed > 0 { releaseWindowNow() }
            return
        }
        if windowUnflushed > 0 {
            flushReleasingWindow()
        } else {
            for id in dirty { links[id]?.flush() }
        }
        dirty.removeAll(keepingCapacity: true)
        dirtySet.removeAll(keepingCapacity: true)
        if durableQueue != nil { durableAfterFlush() }
    }

    /// Flushes at the end of the current event-loop turn (coalescing many sends).
    package func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        eventLoop.execute {
            self.flushScheduled = false
            self.flushDirty()
        }
    }

    /// What this node sees: the core's view plus link buffer depths, brother
    /// p2p counters and the message queues it serves.
    func treeReply(requestID: UInt64) -> Dagent_TreeReply {
        var reply = core.treeReply(requestID: requestID)
        for (i, linkID) in core.linkIDs.enumerated() where i < reply.links.count {
            if let link = links[linkID] {
                reply.links[i].bytesPending = UInt64(link.bytesPending)
                if let tcp = link as? TCPLinkIO { reply.links[i].framesOut &+= tcp.shared.directFramesOut }   // written from callers' threads
            }
        }
        reply.messagesRouted &+= direct.written   // requests and replies written from callers' threads
        reply.directIn = core.stats.directIn
        reply.directOut = core.stats.directOut
        if let agent = msgqAgent { reply.msgq = [agent.info()] }
        treeExtension?(&reply)
        return reply
    }

    /// Envelopes this node put straight onto brothers' channels (all msgq parent links so far).
    public var directOut: UInt64 { core.stats.directOut }

    /// Answers a `TreeRequest` from the link's peer with what this node sees.
    func answerTree(requestID: UInt64, on id: LinkID) {
        var frame = Dagent_Frame()
        frame.treeReply = treeReply(requestID: requestID)
        guard let link = links[id] else { return }
        try? link.append(frame)
        markDirty(id)
    }
}
