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

/// An agent serving local leaves over System V message queues
/// (`pull:msgq://PATH`, `--msgq PATH`). It owns, keyed from PATH with ftok:
///
/// - the **up** queue: every leaf writes to the agent here, with its channel
///   (a random message type it picks per connection) as the message type;
/// - the **down** queue: the agent and brothers write to a leaf here, with the
///   leaf's channel as the message type; each leaf reads only its own type;
/// - the **name table** in shared memory: name → channel, which leaves read to
///   send to a brother directly (`NameTable`).
///
/// Each leaf channel is one link of the routing core, exactly like a TCP
/// child. All three objects are created with mode 0600, reset at start if a
/// crashed agent left them behind, and removed on a clean stop. Runs on the
/// node's event loop, except the receiver and sender threads.
package final class MsgqAgentService {
    package unowned let node: any MsgqHost
    package let path: String
    package let keys: MsgqKeys
    package let up: SysVQueue
    package let down: SysVQueue
    package let shmID: Int32
    package let shm: UnsafeMutableRawPointer
    package let table: NameTableWriter
    package let limits: MsgqLimits
    package let packer: MsgqPacker
    package let sender: MsgqSender
    package var receiver: MsgqReceiver!
    package let sendTimeoutNs: UInt64
    package let lingerNs: UInt64

    package struct Channel {
        var link: LinkID
        var incarnation: UInt32
        /// Incarnations this channel had before (their leftovers are dropped).
        var retired: [UInt32] = []
    }
    package var channels: [UInt64: Channel] = [:]
    package var linkChannels: [LinkID: UInt64] = [:]
    /// Channels whose leftover messages are purged at these times.
    package var purgePlans: [UInt64: (name: String, due: [UInt64])] = [:]
    package var syncedRouteVersion: UInt64 = .max
    package var purged: UInt64 = 0
    package var garbage: UInt64 = 0
    package var garbageLogged: [UInt64: Int] = [:]
    package var stopped = false

    package var endpoint: String { "msgq://\(path)" }

    /// Creates the queues and the table (resetting what a crashed agent left),
    /// and starts receiving. Throws with a message that names the path.
    package init(node: any MsgqHost, path: String) throws {
        self.node = node
        self.path = path
        let config = node.msgqOptions
        limits = MsgqLimits.read()
        packer = MsgqPacker(maxText: limits.msgmax)
        sendTimeoutNs = UInt64(config.msgqSendTimeout * 1e9)
        lingerNs = UInt64(min(1.0, max(0.2, config.heartbeatInterval)) * 1e9)
        do {
            keys = try MsgqKeys.forPath(path, create: true)
        } catch {
            throw ConfigError("cannot serve msgq://\(path): \(error)")
        }
        try Self.resetStale(path: path, keys: keys, node: node)
        do {
            up = try SysVQueue.create(key: keys.up)
            down = try SysVQueue.create(key: keys.down)
        } catch {
            throw ConfigError("cannot create the message queues for msgq://\(path): \(error)")
        }
        let slots = NameTableLayout.slots(forChildren: config.maxChildren)
        let size = NameTableLayout.size(slots: slots)
        let id = shmget(keys.table, size, IPC_CREAT | IPC_EXCL | 0o600)
        guard id >= 0 else {
            let e = errno
            up.remove()
            down.remove()
            throw ConfigError("cannot create the name table (\(size) bytes of shared memory) for msgq://\(path): \(String(cString: strerror(e)))")
        }
        var err: Int32 = 0
        guard let memory = dagent_shmat(id, 0, &err) else {
            dagent_shm_remove(id)
            up.remove()
            down.remove()
            throw ConfigError("cannot attach the name table for msgq://\(path): \(String(cString: strerror(err)))")
        }
        shmID = id
        shm = memory
        table = NameTableWriter(memory: memory, slots: slots, pid: getpid(), incarnation: UInt64.random(in: 1...UInt64.max),
                                heartbeatIntervalNs: UInt64(config.heartbeatInterval * 1e9),
                                sendTimeoutMs: UInt32(clamping: Int(config.msgqSendTimeout * 1000)))
        table.heartbeat(nowNs: node.nowNs)
        sender = MsgqSender(queue: down, label: "msgq://\(path) down")
        raiseLimits(config.msgqQueueBytes)
        receiver = MsgqReceiver(queue: up, mtype: 0, senderIsMtype: true, msgmax: limits.msgmax,
                                maxFrameBytes: config.maxFrameBytes, eventLoop: node.eventLoop, label: "msgq://\(path) up",
                                deliver: { [unowned self] batch in self.received(batch) },
                                failed: { [unowned self] error in self.queueFailed(error) })
        sender.onFatal = { [weak self] error in
            guard let self else { return }
            self.node.eventLoop.execute { self.queueFailed(error) }
        }
        receiver.start()
        node.logger.info("serving leaves on msgq://\(path) (\(keys); msgmax \(limits.msgmax) B, queue limit \(up.stat()?.limit ?? 0) B, name table \(slots) slots)")
    }

    /// Removes queues and a table left by an agent that is gone; refuses if a live one serves the path.
    package static func resetStale(path: String, keys: MsgqKeys, node: any MsgqHost) throws {
        var owner: NameTableOwner?
        let tableID = shmget(keys.table, 0, 0)
        if tableID >= 0 {
            var err: Int32 = 0
            var size: UInt64 = 0, attached: UInt64 = 0
            _ = dagent_shm_stat(tableID, &size, &attached)
            if let p = dagent_shmat(tableID, 1, &err) {
                owner = NameTableReader(memory: p, size: Int(size))?.owner
                shmdt(p)
            }
            if let owner, owner.pid != getpid(), owner.isAlive(nowNs: node.nowNs) {
                throw ConfigError("msgq://\(path) is served by a live agent (pid \(owner.pid)); stop it first or use another path")
            }
        }
        let upID = SysVQueue.existing(key: keys.up), downID = SysVQueue.existing(key: keys.down)
        guard tableID >= 0 || upID != nil || downID != nil else { return }
        if let id = upID { dagent_msgq_remove(id) }
        if let id = downID { dagent_msgq_remove(id) }
        if tableID >= 0 { dagent_shm_remove(tableID) }
        let who = owner.map { "agent pid \($0.pid), not running" } ?? "no live agent"
        node.logger.warning("msgq://\(path): reset stale message queues and name table left by a crashed agent (\(who))")
    }

    package func raiseLimits(_ wanted: Int) {
        guard let current = up.stat()?.limit, wanted > 0, UInt64(wanted) != current else { return }
        let rc1 = up.setLimit(wanted), rc2 = down.setLimit(wanted)
        if rc1 == 0 && rc2 == 0 {
            node.logger.info("msgq://\(path): queue limit set to \(wanted) bytes (msgq_queue_bytes)")
        } else {
            let err = rc1 != 0 ? -rc1 : -rc2
            node.logger.notice("msgq://\(path): cannot set the queue limit to msgq_queue_bytes=\(wanted) (\(String(cString: strerror(err))): above kernel.msgmnb=\(limits.msgmnb) needs CAP_SYS_RESOURCE); working within \(current) bytes per queue. Raise it with: sysctl -w kernel.msgmnb=\(wanted)")
        }
    }

    // MARK: inbound

    package func received(_ batch: [MsgqDelivery]) {
        guard !stopped else { return }
        for inbound in batch {
            switch inbound {
            case let .frames(channel, incarnation, bodies):
                guard let id = link(for: channel, incarnation: incarnation) else { continue }
                for body in bodies { node.received(frameBody: body, from: id) }
            case let .bye(channel, incarnation):
                if let c = channels[channel], c.incarnation == incarnation {
                    node.linkDown(c.link, reason: "closed by the leaf")
                }
            case .wake:
                break
            case let .garbage(channel, incarnation, reason):
                garbage &+= 1
                if let c = channels[channel], incarnation == 0 || c.incarnation == incarnation {
                    node.badFrame(c.link, .badQueueMessage(detail: reason))
                } else {
                    let n = garbageLogged[channel, default: 0]
                    garbageLogged[channel] = n + 1
                    if n < 5 || n % 1000 == 0 {
                        node.logger.warning("msgq://\(path): dropped a garbage message from channel \(hex(channel)) (no leaf registered on it): \(reason)")
                    }
                }
            }
        }
        syncTable()
        node.flushDirty()
    }

    /// The core link of a channel; a first message from a new channel (or a
    /// new incarnation of a known one: a restarted leaf) opens one.
    package func link(for channel: UInt64, incarnation: UInt32) -> LinkID? {
        if let c = channels[channel] {
            if c.incarnation == incarnation { return c.link }
            if c.retired.contains(incarnation) { return nil }   // leftovers of an earlier connection
            if c.incarnation != 0 {
                // A live leaf holds this channel: a new connection takes a new
                // channel (leaves pick one per connection), so this is someone
                // reusing the number the name table publishes. Never a takeover.
                garbage &+= 1
                let n = garbageLogged[channel, default: 0]
                garbageLogged[channel] = n + 1
                if n < 5 || n % 1000 == 0 {
                    node.logger.warning("msgq://\(path): dropped a message on channel \(hex(channel)) from a new connection (incarnation \(incarnation)): the channel belongs to live \(node.core.describe(c.link)); a new connection must use a new channel, and a name is reclaimed only with its session")
                }
                return nil
            }
        }
        guard channel >= 2, incarnation != 0 else {
            garbage &+= 1
            node.logger.warning("msgq://\(path): dropped a message from invalid channel \(channel) incarnation \(incarnation)")
            return nil
        }
        var retired = channels[channel].map { $0.retired + [$0.incarnation] } ?? []
        if retired.count > 8 { retired.removeFirst(retired.count - 8) }
        purgePlans[channel] = nil
        let id = node.allocateLinkID()
        channels[channel] = Channel(link: id, incarnation: incarnation, retired: retired)
        linkChannels[id] = channel
        let io = MsgqChildLinkIO(service: self, link: id, channel: channel, incarnation: incarnation)
        node.linkUp(id, io: io, address: "msgq:\(hex(channel))", isParent: false, parentIndex: nil)
        return id
    }

    package func queueFailed(_ error: SysVError) {
        guard !stopped else { return }
        node.logger.error("msgq://\(path): \(error); the agent's message queues are gone (removed by someone else?); leaves on this path are cut off")
        for (_, c) in channels { node.linkDown(c.link, reason: "message queue removed") }
    }

    // MARK: outbound

    package func send(_ stream: ByteBuffer, channel: UInt64, incarnation: UInt32) {
        var messages: [MsgqOutMessage] = []
        packer.pack(stream, sender: MsgqWire.agentChannel, incarnation: incarnation, mtype: Int(channel), into: &messages)
        let items = messages.map { MsgqSender.Item(message: $0, mtype: Int(channel)) }
        if case let .refused(failed, why) = sender.send(items, maxBacklogBytes: node.msgqOptions.slowConsumerBytes) {
            report(failed, why: why)
        }
    }

    /// Fails what could not be written, each envelope back to its sender.
    package func report(_ items: [MsgqSender.Item], why: String) {
        guard !items.isEmpty else { return }
        var reasons: [Int: String] = [:]
        for item in items {
            let reason = reasons[item.mtype] ?? {
                let r = fullReason(channel: UInt64(item.mtype), why: why)
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

    package func fullReason(channel: UInt64, why: String) -> String {
        let who = channels[channel].map { node.core.describe($0.link) } ?? "channel \(hex(channel))"
        let stat = down.stat()
        let state = stat.map { "\($0.bytes) of \($0.limit) bytes in \($0.messages) messages" } ?? "gone"
        switch why {
        case "stuck":
            return "message queue msgq://\(path) (down) stayed full for msgq_send_timeout=\(seconds(sendTimeoutNs)) (\(state)); \(who) is not reading. Raise kernel.msgmnb (sysctl) or msgq_queue_bytes for more room"
        case "backlog":
            return "message queue msgq://\(path) (down) is full (\(state)) and more than slow_consumer_bytes=\(node.msgqOptions.slowConsumerBytes) bytes wait for room; \(who) is not reading"
        default:
            return "cannot write to msgq://\(path) for \(who): \(why)"
        }
    }

    /// The core closed a leaf's link (expired, refused, bad input): the node hears linkDown next.
    package func closed(_ io: MsgqChildLinkIO, reason: String) {
        node.eventLoop.execute { self.node.linkDown(io.link, reason: reason) }
    }

    /// A leaf's link is gone (any cause): forget the channel, purge its leftovers.
    package func linkGone(_ io: MsgqChildLinkIO, name: String) {
        let channel = io.channel
        linkChannels[io.link] = nil
        guard channels[channel]?.link == io.link else { return }   // a newer connection owns the channel now
        var c = channels[channel]!
        c.retired.append(c.incarnation)
        c.incarnation = 0
        c.link = 0
        channels[channel] = c
        let now = node.nowNs
        // After a linger (so a refused leaf can still read why), then again
        // for late brother messages sent before their cache caught up.
        purgePlans[channel] = (name, [now + lingerNs, now + 4 * lingerNs, now + 16 * lingerNs])
    }

    // MARK: timers

    package func tick(nowNs: UInt64) {
        guard !stopped else { return }
        table.heartbeat(nowNs: nowNs)
        for (channel, plan) in purgePlans where plan.due.first.map({ $0 <= nowNs }) == true {
            if channels[channel]?.incarnation ?? 0 != 0 {
                purgePlans[channel] = nil   // the channel is in use again
                continue
            }
            let n = down.purge(mtype: Int(channel))
            if n > 0 {
                purged &+= UInt64(n)
                node.logger.notice("msgq://\(path): purged \(n) message(s) still addressed to \(plan.name) (channel \(hex(channel)))")
            }
            var rest = plan.due
            rest.removeFirst()
            purgePlans[channel] = rest.isEmpty ? nil : (plan.name, rest)
            if rest.isEmpty {
                // Nothing more will come for it; forget the channel entirely.
                if channels[channel]?.incarnation == 0 { channels[channel] = nil }
            }
        }
        let failed = sender.expire(nowNs: nowNs, timeoutNs: sendTimeoutNs)
        if !failed.isEmpty { report(failed, why: "stuck") }
        syncTable()
    }

    /// Mirrors the core's route table into the shared name table: every name
    /// that sits behind a leaf channel, with that channel.
    package func syncTable() {
        let version = node.core.routes.version
        guard version != syncedRouteVersion else { return }
        syncedRouteVersion = version
        var want: [String: UInt64] = [:]
        for (name, entry) in node.core.routes.allEntries {
            if let channel = linkChannels[entry.link] { want[name] = channel }
        }
        let set = want.filter { table.channel(of: $0.key) != $0.value }.map { (name: $0.key, channel: $0.value) }
        let remove = table.names.filter { want[$0] == nil }
        let refused = table.update(set: set, remove: remove)
        if !refused.isEmpty {
            node.logger.warning("msgq://\(path): name table full (\(table.slots) slots): \(refused.count) name(s) reach their brothers via the agent")
        }
    }

    // MARK: admin, stop

    package func info() -> Dagent_MsgqInfo {
        var info = Dagent_MsgqInfo()
        info.path = path
        info.leaves = UInt32(linkChannels.count)
        info.tableNames = UInt32(table.count)
        info.tableGeneration = table.generation
        func stat(_ q: SysVQueue) -> Dagent_QueueStat {
            var s = Dagent_QueueStat()
            if let st = q.stat() {
                s.bytes = st.bytes
                s.messages = st.messages
                s.limit = st.limit
            }
            return s
        }
        info.up = stat(up)
        info.down = stat(down)
        info.purged = purged
        info.garbage = garbage
        info.msgmax = UInt32(limits.msgmax)
        return info
    }

    /// Removes the queues and the table. Leaves blocked on them wake with EIDRM.
    package func stop() {
        guard !stopped else { return }
        stopped = true
        receiver.stop()
        _ = sender.stop()
        up.remove()
        down.remove()
        shmdt(shm)
        dagent_shm_remove(shmID)
        node.logger.info("msgq://\(path): removed the message queues and the name table")
    }
}

/// The agent's side of one leaf channel: frames go onto the down queue with
/// the leaf's channel as the message type.
package final class MsgqChildLinkIO: LinkIO {
    package unowned let service: MsgqAgentService
    package let link: LinkID
    package let channel: UInt64
    package let incarnation: UInt32
    package var writer: FrameWriter
    package var closing = false

    package init(service: MsgqAgentService, link: LinkID, channel: UInt64, incarnation: UInt32) {
        self.service = service
        self.link = link
        self.channel = channel
        self.incarnation = incarnation
        writer = FrameWriter(maxBatchBytes: service.packer.maxBatchBytes)
    }

    package func append(_ envelope: Dagent_Envelope) { writer.append(envelope) }
    package func append(_ header: MessageHeader, payload: UnsafeRawBufferPointer) { writer.append(header, payload: payload) }
    package func appendRelayed(_ raw: ByteBuffer, header: EnvelopeHeader, hopLimit: UInt32) {
        writer.appendRelayed(raw, header: header, hopLimit: hopLimit)
    }
    package func appendRaw(_ raw: ByteBuffer, hopLimitOffset: Int, hopLimit: UInt32) {
        writer.appendRaw(raw, hopLimitOffset: hopLimitOffset, hopLimit: hopLimit)
    }
    package func appendRawBatch(_ raw: ByteBuffer, hopLimitOffset: Int, hopLimit: UInt32) {
        writer.appendRawBatch(raw, hopLimitOffset: hopLimitOffset, hopLimit: hopLimit)
    }
    package func append(_ frame: Dagent_Frame) throws { try writer.append(frame) }

    @discardableResult
    package func flush() -> EventLoopFuture<Void>? {
        guard !writer.isEmpty, !service.stopped else { return nil }
        service.send(writer.take(allocator: ByteBufferAllocator()), channel: channel, incarnation: incarnation)
        return nil
    }

    package func close(reason: String) {
        flush()
        service.closed(self, reason: reason)
    }

    package var bytesPending: Int { writer.bufferedBytes }

    package func closeForShutdown() -> EventLoopFuture<Void>? {
        close(reason: "node stopping")
        return nil
    }

    package func didGoDown() { service.linkGone(self, name: service.node.core.describe(link)) }
}
