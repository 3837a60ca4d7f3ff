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

/// An event loop for a leaf whose only link is a message queue. Its thread
/// waits in `msgrcv` on the leaf's channel and runs the node itself when a
/// message arrives, so a message costs no hand-off between threads (the
/// receiver-thread hop costs about 3× a raw msgq round trip). Tasks from other
/// threads and timers wake it with a `wake` message on its own channel (if the
/// queue is full, with a signal that interrupts msgrcv: `dagent_wake_signal()`,
/// SIGRTMIN+5); while no channel is attached it waits on a condition variable.
///
/// It implements NIO's `EventLoop`, so promises, futures and scheduled tasks
/// work as on any loop. It cannot carry sockets: a node that listens or dials
/// TCP uses a NIO loop and the receiver thread (`MsgqReceiver`).
public final class MsgqEventLoop: EventLoop, @unchecked Sendable {
    /// The channel the loop reads while a leaf link is attached.
    package final class Source {
        let queue: SysVQueue
        let mtype: Int
        /// A `wake` control message addressed to this channel.
        let wake: ByteBuffer
        var intake: MsgqIntake
        let deliver: ([MsgqDelivery]) -> Void
        let failed: (SysVError) -> Void

        init(queue: SysVQueue, mtype: Int, wake: ByteBuffer, intake: MsgqIntake,
             deliver: @escaping ([MsgqDelivery]) -> Void, failed: @escaping (SysVError) -> Void) {
            self.queue = queue
            self.mtype = mtype
            self.wake = wake
            self.intake = intake
            self.deliver = deliver
            self.failed = failed
        }
    }

    private struct Timer {
        let id: UInt64
        let deadline: NIODeadline
        let run: () -> Void
        /// Fails the task's promise: the loop ended before it was due.
        let abandon: () -> Void
    }

    private enum Sleep { case awake, onCondition, inMsgrcv }

    private let condition = NSCondition()
    // Guarded by `condition`:
    private var tasks: [() -> Void] = []
    private var timers: [Timer] = []          // sorted by deadline
    private var nextTimerID: UInt64 = 0
    private var sleep = Sleep.awake
    private var wakeSent = false
    private var wakeFailed = false
    /// The timer deadline the waker thread sleeps until (nil: it waits to be told).
    private var wakerDeadline: NIODeadline?
    private var shuttingDown = false
    private var exited = false
    private var shutdownCallbacks: [(DispatchQueue, @Sendable (Error?) -> Void)] = []
    /// The attached source's queue and wake message, for other threads.
    private var wakeTarget: (SysVQueue, ByteBuffer)?
    // Loop thread only:
    private var source: Source?
    private var threadID = pthread_t()
    private var capacity = MsgqWire.defaultMsgmax
    package let label: String
    /// The wake signal's handler is installed (no one else uses the signal).
    private let signalWakes = dagent_install_wake_handler() == 0

    public init(label: String = "dagent msgq loop") {
        self.label = label
        let started = DispatchSemaphore(value: 0)
        let loop = Thread { [self] in
            threadID = pthread_self()
            started.signal()
            run()
        }
        loop.name = label
        loop.stackSize = 1 << 22
        loop.start()
        started.wait()
        let waker = Thread { [self] in wakeForTimers() }
        waker.name = "\(label) waker"
        waker.stackSize = 1 << 18
        waker.start()
    }

    // MARK: EventLoop

    public var inEventLoop: Bool {
        pthread_equal(pthread_self(), threadID) != 0 || dagent_inline_loop() == Unmanaged.passUnretained(self).toOpaque()
    }

    /// Runs `task` on the loop. Once the loop has ended, late tasks (such as
    /// completing a future someone waits on) run at once on the caller's
    /// thread, one at a time, and count as on the loop.
    public func execute(_ task: @escaping @Sendable () -> Void) {
        condition.lock()
        if exited {
            condition.unlock()
            runInline(task)
            return
        }
        tasks.append(task)
        wakeLocked()
        condition.unlock()
    }

    private let lateTasks = NSRecursiveLock()

    private func runInline(_ task: () -> Void) {
        lateTasks.lock()
        defer { lateTasks.unlock() }
        let previous = dagent_inline_loop()
        dagent_set_inline_loop(Unmanaged.passUnretained(self).toOpaque())
        defer { dagent_set_inline_loop(previous) }
        task()
    }

    public func scheduleTask<T>(deadline: NIODeadline, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        let promise = makePromise(of: T.self)
        condition.lock()
        if exited {
            condition.unlock()
            promise.fail(EventLoopError.shutdown)
            return Scheduled(promise: promise, cancellationTask: {})
        }
        defer { condition.unlock() }
        nextTimerID &+= 1
        let id = nextTimerID
        let timer = Timer(id: id, deadline: deadline,
                          run: { do { promise.succeed(try task()) } catch { promise.fail(error) } },
                          abandon: { promise.fail(EventLoopError.shutdown) })
        let at = timers.firstIndex { $0.deadline > deadline } ?? timers.endIndex
        timers.insert(timer, at: at)
        if at == 0 && !inEventLoop && sleep != .awake { wakeLocked(timerOnly: true) }
        return Scheduled(promise: promise, cancellationTask: { [self] in
            condition.lock()
            timers.removeAll { $0.id == id }
            condition.unlock()
        })
    }

    public func scheduleTask<T>(in delay: TimeAmount, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        scheduleTask(deadline: .now() + delay, task)
    }

    public func preconditionInEventLoop(file: StaticString, line: UInt) {
        precondition(inEventLoop, "not on \(label)", file: file, line: line)
    }

    public func preconditionNotInEventLoop(file: StaticString, line: UInt) {
        precondition(!inEventLoop, "on \(label)", file: file, line: line)
    }

    public func shutdownGracefully(queue: DispatchQueue, _ callback: @escaping @Sendable (Error?) -> Void) {
        condition.lock()
        if exited {
            condition.unlock()
            queue.async { callback(nil) }
            return
        }
        shutdownCallbacks.append((queue, callback))
        shuttingDown = true
        wakeLocked()
        condition.unlock()
    }

    // MARK: the message-queue source

    /// Starts reading `source` on this loop (call on the loop). One source at a time.
    package func attach(_ source: Source) {
        preconditionInEventLoop(file: #file, line: #line)
        self.source = source
        capacity = max(capacity, MsgqLimits.read().msgmax)
        condition.lock()
        wakeTarget = (source.queue, source.wake)
        condition.unlock()
    }

    /// Stops reading `source` (call on the loop). Nothing reads its channel afterwards.
    package func detach(_ source: Source) {
        preconditionInEventLoop(file: #file, line: #line)
        guard self.source === source else { return }
        self.source = nil
        condition.lock()
        wakeTarget = nil
        condition.unlock()
    }

    // MARK: waking

    /// Wakes the loop if it sleeps (lock held). In msgrcv: a `wake` message on
    /// its channel; if the queue is full, the waker thread retries.
    private func wakeLocked(timerOnly: Bool = false) {
        switch sleep {
        case .awake:
            return
        case .onCondition:
            condition.broadcast()
        case .inMsgrcv:
            if timerOnly {   // the waker thread sends it when the timer is due
                condition.broadcast()
                return
            }
            sendWakeLocked()
        }
    }

    private func sendWakeLocked() {
        guard !wakeSent, let (queue, wake) = wakeTarget else { return }
        if queue.send(wake, wait: false) == 0 {
            wakeSent = true
            wakeFailed = false
        } else {
            wakeFailed = true
            condition.broadcast()
        }
    }

    /// The waker thread: sends the loop a wake when its next timer is due (or
    /// retries a wake the full queue refused).
    private func wakeForTimers() {
        condition.lock()
        defer { condition.unlock() }
        while !exited {
            wakerDeadline = nil
            guard sleep == .inMsgrcv, !wakeSent else {
                condition.wait()
                continue
            }
            if wakeFailed {
                // The queue is full: interrupt msgrcv instead (again until the
                // loop is awake, in case it had not entered msgrcv yet).
                if signalWakes { _ = dagent_wake_thread(threadID) } else { sendWakeLocked() }
                if !wakeSent { _ = condition.wait(until: Date(timeIntervalSinceNow: 0.001)) }
                continue
            }
            guard let first = timers.first else {
                condition.wait()
                continue
            }
            let now = NIODeadline.now()
            if first.deadline <= now {
                sendWakeLocked()
                if !wakeSent { _ = condition.wait(until: Date(timeIntervalSinceNow: 0.001)) }
            } else {
                wakerDeadline = first.deadline
                _ = condition.wait(until: Date(timeIntervalSinceNow: Double((first.deadline - now).nanoseconds) / 1e9))
            }
        }
    }

    // MARK: the loop

    private func run() {
        var buffer = UnsafeMutableRawPointer.allocate(byteCount: MsgqWire.mtypeBytes + capacity, alignment: 8)
        var bufferCapacity = capacity
        defer { buffer.deallocate() }
        var ready: [() -> Void] = []
        while true {
            condition.lock()
            let now = NIODeadline.now()
            var due = 0
            while due < timers.count && timers[due].deadline <= now { due += 1 }
            ready.append(contentsOf: timers[..<due].map(\.run))
            timers.removeFirst(due)
            ready.append(contentsOf: tasks)
            tasks.removeAll(keepingCapacity: true)
            if ready.isEmpty {
                if shuttingDown { break }   // lock held; released below
                if let source {
                    sleep = .inMsgrcv
                    wakeSent = false
                    wakeFailed = false
                    // The waker thread watches the timers while we block: tell it
                    // only if it does not already sleep until the first one.
                    if let first = timers.first?.deadline, wakerDeadline.map({ first < $0 }) ?? true {
                        condition.broadcast()
                    }
                    condition.unlock()
                    if bufferCapacity < capacity {
                        buffer.deallocate()
                        bufferCapacity = capacity
                        buffer = UnsafeMutableRawPointer.allocate(byteCount: MsgqWire.mtypeBytes + capacity, alignment: 8)
                    }
                    receive(source, buffer: buffer, capacity: bufferCapacity)
                } else {
                    sleep = .onCondition
                    if let first = timers.first {
                        let wait = Double((first.deadline - now).nanoseconds) / 1e9
                        _ = condition.wait(until: Date(timeIntervalSinceNow: max(0, wait)))
                    } else {
                        condition.wait()
                    }
                    sleep = .awake
                    condition.unlock()
                }
                continue
            }
            condition.unlock()
            for task in ready { task() }
            ready.removeAll(keepingCapacity: true)
        }
        // Shutting down (lock held): fail what is scheduled, then report.
        exited = true
        let pending = timers
        timers.removeAll()
        let callbacks = shutdownCallbacks
        shutdownCallbacks.removeAll()
        condition.broadcast()
        condition.unlock()
        for timer in pending { timer.abandon() }
        for (queue, callback) in callbacks { queue.async { callback(nil) } }
    }

    private func markAwake() {
        condition.lock()
        sleep = .awake
        wakeFailed = false
        condition.unlock()
    }

    /// One blocking msgrcv on the source, then what else is queued (without
    /// blocking), handed to the node as one batch, on this thread.
    ///
    /// The draining is skipped when the first message is small (`drainsAfter`):
    /// a sender packs what it has into messages of up to `msgmax`, so a small one
    /// means it had nothing more at hand, and on a request/reply path the
    /// non-blocking msgrcv would only return ENOMSG (a syscall per message on
    /// the round trip). Anything queued meanwhile is read by the next turn's
    /// msgrcv, which then returns at once.
    private func receive(_ source: Source, buffer: UnsafeMutableRawPointer, capacity: Int) {
        var batch: [MsgqDelivery] = []
        var batchBytes = 0
        var wait = true
        while batch.count < 256 && batchBytes < 1 << 20 {
            let n = dagent_msgrcv(source.queue.id, buffer, capacity, source.mtype, wait ? 0 : 1)
            if wait {
                markAwake()   // from here on, tasks from this thread need no wake
            }
            if n < 0 {
                let err = Int32(-n)
                if err == EINTR { if wait { return } else { continue } }
                if err == ENOMSG { break }
                if err == E2BIG {   // kernel.msgmax was raised under us: reallocate on the next turn
                    self.capacity = capacity * 2
                    break
                }
                if !batch.isEmpty { source.deliver(batch) }
                if self.source === source { detach(source) }
                source.failed(SysVError("msgrcv", errno: err, "on \(label) (queue id \(source.queue.id))"))
                return
            }
            let first = wait
            wait = false
            let text = UnsafeRawBufferPointer(start: buffer + MsgqWire.mtypeBytes, count: n)
            if case .appended = source.intake.take(text, mtype: buffer.load(as: Int.self), into: &batch) {
                batchBytes += n
            }
            if first && !Self.drainsAfter(firstMessageBytes: n, capacity: capacity) { break }
        }
        if !batch.isEmpty { source.deliver(batch) }
    }
}

extension MsgqEventLoop {
    /// True if a first message of `firstMessageBytes` (of at most `capacity`,
    /// the kernel's msgmax) is worth draining the queue after: from half of
    /// msgmax on, the sender was packing a burst and more is likely queued.
    static func drainsAfter(firstMessageBytes: Int, capacity: Int) -> Bool {
        firstMessageBytes >= capacity / 2
    }
}

/// Whatever reads a leaf's channel: a receiver thread (`MsgqReceiver`) or the
/// node's own `MsgqEventLoop`.
package protocol MsgqChannelReader: AnyObject {
    func start()
    /// Stops reading (on the node's loop).
    func stop()
    /// True once nothing reads the channel any more.
    var hasExited: Bool { get }
    /// True if `stop` only takes effect once a `wake` message reaches the reader.
    var needsWake: Bool { get }
}

extension MsgqReceiver: MsgqChannelReader {
    package var needsWake: Bool { true }
}

/// Reads a leaf's channel on the node's `MsgqEventLoop` (no thread of its own).
package final class MsgqLoopReader: MsgqChannelReader {
    package let loop: MsgqEventLoop
    package let source: MsgqEventLoop.Source
    package private(set) var hasExited = false

    package init(loop: MsgqEventLoop, source: MsgqEventLoop.Source) {
        self.loop = loop
        self.source = source
    }

    package func start() { loop.attach(source) }

    package func stop() {
        loop.detach(source)
        hasExited = true
    }

    package var needsWake: Bool { false }
}
