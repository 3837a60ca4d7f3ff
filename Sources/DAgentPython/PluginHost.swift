import CPyHost
import DAgentWire
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import DAgentNode
import DAgentRouting

/// The embedded CPython plugin host of one node.
///
/// Python runs on one dedicated plugin thread. The node's event loop never
/// waits for it: each batch of DATA and REQUEST messages for the node is
/// appended to a bounded inbox under one lock, as the array the node delivered
/// (moved, not copied message by message), and an eventfd wakes the plugin
/// thread when the inbox goes from empty to non-empty. The plugin thread takes the GIL once per
/// batch (up to 2048 messages) and calls the handlers; what they send goes
/// back through an `Outbox` drained by one task on the event loop.
///
/// CPython can be started once per process, so there is at most one host.
public final class PluginHost: @unchecked Sendable {
    public let node: Node
    let logger: Logger
    let stats = PluginStats()
    let outbox: Outbox
    let wakeFD: Int32
    let queueLength: Int
    let pythonDir: String
    var watchdog: Watchdog?

    enum State { case starting, running, stopped }
    enum Event {
        /// `payload`: the answer as the node read it (a slice of the frame), or the failure's reason.
        case reply(token: UInt64, code: Int32, payload: ByteBuffer)
        case command(token: UInt64, json: String)
        case publication(id: UInt64, topic: String, src: String, payload: Data)
    }

    // Guarded by `lock`.
    let lock = NIOLock()
    /// The batches delivered and not yet taken, in arrival order, and how many messages they hold.
    var inbox: [[DataMessage]] = []
    var inboxCount = 0
    var events: [Event] = []
    /// True while the plugin thread is awake or will come back by itself: no need to signal.
    var signalled = false
    /// Messages taken from `inbox` but not yet handed to Python (counted against queue_length).
    var takenCount = 0
    // Plugin thread only: the inbox as last swapped out, fed to Python in batches of at most
    // `max` from message `takenPos` of batch `takenChunk` on; `takenLeft` not yet fed.
    var taken: [[DataMessage]] = []
    var takenChunk = 0, takenPos = 0, takenLeft = 0
    // Event loop only: a wake-up is scheduled for the end of this loop tick.
    var wakeScheduled = false
    var state = State.starting
    var settings: PluginSettings
    /// Host commands waiting for the plugin thread: their text answer, and the binary body of an
    /// HTTP answer (`command_answer`; nil for a `command_done`).
    var commandWaiters: [UInt64: @Sendable (Result<String, DAgentError>, ByteBuffer?) -> Void] = [:]
    var nextToken: UInt64 = 1
    var dropLogged: UInt64 = 0
    /// Pub/sub (PluginHost-pubsub.swift): the plugins' subscriptions by id and the
    /// publications queued in `events` (bounded by queue_length with the inbox). Under `lock`.
    var subscriptions: [UInt64: Subscription] = [:]
    var queuedPublications = 0

    // Start-up handshake with the plugin thread.
    let startedSignal = DispatchSemaphore(value: 0)
    let finishedSignal = DispatchSemaphore(value: 0)
    var startResult: Result<String, DAgentError>?

    /// Re-reads the settings on reload (SIGHUP, `dagent reload`); nil keeps them.
    public var reloadSettings: (@Sendable () throws -> PluginSettings)?
    /// Applies a metrics report from `dagent.report` (JSON, see DAgentMetrics' `MetricsReport`)
    /// to the node's registry; returns the refusals. Called on the plugin thread.
    public var onReport: (@Sendable (Data) -> [String])?
    /// Handler time of one plugin in one batch (PluginHost-handlerTime.swift); called on the plugin thread.
    public var onHandlerTimes: (@Sendable (PluginHandlerTimes) -> Void)?
    /// Called on the plugin thread after each batch with the total handled so far (benchmarks).
    public var onHandled: (@Sendable (UInt64) -> Void)?
    /// Messages handed to plugin handlers so far.
    public var handledSoFar: UInt64 { stats.totalHandled }

    nonisolated(unsafe) static var created = false

    /// Prepares a host for `node`; call `install()` before `node.start()` and `start()` after.
    public init(node: Node, settings: PluginSettings, logger: Logger? = nil) throws {
        guard !PluginHost.created else {
            throw ConfigError("a process can host CPython once: there is already a plugin host")
        }
        try settings.validate()
        self.node = node
        self.settings = settings
        self.queueLength = settings.queueLength
        var log = logger ?? node.logger
        log[metadataKey: "component"] = "plugins"
        self.logger = log
        pythonDir = try PythonLocator.find(explicit: settings.pythonPath)
        let fd = cpy_eventfd_create()
        guard fd >= 0 else { throw ConfigError("cannot create the plugin host's eventfd: errno \(errno)") }
        wakeFD = fd
        outbox = Outbox(node: node)
        PluginHost.created = true
    }

    /// Routes the node's messages to the plugins and adds the host to `dagent tree`.
    public func install() {
        node.onMessages = { [unowned self] batch in self.deliver(batch) }
        node.handlerAcknowledgesDeliveries = true   // a receipt only once the inbox took the message
        node.treeExtension = { [unowned self] reply in
            let (queued, dropped, settings) = self.lock.withLock { (self.inboxCount + self.takenCount, self.stats.dropped, self.settings) }
            reply.pluginHost = self.stats.info(settings: settings, queued: queued, dropped: dropped)
        }
    }

    // MARK: lifecycle

    /// Starts CPython on the plugin thread and loads the plugins; returns the
    /// load summary (one line per plugin) once they are loaded. A plugin that
    /// fails is reported and skipped; only a host that cannot start throws.
    @discardableResult
    public func start(timeout: Double = 120) throws -> String {
        let thread = Thread { self.threadMain() }
        thread.name = "dagent-python"
        thread.stackSize = 16 << 20
        thread.start()
        if startedSignal.wait(timeout: .now() + timeout) == .timedOut {
            throw DAgentError(.timeout, "the plugin host did not finish loading plugins within \(timeout)s")
        }
        switch startResult {
        case .success(let summary)?:
            let watchdog = Watchdog(budget: settings.handlerBudget, interrupt: settings.interruptHandlers, logger: logger, stats: stats)
            watchdog.start()
            self.watchdog = watchdog
            return summary
        case .failure(let error)?:
            throw error
        case nil:
            throw DAgentError(.refused, "the plugin host stopped during start-up")
        }
    }

    /// Tears the plugins down and stops the plugin thread (waits at most `timeout`).
    public func stop(timeout: Double = 10) {
        let running: Bool = lock.withLock { state == .running }
        guard running else { return }
        let done = DispatchSemaphore(value: 0)
        command(["op": "stop"]) { _ in done.signal() }
        if finishedSignal.wait(timeout: .now() + timeout) == .timedOut {
            logger.error("the plugin thread did not stop within \(timeout)s (a plugin is stuck); exiting without it")
        }
        watchdog?.stop()
        _ = done
    }

    func threadMain() {
        cpy_set_thread_name("dagent-python")
        var callbacks = Bridge.callbacks(for: self)
        var error: UnsafeMutablePointer<CChar>?
        let paths = [pythonDir]
        let cPaths = paths.map { UnsafePointer(strdup($0)) }
        defer { cPaths.forEach { free(UnsafeMutableRawPointer(mutating: $0)) } }
        let rc = cPaths.withUnsafeBufferPointer { buf in
            cpy_init("dagent", buf.baseAddress, Int32(paths.count), &callbacks, node.config.name, wakeFD, &error)
        }
        if rc != 0 {
            let text = error.map { String(cString: $0) } ?? "unknown error"
            free(error)
            finishStart(.failure(DAgentError(.refused, text)))
            lock.withLock { state = .stopped }
            finishedSignal.signal()
            return
        }
        let json = lock.withLock { settings.pythonJSON(logLevel: node.config.logLevel) }
        error = nil
        let mainRC = cpy_run_main("dagent._host", "main", json, &error)
        let failed = mainRC != 0 ? (error.map { String(cString: $0) } ?? "unknown error") : nil
        free(error)
        let waiters: [@Sendable (Result<String, DAgentError>, ByteBuffer?) -> Void] = lock.withLock {
            state = .stopped
            defer { commandWaiters = [:] }
            return Array(commandWaiters.values)
        }
        stats.setRunning(false)
        if let failed {
            logger.error("the plugin host failed: \(failed)")
            finishStart(.failure(DAgentError(.refused, "the plugin host failed to start: \(failed)")))
        } else {
            logger.info("plugin host stopped")
        }
        for w in waiters { w(.failure(DAgentError(.refused, "the plugin host stopped")), nil) }
        finishedSignal.signal()
    }

    func finishStart(_ result: Result<String, DAgentError>) {
        let first: Bool = lock.withLock {
            guard startResult == nil else { return false }
            startResult = result
            if case .success = result { state = .running }
            return true
        }
        if first {
            if case .success = result { stats.setRunning(true) }
            startedSignal.signal()
        }
    }

    // MARK: intake (event loop)

    /// Hands a batch of messages for this node to the plugins: one lock, at
    /// most one wake-up. On the event loop; never blocks. A batch of plain
    /// messages (the usual case) goes into the inbox as it is, one array under
    /// the lock; payloads stay the slices the node read, and the only copy is
    /// into the Python bytes object.
    public func deliver(_ batch: [DataMessage]) {
        guard !batch.isEmpty else { return }
        // Without the lock, in place: only DATA and REQUESTs, none for the host itself?
        var plain = true, receipts = false
        batch.withUnsafeBufferPointer { b in
            for i in b.indices {
                let kind = b[i].kind
                guard kind == .data || kind == .request, b[i].type != WireConstants.pluginAdminType else {
                    plain = false
                    return
                }
                if kind == .data && b[i].cookie != 0 { receipts = true }
            }
        }
        if plain {
            let (queued, wake): (Bool, Bool) = lock.withLock {
                guard state != .stopped, inboxCount + takenCount + batch.count <= queueLength else { return (false, false) }
                inbox.append(batch)
                inboxCount += batch.count
                defer { signalled = true }
                return (true, !signalled)
            }
            if queued {
                if wake { scheduleWake() }
                if receipts {
                    for m in batch where m.kind == .data && m.cookie != 0 { node.acceptDelivery(m) }
                }
                return
            }
        }
        deliverEach(batch)
    }

    /// The general case of `deliver`: message by message, for batches with
    /// admin requests or other kinds, a stopped host or a queue that fills up.
    func deliverEach(_ batch: [DataMessage]) {
        var refused: [DataMessage] = []
        var accepted: [DataMessage] = []   // those that asked for a delivery receipt
        var admins: [DataMessage] = []
        var queued: [DataMessage] = []
        var wake = false, stopped = false
        var dropped: (before: UInt64, after: UInt64) = (0, 0)
        lock.withLock {
            stopped = state == .stopped
            dropped.before = stats.dropped
            for m in batch where m.kind == .data || m.kind == .request {
                if m.type == WireConstants.pluginAdminType {
                    admins.append(m)
                } else if stopped {
                    refused.append(m)
                } else if inboxCount + takenCount + queued.count >= queueLength {
                    stats.dropped += 1
                    refused.append(m)
                } else {
                    queued.append(m)
                    if m.cookie != 0 && m.kind == .data { accepted.append(m) }
                }
            }
            if !queued.isEmpty {
                inbox.append(queued)
                inboxCount += queued.count
                if !signalled {
                    signalled = true
                    wake = true
                }
            }
            dropped.after = stats.dropped
        }
        if wake { scheduleWake() }
        if !refused.isEmpty {
            let reason = stopped
                ? "the plugin host of node '\(node.config.name)' is not running"
                : "the plugin queue of node '\(node.config.name)' is full (plugins.queue_length=\(queueLength)): its plugins do not keep up"
            for m in refused {
                if m.kind == .request {
                    node.replyError(to: m.envelope, code: stopped ? .refused : .queueFull, reason: reason)
                } else {
                    node.refuseDelivery(m, code: stopped ? .refused : .queueFull, reason: reason)   // `dagent send` fails
                }
            }
            if !stopped && (dropped.before == 0 || dropped.before / 10_000 != dropped.after / 10_000) {
                logger.warning("\(reason); \(dropped.after) message(s) refused so far (requests and confirmed sends get a `queue full` error, other one-way messages are counted as dropped)")
            }
        }
        for m in accepted { node.acceptDelivery(m) }
        for m in admins {
            node.acceptDelivery(m)
            admin(m.envelope)
        }
    }

    /// One eventfd write per event-loop tick, after the whole read burst, not per batch.
    func scheduleWake() {
        guard !wakeScheduled else { return }
        wakeScheduled = true
        node.eventLoop.execute {
            self.wakeScheduled = false
            cpy_eventfd_signal(self.wakeFD)
        }
    }

    /// `dagent reload` arrives as a request of the reserved admin type.
    func admin(_ envelope: Dagent_Envelope) {
        guard envelope.kind == .request else { return }
        let obj = (try? JSONSerialization.jsonObject(with: envelope.payload)) as? [String: Any] ?? [:]
        guard obj["op"] as? String == "reload" else {
            node.replyError(to: envelope, reason: "unknown plugin host command: \(String(decoding: envelope.payload, as: UTF8.self))")
            return
        }
        reload(plugin: obj["plugin"] as? String, force: obj["force"] as? Bool ?? false) { result in
            switch result {
            case .success(let text): self.node.reply(to: envelope, payload: Data(text.utf8))
            case .failure(let error): self.node.replyError(to: envelope, code: error.code, reason: error.reason)
            }
        }
    }

    /// Reloads changed plugins (or `plugin`, or all with `force`): teardown,
    /// re-import, setup. Links and other plugins are not touched. Re-reads the
    /// settings first when `reloadSettings` is set. `completion` runs on the plugin thread.
    public func reload(plugin: String?, force: Bool, completion: @escaping @Sendable (Result<String, DAgentError>) -> Void) {
        var cmd: [String: Any] = ["op": "reload", "force": force]
        if let plugin { cmd["plugin"] = plugin }
        if let reloadSettings {
            do {
                let fresh = try reloadSettings()
                try fresh.validate()
                lock.withLock { settings.dirs = fresh.dirs; settings.configJSON = fresh.configJSON
                    settings.handlerBudget = fresh.handlerBudget; settings.interruptHandlers = fresh.interruptHandlers }
                watchdog?.update(budget: fresh.handlerBudget, interrupt: fresh.interruptHandlers)
                let json = lock.withLock { settings.pythonJSON(logLevel: node.config.logLevel) }
                cmd["settings"] = try? JSONSerialization.jsonObject(with: Data(json.utf8))
            } catch {
                completion(.failure(DAgentError(.refused, "plugins not reloaded: the config has an error: \(error)")))
                return
            }
        }
        command(cmd, completion: completion)
    }

    func command(_ cmd: [String: Any], completion: @escaping @Sendable (Result<String, DAgentError>) -> Void) {
        command(cmd, answer: { result, _ in completion(result) })
    }

    /// Queues a host command; `answer` gets its text, and the binary body if the plugin thread sent one.
    func command(_ cmd: [String: Any], answer completion: @escaping @Sendable (Result<String, DAgentError>, ByteBuffer?) -> Void) {
        let text = String(decoding: (try? JSONSerialization.data(withJSONObject: cmd)) ?? Data("{}".utf8), as: UTF8.self)
        let wake: Bool? = lock.withLock {
            guard state != .stopped else { return nil }
            let token = nextToken
            nextToken += 1
            commandWaiters[token] = completion
            events.append(.command(token: token, json: text))
            defer { signalled = true }
            return !signalled
        }
        guard let wake else {
            completion(.failure(DAgentError(.refused, "the plugin host of node '\(node.config.name)' is not running")), nil)
            return
        }
        if wake { cpy_eventfd_signal(wakeFD) }
    }

    /// Queues the outcome of an `arequest` for the plugin thread.
    func post(_ event: Event) {
        let wake: Bool = lock.withLock {
            events.append(event)
            defer { signalled = true }
            return !signalled
        }
        if wake { cpy_eventfd_signal(wakeFD) }
    }

    // MARK: the plugin thread's side (GIL held)

    /// Moves up to `max` messages and all events into the C batch. The inbox
    /// is swapped out whole (O(1) under the lock); batches are cut from the
    /// swapped-out part without the lock, and each delivered array is let go
    /// of (with its payloads) once it has been fed. Each `cpy_batch_message` runs that message's
    /// handler before it returns: Python code (sends, requests) runs inside this loop, which is
    /// why nothing a handler can reach touches `taken` or its positions.
    func take(into batch: OpaquePointer?, max: Int) -> Int32 {
        cpy_eventfd_drain(wakeFD)
        var pending: [Event] = []
        let more: Bool = lock.withLock {
            if takenLeft == 0 && inboxCount > 0 {
                swap(&inbox, &taken)
                takenLeft = inboxCount
                inboxCount = 0
            }
            swap(&pending, &events)
            queuedPublications = 0
            takenCount = takenLeft - Swift.min(max, takenLeft)
            signalled = takenCount > 0 || inboxCount > 0
            return signalled
        }
        var n = Swift.min(max, takenLeft)
        takenLeft -= n
        while n > 0 {
            let fed: Int = taken[takenChunk].withUnsafeBufferPointer { b in
                let end = Swift.min(b.count, takenPos + n)
                for i in takenPos..<end {
                    let kind = b[i].kind, type = b[i].type, cookie = kind == .request ? b[i].cookie : 0
                    let add = { (s: UnsafeBufferPointer<UInt8>) in
                        b[i].payload.withUnsafeReadableBytes { p in
                            s.withMemoryRebound(to: CChar.self) { s in
                                cpy_batch_message(batch, s.baseAddress, s.count, type, cookie, p.baseAddress, p.count)
                            }
                        }
                    }
                    if b[i].src.utf8.withContiguousStorageIfAvailable(add) == nil {
                        var src = b[i].src
                        src.withUTF8(add)
                    }
                }
                return end - takenPos
            }
            n -= fed
            takenPos += fed
            if takenPos == taken[takenChunk].count {
                taken[takenChunk] = []   // its messages are in Python now
                takenChunk += 1
                takenPos = 0
            }
        }
        if takenLeft == 0 {
            taken.removeAll(keepingCapacity: true)
            takenChunk = 0
            takenPos = 0
        }
        for ev in pending {
            switch ev {
            case let .reply(token, code, payload):
                payload.withUnsafeReadableBytes { p in cpy_batch_reply(batch, token, code, p.baseAddress, p.count) }
            case let .command(token, json):
                var text = json
                text.withUTF8 { t in cpy_batch_command(batch, token, t.baseAddress, t.count) }
            case let .publication(id, topic, src, payload):
                var topic = topic, src = src
                topic.withUTF8 { t in
                    src.withUTF8 { s in
                        payload.withUnsafeBytes { p in
                            cpy_batch_publication(batch, id, t.baseAddress, t.count, s.baseAddress, s.count, p.baseAddress, p.count)
                        }
                    }
                }
            }
        }
        return more ? 1 : 0
    }

    func commandDone(json text: String) {
        guard let obj = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any],
              let token = (obj["token"] as? NSNumber)?.uint64Value else { return }
        commandDone(token: token, ok: obj["ok"] as? Bool ?? false, text: obj["text"] as? String ?? "", data: nil)
    }

    /// Completes host command `token` (from `command_done`, or `command_answer` with a body).
    func commandDone(token: UInt64, ok: Bool, text: String, data: ByteBuffer?) {
        let waiter = lock.withLock { commandWaiters.removeValue(forKey: token) }
        if ok {
            waiter?(.success(text), data)
        } else {
            waiter?(.failure(DAgentError(.refused, text)), data)
        }
    }
}
