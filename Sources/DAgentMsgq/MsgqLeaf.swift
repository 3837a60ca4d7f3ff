import CDAgentIPC
import DAgentWire
import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
import DAgentRouting
import DAgentLink
import Logging
#endif

/// The agent's IPC objects as a leaf sees them: the queues and, read-only,
/// the name table. Opening checks that a live agent owns them.
package struct MsgqAttachment {
    package let path: String
    package let up: SysVQueue
    package let down: SysVQueue
    package let shmID: Int32
    package let shm: UnsafeRawPointer
    package let table: NameTableReader
    package let limits: MsgqLimits

    /// Opens the agent's queues and table at `path`; throws a one-line reason
    /// (no agent, agent gone, not a dagent table) otherwise.
    package static func open(path: String, nowNs: UInt64) throws -> MsgqAttachment {
        guard FileManager.default.fileExists(atPath: path) else {
            throw DAgentError(.notReady, "no agent at msgq://\(path): the path does not exist")
        }
        let keys = try MsgqKeys.forPath(path, create: false)
        let shmID = shmget(keys.table, 0, 0)
        guard shmID >= 0 else {
            let e = errno
            throw DAgentError(.notReady, "no agent at msgq://\(path): no name table (\(keys)): \(String(cString: strerror(e)))")
        }
        var size: UInt64 = 0, attached: UInt64 = 0
        _ = dagent_shm_stat(shmID, &size, &attached)
        var err: Int32 = 0
        guard let p = dagent_shmat(shmID, 1, &err) else {
            throw DAgentError(.notReady, "cannot attach the name table of msgq://\(path): \(String(cString: strerror(err)))")
        }
        guard let table = NameTableReader(memory: p, size: Int(size)) else {
            shmdt(p)
            throw DAgentError(.notReady, "msgq://\(path): the shared memory is not a dagent name table (yet)")
        }
        let owner = table.owner
        guard owner.isAlive(nowNs: nowNs) else {
            shmdt(p)
            throw DAgentError(.notReady, "the agent at msgq://\(path) (pid \(owner.pid)) is not running")
        }
        let up: SysVQueue, down: SysVQueue
        do {
            up = try SysVQueue.open(key: keys.up)
            down = try SysVQueue.open(key: keys.down)
        } catch {
            shmdt(p)
            throw DAgentError(.notReady, "no agent at msgq://\(path): \(error)")
        }
        return MsgqAttachment(path: path, up: up, down: down, shmID: shmID, shm: UnsafeRawPointer(p), table: table,
                              limits: MsgqLimits.read())
    }

    package func detach() { shmdt(shm) }
}

/// The agent's name table as one leaf's routing core sees it: the
/// `BrotherDirectory` of its parent link. Names behind this very leaf (its own
/// channel) are never brothers: a message never loops back to ourselves.
package final class MsgqBrotherTable: BrotherDirectory {
    package let table: NameTableReader
    package let ownChannel: UInt64

    package init(table: NameTableReader, ownChannel: UInt64) {
        self.table = table
        self.ownChannel = ownChannel
    }

    @inline(__always) package var generation: UInt64 { table.generation }

    package func channel(of name: String) -> UInt64? {
        guard let c = table.lookup(name).channel, c != ownChannel else { return nil }
        return c
    }
}

/// A leaf's link to its agent over the message queues: a plain pipe.
///
/// Frames for the agent go onto the up queue (message type: this leaf's
/// channel). A message the routing core sent to a brother (a `Hop` with a
/// brother channel, decided from `brothers`) goes straight onto the down queue
/// with the brother's channel as the message type: the agent is not a hop.
package final class MsgqParentLinkIO: LinkIO {
    package unowned let node: any MsgqHost
    package let attachment: MsgqAttachment
    package let link: LinkID
    /// This leaf's channel: its message type on the down queue.
    package let channel: UInt64
    /// This connection's incarnation (stale agent messages carry another one).
    package let incarnation: UInt32
    package let packer: MsgqPacker
    package let upSender: MsgqSender
    package let downSender: MsgqSender
    /// What this link reaches directly, for the routing core (`NodeCore.linkUp(brothers:)`).
    package let brothers: MsgqBrotherTable
    /// Reads this leaf's channel: a thread of its own, or the node's loop itself.
    package var receiver: MsgqChannelReader!
    package var closing = false
    package var closed = false

    package var agentWriter: FrameWriter
    /// What is written to one brother until the next flush.
    package final class BrotherOut {
        let channel: UInt64
        var writer: FrameWriter
        var dirty = false
        init(channel: UInt64, maxBatchBytes: Int) {
            self.channel = channel
            writer = FrameWriter(maxBatchBytes: maxBatchBytes)
        }
    }
    package var brotherOut: [UInt64: BrotherOut] = [:]
    package var dirtyBrothers: [BrotherOut] = []
    /// The brother written to last (streams write to one).
    package var lastOut: BrotherOut?
    package let allocator = ByteBufferAllocator()
    /// How the routing core names a brother that sent directly (`receiveDirect`).
    private var senderNames = SenderName()

    /// `channel`: this connection's message type, public in the name table;
    /// a fresh random one per connection (`MsgqWire.randomChannel()`), never
    /// derived from the session.
    package init(node: any MsgqHost, attachment: MsgqAttachment, link: LinkID, channel: UInt64) {
        self.node = node
        self.attachment = attachment
        self.link = link
        self.channel = channel
        incarnation = UInt32.random(in: 1...UInt32.max)
        packer = MsgqPacker(maxText: attachment.limits.msgmax)
        agentWriter = FrameWriter(maxBatchBytes: packer.maxBatchBytes)
        brothers = MsgqBrotherTable(table: attachment.table, ownChannel: channel)
        upSender = MsgqSender(queue: attachment.up, label: "msgq://\(attachment.path) up")
        downSender = MsgqSender(queue: attachment.down, label: "msgq://\(attachment.path) down")
        let deliver: ([MsgqDelivery]) -> Void = { [weak self] batch in self?.received(batch) }
        let failed: (SysVError) -> Void = { [weak self] error in self?.queueFailed(error) }
        if let loop = node.eventLoop as? MsgqEventLoop {
            var wake = MsgqWire.control(.wake, sender: channel, incarnation: incarnation)
            wake.setType(Int(channel))
            receiver = MsgqLoopReader(loop: loop, source: MsgqEventLoop.Source(
                queue: attachment.down, mtype: Int(channel), wake: wake.bytes,
                intake: MsgqIntake(senderIsMtype: false, maxFrameBytes: node.msgqOptions.maxFrameBytes),
                deliver: deliver, failed: failed))
        } else {
            receiver = MsgqReceiver(queue: attachment.down, mtype: Int(channel), senderIsMtype: false,
                                    msgmax: attachment.limits.msgmax, maxFrameBytes: node.msgqOptions.maxFrameBytes,
                                    eventLoop: node.eventLoop, label: "msgq://\(attachment.path) #\(hex(channel))",
                                    deliver: deliver, failed: failed)
        }
        let onFatal: (SysVError) -> Void = { [weak self] error in
            guard let self else { return }
            self.node.eventLoop.execute { self.queueFailed(error) }
        }
        upSender.onFatal = onFatal
        downSender.onFatal = onFatal
    }

    package func start() { receiver.start() }

    package var path: String { attachment.path }

    /// The send timeout: this node's `msgq_send_timeout`, else the agent's.
    package var sendTimeoutNs: UInt64 {
        if let t = node.msgqOptions.msgqSendTimeoutOverride { return UInt64(t * 1e9) }
        let ms = attachment.table.owner.sendTimeoutMs
        return UInt64(ms == 0 ? 2000 : ms) * 1_000_000
    }

    // MARK: appending

    /// The writer of brother channel `b`.
    @inline(__always)
    package func out(brother b: UInt64) -> BrotherOut {
        if let last = lastOut, last.channel == b { return last }
        let box: BrotherOut
        if let existing = brotherOut[b] { box = existing } else {
            box = BrotherOut(channel: b, maxBatchBytes: packer.maxBatchBytes)
            brotherOut[b] = box
        }
        lastOut = box
        return box
    }

    @inline(__always)
    package func markDirty(_ box: BrotherOut) {
        if !box.dirty {
            box.dirty = true
            dirtyBrothers.append(box)
        }
    }

    package func append(_ envelope: Dagent_Envelope) { agentWriter.append(envelope) }

    package func append(_ header: MessageHeader, payload: UnsafeRawBufferPointer) { agentWriter.append(header, payload: payload) }

    package func appendRelayed(_ raw: ByteBuffer, header: EnvelopeHeader, hopLimit: UInt32) {
        agentWriter.appendRelayed(raw, header: header, hopLimit: hopLimit)
    }

    package func appendRaw(_ raw: ByteBuffer, hopLimitOffset: Int, hopLimit: UInt32) {
        agentWriter.appendRaw(raw, hopLimitOffset: hopLimitOffset, hopLimit: hopLimit)
    }

    package func appendRawBatch(_ raw: ByteBuffer, hopLimitOffset: Int, hopLimit: UInt32) {
        agentWriter.appendRawBatch(raw, hopLimitOffset: hopLimitOffset, hopLimit: hopLimit)
    }

    package func append(_ frame: Dagent_Frame) throws { try agentWriter.append(frame) }

    /// An envelope for brother channel `brother` (the core's hop).
    package func append(_ envelope: Dagent_Envelope, brother: UInt64) {
        let box = out(brother: brother)
        markDirty(box)
        box.writer.append(envelope)
    }

    /// A message for brother channel `brother`, encoded from the caller's bytes.
    @inline(__always)
    package func append(_ header: MessageHeader, payload: UnsafeRawBufferPointer, brother: UInt64) {
        let box = out(brother: brother)
        markDirty(box)
        box.writer.append(header, payload: payload)
    }

    package func appendRelayed(_ raw: ByteBuffer, header: EnvelopeHeader, hopLimit: UInt32, brother: UInt64) {
        let box = out(brother: brother)
        markDirty(box)
        box.writer.appendRelayed(raw, header: header, hopLimit: hopLimit)
    }

    package func appendRaw(_ raw: ByteBuffer, hopLimitOffset: Int, hopLimit: UInt32, brother: UInt64) {
        let box = out(brother: brother)
        markDirty(box)
        box.writer.appendRaw(raw, hopLimitOffset: hopLimitOffset, hopLimit: hopLimit)
    }

    package func appendRawBatch(_ raw: ByteBuffer, hopLimitOffset: Int, hopLimit: UInt32, brother: UInt64) {
        let box = out(brother: brother)
        markDirty(box)
        box.writer.appendRawBatch(raw, hopLimitOffset: hopLimitOffset, hopLimit: hopLimit)
    }

    // MARK: writing

    @discardableResult
    package func flush() -> EventLoopFuture<Void>? {
        guard !closed else { return nil }
        if !agentWriter.isEmpty {
            write(agentWriter.take(allocator: allocator), to: upSender, mtype: channel, incarnation: incarnation)
        }
        if !dirtyBrothers.isEmpty {
            for box in dirtyBrothers {
                box.dirty = false
                let bytes = box.writer.take(allocator: allocator)
                if bytes.readableBytes > 0 { write(bytes, to: downSender, mtype: box.channel, incarnation: 0) }
            }
            dirtyBrothers.removeAll(keepingCapacity: true)
        }
        return nil
    }

    package func write(_ stream: ByteBuffer, to sender: MsgqSender, mtype: UInt64, incarnation: UInt32) {
        var messages: [MsgqOutMessage] = []
        packer.pack(stream, sender: channel, incarnation: incarnation, mtype: Int(mtype), into: &messages)
        let items = messages.map { MsgqSender.Item(message: $0, mtype: Int(mtype)) }
        if case let .refused(failed, why) = sender.send(items, maxBacklogBytes: node.msgqOptions.slowConsumerBytes) {
            report(failed, on: sender, why: why)
        }
    }

    /// Fails what could not be written, each envelope back to its sender (here).
    package func report(_ items: [MsgqSender.Item], on sender: MsgqSender, why: String) {
        guard !items.isEmpty else { return }
        let toAgent = sender === upSender
        var reasons: [Int: String] = [:]
        for item in items {
            let reason = reasons[item.mtype] ?? {
                let r = fullReason(channel: UInt64(item.mtype), toAgent: toAgent, why: why)
                reasons[item.mtype] = r
                return r
            }()
            for body in item.message.frameBodies() {
                node.core.undeliverable(frameBody: body, code: .queueFull, reason: reason, nowNs: node.nowNs)
            }
        }
        node.perform()
        node.scheduleFlush()
    }

    package func fullReason(channel b: UInt64, toAgent: Bool, why: String) -> String {
        let queue = toAgent ? attachment.up : attachment.down
        let state = queue.stat().map { "\($0.bytes) of \($0.limit) bytes in \($0.messages) messages" } ?? "gone"
        let who = toAgent ? "the agent" : (node.core.brotherName(channel: b).map { "brother '\($0)'" } ?? "brother channel \(hex(b))")
        let which = toAgent ? "up" : "down"
        switch why {
        case "stuck":
            return "message queue msgq://\(path) (\(which)) stayed full for msgq_send_timeout=\(seconds(sendTimeoutNs)) (\(state)); \(who) is not reading. Raise kernel.msgmnb (sysctl) or msgq_queue_bytes for more room"
        case "backlog":
            return "message queue msgq://\(path) (\(which)) is full (\(state)) and more than slow_consumer_bytes=\(node.msgqOptions.slowConsumerBytes) bytes wait for room; \(who) is not reading"
        default:
            return "cannot write to msgq://\(path) for \(who): \(why)"
        }
    }

    package var bytesPending: Int {
        agentWriter.bufferedBytes + upSender.backlogBytes + downSender.backlogBytes
    }

    // MARK: reading

    package func received(_ batch: [MsgqDelivery]) {
        guard !closed else { return }
        let nowNs = node.nowNs
        for inbound in batch {
            switch inbound {
            case let .frames(sender, inc, bodies):
                if sender == MsgqWire.agentChannel {
                    guard inc == incarnation else { continue }   // for an earlier connection of ours
                    for body in bodies { node.received(frameBody: body, from: link) }
                } else {
                    let who = senderNames.name(sender)
                    for body in bodies { node.core.receiveDirect(frameBody: body, via: link, sender: who, nowNs: nowNs) }
                    node.perform()
                }
                if closed { return }
            case let .bye(sender, inc):
                if sender == MsgqWire.agentChannel && inc == incarnation {
                    node.linkDown(link, reason: "the agent closed the link")
                    return
                }
            case .wake:
                break
            case let .garbage(sender, _, reason):
                node.logger.warning("msgq://\(path): dropped a garbage message on channel \(hex(channel)) from \(sender == MsgqWire.agentChannel ? "the agent" : "channel \(hex(sender))"): \(reason)")
            }
        }
        node.flushDirty()
    }

    package func queueFailed(_ error: SysVError) {
        guard !closed else { return }
        let reason = error.isRemoved ? "message queue removed: the agent at msgq://\(path) stopped" : "\(error)"
        node.linkDown(link, reason: reason)
    }

    /// Periodic: what waited too long for room fails back to its sender.
    package func tick(nowNs: UInt64) {
        guard !closed else { return }
        let timeout = sendTimeoutNs
        for sender in [upSender, downSender] {
            let failed = sender.expire(nowNs: nowNs, timeoutNs: timeout)
            if !failed.isEmpty { report(failed, on: sender, why: "stuck") }
        }
    }

    // MARK: closing

    package func closeForShutdown() -> EventLoopFuture<Void>? {
        close(reason: "node stopping")
        return nil
    }

    package func didGoDown() {
        release()
        if node.msgqLeaf === self { node.msgqLeaf = nil }
    }

    package func close(reason: String) {
        guard !closed else { return }
        flush()
        var bye = MsgqWire.control(.bye, sender: channel, incarnation: incarnation)
        bye.setType(Int(channel))
        _ = attachment.up.send(bye.bytes, wait: false)
        release()
        let node = self.node, link = self.link
        node.eventLoop.execute { node.linkDown(link, reason: reason) }
    }

    /// Stops the threads and detaches; the link is unusable afterwards.
    package func release() {
        guard !closed else { return }
        closed = true
        stopReceiver()
        for sender in [upSender, downSender] {
            let rest = sender.stop()
            if !rest.isEmpty { report(rest, on: sender, why: "the link to the agent closed") }
        }
        node.msgqLeafReleased(self)
    }

    /// Stops reading our channel (a receiver thread is woken so that it ends:
    /// it is the only reader of the channel).
    package func stopReceiver() {
        receiver.stop()
        guard receiver.needsWake else { return }
        var wake = MsgqWire.control(.wake, sender: channel, incarnation: incarnation)
        wake.setType(Int(channel))
        _ = attachment.down.send(wake.bytes, wait: false)
    }
}
