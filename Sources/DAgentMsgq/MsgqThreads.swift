import CDAgentIPC
import DAgentWire
import Foundation
import NIOConcurrencyHelpers
import NIOCore
#if canImport(Glibc)
import Glibc
import DAgentRouting
import DAgentLink
import Logging
#endif

/// What a receiver hands to the event loop: a reassembled queue message.
package typealias MsgqDelivery = MsgqInbound

/// A thread that blocks in msgrcv on one queue (for one message type, or any),
/// decodes what arrives (`MsgqReassembler`) and hands it to the node's event
/// loop in batches. msgrcv blocks, so it never runs on the event loop.
///
/// After a blocking receive it drains what else is queued without blocking,
/// so a stream costs one hand-off per burst. At most `maxInFlight` batches
/// wait on the event loop; beyond that the thread stops reading, the queue
/// fills, and senders feel it (flow control, never an unbounded buffer).
package final class MsgqReceiver: @unchecked Sendable {
    package let queue: SysVQueue
    package let mtype: Int
    package let eventLoop: EventLoop
    package let label: String
    private var intake: MsgqIntake
    private let deliver: ([MsgqDelivery]) -> Void
    private let failed: (SysVError) -> Void
    private let stopFlag = NIOLockedValueBox(false)
    private let exitedFlag = NIOLockedValueBox(false)
    private let slots: DispatchSemaphore
    private var capacity: Int

    /// - Parameters:
    ///   - mtype: the message type to receive (a leaf's channel), or 0 for any (the agent's inbox).
    ///   - deliver: called on the event loop with each batch.
    ///   - failed: called on the event loop once if the queue goes away (or msgrcv fails); the thread has ended.
    package init(queue: SysVQueue, mtype: Int, senderIsMtype: Bool, msgmax: Int, maxFrameBytes: Int, eventLoop: EventLoop,
         label: String, maxInFlight: Int = 4,
         deliver: @escaping ([MsgqDelivery]) -> Void, failed: @escaping (SysVError) -> Void) {
        self.queue = queue
        self.mtype = mtype
        self.eventLoop = eventLoop
        self.label = label
        self.capacity = max(msgmax, MsgqWire.defaultMsgmax)
        intake = MsgqIntake(senderIsMtype: senderIsMtype, maxFrameBytes: maxFrameBytes)
        self.deliver = deliver
        self.failed = failed
        slots = DispatchSemaphore(value: maxInFlight)
    }

    package func start() {
        let thread = Thread { [self] in run() }
        thread.name = label
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Asks the thread to end; it notices at its next message (send it a `wake`)
    /// or when the queue is removed.
    package func stop() { stopFlag.withLockedValue { $0 = true } }

    package var isStopped: Bool { stopFlag.withLockedValue { $0 } }

    /// True once the thread has ended.
    package var hasExited: Bool { exitedFlag.withLockedValue { $0 } }

    private func run() {
        defer { exitedFlag.withLockedValue { $0 = true } }
        var buffer = UnsafeMutableRawPointer.allocate(byteCount: MsgqWire.mtypeBytes + capacity, alignment: 8)
        defer { buffer.deallocate() }
        var batch: [MsgqDelivery] = []
        var batchBytes = 0
        while true {
            // Block for the first message of a burst, then drain without blocking.
            var wait = batch.isEmpty
            while true {
                let n = dagent_msgrcv(queue.id, buffer, capacity, mtype, wait ? 0 : 1)
                if n < 0 {
                    let err = Int32(-n)
                    if err == EINTR { continue }
                    if err == ENOMSG { break }
                    if err == E2BIG {   // kernel.msgmax was raised under us
                        capacity *= 2
                        buffer.deallocate()
                        buffer = UnsafeMutableRawPointer.allocate(byteCount: MsgqWire.mtypeBytes + capacity, alignment: 8)
                        continue
                    }
                    let error = SysVError("msgrcv", errno: err, "on \(label) (queue id \(queue.id))")
                    let pending = batch
                    eventLoop.execute { [self] in
                        if !pending.isEmpty { deliver(pending) }
                        failed(error)
                    }
                    return
                }
                wait = false
                let receivedType = buffer.load(as: Int.self)
                let text = UnsafeRawBufferPointer(start: buffer + MsgqWire.mtypeBytes, count: n)
                switch intake.take(text, mtype: receivedType, into: &batch) {
                case .wake: if isStopped { return }
                case .appended: batchBytes += n
                case .none: break
                }
                if batch.count >= 256 || batchBytes >= 1 << 20 { break }
            }
            guard !batch.isEmpty else { continue }
            if isStopped { return }
            slots.wait()
            let handed = batch
            batch = []
            batchBytes = 0
            eventLoop.execute { [self] in
                slots.signal()
                deliver(handed)
            }
        }
    }
}

/// Sends queue messages in order on one queue. While the queue has room the
/// event loop sends directly (msgsnd with IPC_NOWAIT, no thread hop). When the
/// queue is full, the rest wait in a FIFO that a thread of its own sends with
/// a blocking msgsnd, so it resumes the moment a receiver makes room; later
/// sends queue behind it, keeping the order. If the queue stays full for the
/// send timeout, `expire` hands back what is waiting so that the node can
/// fail it with a clear error — nothing is dropped silently.
package final class MsgqSender: @unchecked Sendable {
    package struct Item {
        var message: MsgqOutMessage
        /// The receiver's channel (the message type on this queue).
        var mtype: Int
    }

    package let queue: SysVQueue
    package let label: String
    private let condition = NSCondition()
    private var fifo: [Item] = []
    private var head = 0
    private var fifoBytes = 0
    /// When the thread started its current blocking msgsnd (0: not blocked).
    private var blockedSinceNs: UInt64 = 0
    /// The queue stayed full past the timeout: fail new messages at once until it moves.
    private var stuck = false
    private var stopped = false
    private var threadStarted = false
    private var fatal: SysVError?
    /// Called (on the sender thread) when the queue goes away under a blocked msgsnd.
    package var onFatal: ((SysVError) -> Void)?

    package init(queue: SysVQueue, label: String) {
        self.queue = queue
        self.label = label
    }

    package enum Outcome {
        case sent
        /// Some or all wait for room (in order); the sender thread takes them.
        case waiting
        /// Refused at once: the queue is stuck, gone, or the backlog is over its limit.
        case refused([Item], reason: String)
    }

    /// Sends `items` in order. From the event loop.
    package func send(_ items: [Item], maxBacklogBytes: Int) -> Outcome {
        condition.lock()
        defer { condition.unlock() }
        if let fatal { return .refused(items, reason: "\(fatal)") }
        if stuck {
            return .refused(items, reason: "stuck")
        }
        var i = 0
        if fifo.count == head {
            while i < items.count {
                let rc = queue.send(items[i].message.bytes, wait: false)
                if rc == 0 { i += 1; continue }
                if rc == -EAGAIN { break }
                let error = SysVError("msgsnd", errno: -rc, "to \(label) (queue id \(queue.id), message type \(items[i].mtype))")
                if error.isRemoved { fatal = error }
                return .refused(Array(items[i...]), reason: "\(error)")
            }
            if i == items.count { return .sent }
        }
        let rest = items[i...]
        let bytes = rest.reduce(0) { $0 + $1.message.textSize }
        if fifoBytes + bytes > maxBacklogBytes {
            return .refused(Array(rest), reason: "backlog")
        }
        if head > 1024 && head * 2 > fifo.count {
            fifo.removeFirst(head)
            head = 0
        }
        fifo.append(contentsOf: rest)
        fifoBytes += bytes
        if !threadStarted {
            threadStarted = true
            let thread = Thread { [self] in run() }
            thread.name = "\(label) sender"
            thread.stackSize = 1 << 20
            thread.start()
        }
        condition.signal()
        return .waiting
    }

    /// True when nothing waits for room and no msgsnd is blocked.
    package var isIdle: Bool {
        condition.lock()
        defer { condition.unlock() }
        return fifo.count == head && blockedSinceNs == 0
    }

    /// Bytes waiting for room in the queue.
    package var backlogBytes: Int {
        condition.lock()
        defer { condition.unlock() }
        return fifoBytes
    }

    /// If the queue has been full for longer than `timeoutNs`: everything waiting
    /// except the message being sent, which the caller must report as failed;
    /// new messages are refused until the queue moves again.
    package func expire(nowNs: UInt64, timeoutNs: UInt64) -> [Item] {
        condition.lock()
        defer { condition.unlock() }
        guard blockedSinceNs != 0, nowNs > blockedSinceNs, nowNs - blockedSinceNs > timeoutNs, fifo.count > head else { return [] }
        stuck = true
        let out = Array(fifo[(head + 1)...])
        fifo.removeSubrange((head + 1)...)
        fifoBytes = fifo[head].message.textSize
        return out
    }

    /// How long the head message has waited for room (0 if none is waiting).
    package func blockedForNs(nowNs: UInt64) -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return blockedSinceNs == 0 || nowNs < blockedSinceNs ? 0 : nowNs - blockedSinceNs
    }

    /// Ends the thread (a message blocked in msgsnd stays there until the queue
    /// moves or is removed). What was waiting is returned.
    package func stop() -> [Item] {
        condition.lock()
        defer { condition.unlock() }
        stopped = true
        let rest = fifo.count > head + 1 ? Array(fifo[(head + 1)...]) : []
        condition.signal()
        return rest
    }

    private func run() {
        while true {
            condition.lock()
            while fifo.count == head && !stopped { condition.wait() }
            if stopped && fifo.count == head { condition.unlock(); return }
            let item = fifo[head]
            blockedSinceNs = DispatchTime.now().uptimeNanoseconds
            condition.unlock()
            let rc = queue.send(item.message.bytes, wait: true)
            condition.lock()
            blockedSinceNs = 0
            stuck = false
            if fifo.count > head {
                fifoBytes -= fifo[head].message.textSize
                head += 1
                if head == fifo.count {
                    fifo.removeAll(keepingCapacity: true)
                    head = 0
                }
            }
            var fatalError: SysVError?
            if rc != 0 {
                let error = SysVError("msgsnd", errno: -rc, "to \(label) (queue id \(queue.id), message type \(item.mtype))")
                if error.isRemoved {
                    fatal = error
                    fatalError = error
                    fifo.removeAll()
                    head = 0
                    fifoBytes = 0
                }
            }
            let stop = stopped
            condition.unlock()
            if let fatalError { onFatal?(fatalError); return }
            if stop { return }
        }
    }
}
