import CDAgent
import DAgentWire
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import DAgentNode
import DAgentRouting

// The C API of Sources/CDAgent/include/cdagent.h. A `dagent_node *` is an
// unmanaged, retained `Handle`. Messages from the node's event loop go into a
// locked queue; a pipe is readable while the queue is non-empty, so callers
// can block in poll() (dagent_wait) or hand the fd to an event loop (asyncio).

struct QueuedItem {
    var kind: Int32
    var code: Int32
    var type: UInt32
    var cookie: UInt64
    var token: UInt64
    var src: String
    /// The payload: for a message, a slice of the bytes the node read (no copy).
    var data: ByteBuffer
    /// The topic of a DAGENT_ITEM_PUBLICATION ("" otherwise).
    var topic: String = ""
}

final class Handle: @unchecked Sendable {
    let node: Node
    let nameC: UnsafeMutablePointer<CChar>
    let lock = NIOLock()
    var queue = CircularBuffer<QueuedItem>(initialCapacity: 256)
    let readFD: Int32
    let writeFD: Int32
    var destroyed = false
    /// Storage for the sources of the items last returned by dagent_take, and
    /// the items themselves: their payload buffers stay retained (and are never
    /// written) until the next take, so the pointers handed out stay valid
    /// without a copy (caller's thread).
    var arena: UnsafeMutableRawPointer?
    var arenaSize = 0
    var taken: [QueuedItem] = []
    var handlers: [UInt32: (dagent_handler, UnsafeMutableRawPointer?)] = [:]
    var timers: [UInt64: Scheduled<Void>] = [:]   // on the event loop
    var repeating: [UInt64: RepeatedTask] = [:]    // on the event loop
    /// Pub/sub (CAPI-pubsub.swift): subscriptions by id (event loop), payload bytes of
    /// queued publications and publications dropped by the slow-consumer rule (under `lock`).
    var subscriptions: [UInt64: Subscription] = [:]
    var queuedPublicationBytes = 0
    var publicationDrops: UInt64 = 0
    /// Sends from threads other than the node's loop, handed over in batches.
    let outbox: SendOutbox

    init(node: Node) throws {
        self.node = node
        outbox = SendOutbox(node: node, logger: stderrLogger)
        nameC = strdup(node.config.name)
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw DAgentError(.refused, "pipe() failed: errno \(errno)") }
        readFD = fds[0]
        writeFD = fds[1]
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
    }

    deinit {
        close(readFD)
        close(writeFD)
        free(nameC)
        free(arena)
    }

    func push(_ item: QueuedItem) {
        let wake: Bool = lock.withLock {
            if destroyed { return false }
            let wasEmpty = queue.isEmpty
            queue.append(item)
            return wasEmpty
        }
        if wake { wakeTaker() }
    }

    /// Queues a batch of messages from the node's loop: one lock, one wake-up.
    func push(messages batch: [DataMessage]) {
        let wake: Bool = lock.withLock {
            if destroyed { return false }
            let wasEmpty = queue.isEmpty
            for m in batch where m.kind == .data || m.kind == .request {
                queue.append(QueuedItem(kind: Int32(DAGENT_ITEM_MESSAGE), code: 0, type: m.type, cookie: m.kind == .request ? m.cookie : 0,
                                        token: 0, src: m.src, data: m.payload))
            }
            return wasEmpty && !queue.isEmpty
        }
        if wake { wakeTaker() }
    }

    /// Makes the pipe readable for a taker waiting in poll(): after the queue's lock is
    /// released, so that the woken thread's `dagent_take` does not find the lock still held
    /// (it would sleep once more on it). No wake-up is lost: the taker drains the pipe only
    /// under the lock and with the queue empty, so a byte written for an item it has not
    /// taken yet stays in the pipe (at worst a byte for an item already taken wakes it for
    /// nothing).
    func wakeTaker() {
        var one: UInt8 = 1
        _ = write(writeFD, &one, 1)
    }

    func drainPipe() {
        var buf = [UInt8](repeating: 0, count: 64)
        while read(readFD, &buf, 64) == 64 {}
    }
}

private let stderrLogger: Logger = {
    var logger = Logger(label: "dagent", factory: { StreamLogHandler.standardError(label: $0) })
    let level = ProcessInfo.processInfo.environment["DAGENT_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0.lowercased()) }
    logger.logLevel = level ?? .warning
    return logger
}()

@discardableResult
package func fail(_ code: Int32, _ message: String) -> Int32 {
    var m = message
    return m.withUTF8 { p in
        p.withMemoryRebound(to: CChar.self) { cdagent_fail(code, $0.baseAddress, $0.count) }
    }
}

package func fail(_ error: Error) -> Int32 {
    if let e = error as? DAgentError { return fail(Int32(e.code.rawValue), e.reason) }
    if let e = error as? ConfigError { return fail(Int32(DAGENT_E_CONFIG), e.message) }
    return fail(Int32(DAGENT_E_STATE), "\(error)")
}

func handle(_ p: OpaquePointer?) -> Handle? {
    guard let p else {
        fail(Int32(DAGENT_E_STATE), "no node (NULL)")
        return nil
    }
    let h = Unmanaged<Handle>.fromOpaque(UnsafeRawPointer(p)).takeUnretainedValue()
    if h.lock.withLock({ h.destroyed }) {
        fail(Int32(DAGENT_E_STATE), "node '\(h.node.config.name)' was destroyed")
        return nil
    }
    return h
}

private func bytes(_ p: UnsafeRawPointer?, _ n: Int) -> Data {
    guard let p, n > 0 else { return Data() }
    return Data(bytes: p, count: n)
}

/// The caller's `n` bytes at `p`, not copied (empty when `p` is NULL).
private func view(_ p: UnsafeRawPointer?, _ n: Int) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: n > 0 ? p : nil, count: p == nil ? 0 : n)
}

func string(_ p: UnsafePointer<CChar>?) -> String? {
    p.map { String(cString: $0) }
}

@_cdecl("dagent_create")
public func dagent_create(_ name: UnsafePointer<CChar>?, _ via: UnsafePointer<CChar>?, _ listen: UnsafePointer<CChar>?,
                          _ secret: UnsafePointer<CChar>?) -> OpaquePointer? {
    createNode(name, via, listen, secret) { _ in }
}

/// `dagent_create` and its variants (CAPI-tls.swift): `configure` adds to the config first.
func createNode(_ name: UnsafePointer<CChar>?, _ via: UnsafePointer<CChar>?, _ listen: UnsafePointer<CChar>?,
                _ secret: UnsafePointer<CChar>?, configure: (inout NodeConfig) throws -> Void) -> OpaquePointer? {
    cdagent_clear_error()
    guard let name = string(name), !name.isEmpty else {
        fail(Int32(DAGENT_E_CONFIG), "a node needs a non-empty name")
        return nil
    }
    do {
        var config = NodeConfig(name: name)
        try configure(&config)
        config.name = name
        if var v = string(via), !v.isEmpty {
            if v.hasPrefix("push:") { v = String(v.dropFirst(5)) }
            config.parents = try Shorthand.parseList(v)
        }
        if var l = string(listen), !l.isEmpty {
            if l.hasPrefix("pull:") { l = String(l.dropFirst(5)) }
            config.listen = try Shorthand.parseList(l)
        }
        if config.parents.isEmpty && config.listen.isEmpty {
            fail(Int32(DAGENT_E_CONFIG), "node '\(name)' needs an address to join through (e.g. tcp://127.0.0.1:7000) or to listen on")
            return nil
        }
        if let secret = string(secret), !secret.isEmpty { config.secret = secret }
        config.reconnectInitialBackoff = 0.05
        config.directWrites = ProcessInfo.processInfo.environment["DAGENT_DIRECT_WRITES"] != "0"   // Node-direct.swift
        let node = try Node(config: config, logger: stderrLogger)
        let h = try Handle(node: node)
        node.onMessages = { [unowned h] batch in h.push(messages: batch) }
        node.onEvent = { event in
            if case .registrationFailed(let error) = event {
                stderrLogger.error("node '\(name)': registration failed: \(error)")
            }
        }
        do {
            try node.start().wait()
        } catch {
            try? node.shutdown()
            throw error
        }
        return OpaquePointer(Unmanaged.passRetained(h).toOpaque())
    } catch {
        _ = fail(error)
        return nil
    }
}

@_cdecl("dagent_destroy")
public func dagent_destroy(_ p: OpaquePointer?) {
    guard let p else { return }
    let um = Unmanaged<Handle>.fromOpaque(UnsafeRawPointer(p))
    let h = um.takeUnretainedValue()
    let already = h.lock.withLock { () -> Bool in
        let was = h.destroyed
        h.destroyed = true
        h.queue.removeAll()
        return was
    }
    if already { return }
    _ = try? h.node.eventLoop.submit {
        for t in h.timers.values { t.cancel() }
        for t in h.repeating.values { t.cancel() }
        h.timers.removeAll()
        h.repeating.removeAll()
        for s in h.subscriptions.values { s.cancel() }
        h.subscriptions.removeAll()
        h.node.onMessage = nil
    }.wait()
    try? h.node.shutdown()
    um.release()
}

@_cdecl("dagent_name")
public func dagent_name(_ p: OpaquePointer?) -> UnsafePointer<CChar>? {
    guard let h = handle(p) else { return nil }
    return UnsafePointer(h.nameC)
}

@_cdecl("dagent_is_ready")
public func dagent_is_ready(_ p: OpaquePointer?) -> Int32 {
    guard let h = handle(p) else { return 0 }
    return ((try? h.node.isReady) ?? false) ? 1 : 0
}

@_cdecl("dagent_wait_ready")
public func dagent_wait_ready(_ p: OpaquePointer?, _ timeout: Double) -> Int32 {
    guard let h = handle(p) else { return -Int32(DAGENT_E_STATE) }
    let node = h.node
    let promise = node.eventLoop.makePromise(of: Void.self)
    let timer = node.eventLoop.scheduleTask(in: .nanoseconds(Int64(max(0, timeout) * 1e9))) {
        let why = node.lastDialError.isEmpty ? "" : " (\(node.lastDialError))"
        promise.fail(DAgentError(.notReady, "node '\(node.config.name)' did not register through \(node.config.parents.map(\.description).joined(separator: ",")) within \(timeout)s\(why)"))
    }
    node.ready().hop(to: node.eventLoop).whenComplete { r in
        timer.cancel()
        promise.completeWith(r)
    }
    do {
        try promise.futureResult.wait()
        return 0
    } catch {
        return fail(error)
    }
}

private func checkSize(_ h: Handle, _ dst: String, _ len: Int) -> Int32 {
    if dst.isEmpty { return fail(Int32(DAGENT_E_CONFIG), "destination must be a non-empty node name") }
    let limit = h.node.config.maxMessageBytes
    if len > limit { return fail(Int32(DAGENT_E_TOO_LARGE), "message to '\(dst)' is \(len) bytes, over max_message_bytes=\(limit)") }
    return 0
}

@_cdecl("dagent_send")
public func dagent_send(_ p: OpaquePointer?, _ dst: UnsafePointer<CChar>?, _ type: UInt32, _ data: UnsafeRawPointer?, _ len: Int) -> Int32 {
    guard let h = handle(p) else { return -Int32(DAGENT_E_STATE) }
    let name = string(dst) ?? ""
    let rc = checkSize(h, name, len)
    if rc != 0 { return rc }
    let payload = view(data, len)
    let node = h.node
    if node.eventLoop.inEventLoop {
        do { try node.sendOnLoop(to: name, type: type, payload: payload) } catch { return fail(error) }
        return 0
    }
    let charge = Node.windowCharge(payloadBytes: len)
    if let full = takeWindow(node, charge, what: "send to '\(name)'") { return full }
    // Fire and forget, in batches: local failures found on the loop are logged (the sender is not waiting).
    h.outbox.send(to: name, type: type, payload: payload, charge: charge)
    return 0
}

/// Takes room in the node's send window (`send_window_bytes`) for a send or a
/// publish from this thread, waiting up to `send_window_timeout`; the failure
/// code if the window stayed full.
func takeWindow(_ node: Node, _ charge: Int, what: String) -> Int32? {
    if node.sendWindow.acquire(charge, timeout: node.config.sendWindowTimeout) { return nil }
    return fail(Int32(DAGENT_E_QUEUE_FULL),
                "\(what): the send window stayed full for send_window_timeout=\(node.config.sendWindowTimeout)s " +
                "(send_window_bytes=\(node.sendWindow.limit) sent and not yet written out); the link is not draining: its peer reads slower than this program sends, or is gone")
}

@_cdecl("dagent_send_would_block")
public func dagent_send_would_block(_ p: OpaquePointer?, _ len: Int) -> Int32 {
    guard let p else { return 0 }
    let h = Unmanaged<Handle>.fromOpaque(UnsafeRawPointer(p)).takeUnretainedValue()
    return h.node.sendWindow.wouldWait(Node.windowCharge(payloadBytes: len)) ? 1 : 0
}

@_cdecl("dagent_request")
public func dagent_request(_ p: OpaquePointer?, _ dst: UnsafePointer<CChar>?, _ type: UInt32, _ data: UnsafeRawPointer?, _ len: Int,
                           _ timeout: Double, _ reply: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                           _ replyLen: UnsafeMutablePointer<Int>?) -> Int32 {
    blockingRequest(p, dst, type, data, len, timeout) { n in
        let out = malloc(Swift.max(n, 1))!
        reply?.pointee = out
        replyLen?.pointee = n
        return out
    }
}

@_cdecl("dagent_request_into")
public func dagent_request_into(_ p: OpaquePointer?, _ dst: UnsafePointer<CChar>?, _ type: UInt32, _ data: UnsafeRawPointer?, _ len: Int,
                                _ timeout: Double, _ alloc: dagent_alloc?, _ user: UnsafeMutableRawPointer?) -> Int32 {
    guard let alloc else { return fail(Int32(DAGENT_E_CONFIG), "dagent_request_into needs an allocator (alloc is NULL)") }
    return blockingRequest(p, dst, type, data, len, timeout) { n in alloc(user, n) }
}

/// A blocking request: waits for the answer (`ReplyWait`: a `.message` waiter, so
/// the payload is still a slice of the frame the node read), then copies its payload
/// once, into the memory `storage(count)` returns on the caller's thread.
private func blockingRequest(_ p: OpaquePointer?, _ dst: UnsafePointer<CChar>?, _ type: UInt32, _ data: UnsafeRawPointer?, _ len: Int,
                             _ timeout: Double, storage: (Int) -> UnsafeMutableRawPointer?) -> Int32 {
    guard let h = handle(p) else { return -Int32(DAGENT_E_STATE) }
    let name = string(dst) ?? ""
    let rc = checkSize(h, name, len)
    if rc != 0 { return rc }
    if h.node.eventLoop.inEventLoop {
        return fail(Int32(DAGENT_E_STATE), "dagent_request blocks; it cannot be called on the node's event loop")
    }
    let node = h.node
    let answered = ReplyWait()
    let waiter = RpcWaiter.message { answered.complete($0) }
    // Straight to the socket when the link is quiet (Node-direct.swift), else through the loop.
    let sent = node.tryRequestDirect(to: name, type: type, payload: view(data, len),
                                     timeout: timeout, waiter: waiter)
    if !sent {
        let payload = bytes(data, len)
        node.executeHandingOff(learning: name) {
            node.requestOnLoop(to: name, type: type, payload: payload, timeout: timeout, waiter: waiter)
        }
    }
    do {
        let answer = try answered.wait(atMost: max(timeout, 0) + 30).get()   // the table's timeout comes first
        let n = answer.payload.readableBytes
        guard let out = storage(n) else {
            return fail(Int32(DAGENT_E_STATE), "no memory for the \(n)-byte reply from '\(name)' (the allocator returned NULL)")
        }
        answer.payload.withUnsafeReadableBytes { b in if n > 0 { out.copyMemory(from: b.baseAddress!, byteCount: n) } }
        return 0
    } catch {
        return fail(error)
    }
}

@_cdecl("dagent_request_async")
public func dagent_request_async(_ p: OpaquePointer?, _ dst: UnsafePointer<CChar>?, _ type: UInt32, _ data: UnsafeRawPointer?, _ len: Int,
                                 _ timeout: Double, _ token: UInt64) -> Int32 {
    guard let h = handle(p) else { return -Int32(DAGENT_E_STATE) }
    let name = string(dst) ?? ""
    let rc = checkSize(h, name, len)
    if rc != 0 { return rc }
    let payload = bytes(data, len)
    let node = h.node
    node.executeHandingOff {
        node.requestOnLoop(to: name, type: type, payload: payload, timeout: timeout, waiter: .message { [weak h] r in
            guard let h else { return }
            switch r {
            case .success(let answer):
                // The payload stays a slice of the frame the node read; dagent_take hands it out
                // and keeps it alive until the next take, as for messages (no copy here).
                h.push(QueuedItem(kind: Int32(DAGENT_ITEM_REPLY), code: 0, type: type, cookie: 0, token: token, src: name, data: answer.payload))
            case .failure(let e):
                h.push(QueuedItem(kind: Int32(DAGENT_ITEM_REPLY), code: Int32(e.code.rawValue), type: type, cookie: 0, token: token,
                                  src: name, data: ByteBuffer(string: e.reason)))
            }
        })
    }
    return 0
}

@_cdecl("dagent_respond")
public func dagent_respond(_ p: OpaquePointer?, _ dst: UnsafePointer<CChar>?, _ type: UInt32, _ cookie: UInt64, _ ok: Int32,
                           _ data: UnsafeRawPointer?, _ len: Int) -> Int32 {
    guard let h = handle(p) else { return -Int32(DAGENT_E_STATE) }
    let name = string(dst) ?? ""
    if cookie == 0 { return fail(Int32(DAGENT_E_STATE), "message type \(type) from '\(name)' is not a request (cookie 0)") }
    if ok != 0 {
        let rc = checkSize(h, name, len)
        if rc != 0 { return rc }
    }
    let node = h.node
    let onLoop = node.eventLoop.inEventLoop
    if ok != 0 && !onLoop {
        // Straight to the socket when the link is quiet (Node-direct.swift): no loop wake-up.
        let payload = view(data, len)
        if node.trySendDirect(Node.header(to: name, type: type, kind: .response, cookie: cookie), payload: payload) != nil { return 0 }
    }
    let request: Dagent_Envelope = {
        var r = Dagent_Envelope()
        r.src = name
        r.type = type
        r.cookie = cookie
        return r
    }()
    let body = bytes(data, len)
    let answer = { @Sendable in
        if ok != 0 { node.reply(to: request, payload: body) } else { node.replyError(to: request, reason: String(decoding: body, as: UTF8.self)) }
    }
    if onLoop { answer() } else { node.executeHandingOff(learning: name, answer) }
    return 0
}

@_cdecl("dagent_timer")
public func dagent_timer(_ p: OpaquePointer?, _ delay: Double, _ period: Double, _ token: UInt64) -> Int32 {
    guard let h = handle(p) else { return -Int32(DAGENT_E_STATE) }
    if delay < 0 || period < 0 { return fail(Int32(DAGENT_E_CONFIG), "timer delay and period must be >= 0 (got \(delay), \(period))") }
    let loop = h.node.eventLoop
    loop.execute {
        let item = QueuedItem(kind: Int32(DAGENT_ITEM_TIMER), code: 0, type: 0, cookie: 0, token: token, src: "", data: ByteBuffer())
        if period > 0 {
            h.repeating[token]?.cancel()
            h.repeating[token] = loop.scheduleRepeatedTask(initialDelay: .nanoseconds(Int64(delay * 1e9)),
                                                           delay: .nanoseconds(Int64(period * 1e9))) { _ in h.push(item) }
        } else {
            h.timers[token]?.cancel()
            h.timers[token] = loop.scheduleTask(in: .nanoseconds(Int64(delay * 1e9))) {
                h.timers[token] = nil
                h.push(item)
            }
        }
    }
    return 0
}

@_cdecl("dagent_timer_cancel")
public func dagent_timer_cancel(_ p: OpaquePointer?, _ token: UInt64) -> Int32 {
    guard let h = handle(p) else { return -Int32(DAGENT_E_STATE) }
    h.node.eventLoop.execute {
        h.timers.removeValue(forKey: token)?.cancel()
        h.repeating.removeValue(forKey: token)?.cancel()
    }
    return 0
}

@_cdecl("dagent_wakeup_fd")
public func dagent_wakeup_fd(_ p: OpaquePointer?) -> Int32 {
    guard let h = handle(p) else { return -Int32(DAGENT_E_STATE) }
    return h.readFD
}

@_cdecl("dagent_wait")
public func dagent_wait(_ p: OpaquePointer?, _ timeoutMs: Int32) -> Int32 {
    guard let h = handle(p) else { return -Int32(DAGENT_E_STATE) }
    let queued = h.lock.withLock { h.queue.count }
    if queued > 0 || timeoutMs == 0 { return Int32(queued) }
    var pfd = pollfd(fd: h.readFD, events: Int16(POLLIN), revents: 0)
    _ = poll(&pfd, 1, timeoutMs)
    return Int32(h.lock.withLock { h.queue.count })
}

@_cdecl("dagent_take")
public func dagent_take(_ p: OpaquePointer?, _ items: UnsafeMutablePointer<dagent_item>?, _ max: Int32) -> Int32 {
    guard let h = handle(p) else { return -Int32(DAGENT_E_STATE) }
    guard let items, max > 0 else { return 0 }
    let batch: [QueuedItem] = h.lock.withLock {
        let n = Swift.min(Int(max), h.queue.count)
        var out: [QueuedItem] = []
        out.reserveCapacity(n)
        for _ in 0..<n {
            let item = h.queue.removeFirst()
            if item.kind == Int32(DAGENT_ITEM_PUBLICATION) { h.queuedPublicationBytes -= item.data.readableBytes }
            out.append(item)
        }
        if h.queue.isEmpty { h.drainPipe() }
        return out
    }
    if batch.isEmpty { return 0 }
    var need = 0
    for item in batch { need += item.src.utf8.count + 1 + (item.topic.isEmpty ? 0 : item.topic.utf8.count + 1) }
    if need > h.arenaSize {
        free(h.arena)
        h.arenaSize = Swift.max(need, 64 * 1024)
        h.arena = malloc(h.arenaSize)
    }
    let base = h.arena!
    var offset = 0
    for (i, item) in batch.enumerated() {
        var src = item.src
        let dst = base + offset
        let srcLen = src.withUTF8 { (u: UnsafeBufferPointer<UInt8>) -> Int in
            if let b = u.baseAddress, u.count > 0 { dst.copyMemory(from: UnsafeRawPointer(b), byteCount: u.count) }
            return u.count
        }
        (base + offset + srcLen).storeBytes(of: 0, as: UInt8.self)
        let srcPtr = (base + offset).assumingMemoryBound(to: CChar.self)
        offset += srcLen + 1
        var topicPtr: UnsafePointer<CChar>? = nil
        var topicLen = 0
        if !item.topic.isEmpty {
            var topic = item.topic
            let tdst = base + offset
            topicLen = topic.withUTF8 { (u: UnsafeBufferPointer<UInt8>) -> Int in
                tdst.copyMemory(from: UnsafeRawPointer(u.baseAddress!), byteCount: u.count)
                return u.count
            }
            (tdst + topicLen).storeBytes(of: 0, as: UInt8.self)
            topicPtr = UnsafePointer(tdst.assumingMemoryBound(to: CChar.self))
            offset += topicLen + 1
        }
        // The payload stays where the node read it: `h.taken` keeps its storage
        // alive, unwritten, until the next take (the C API's stated lifetime).
        let n = item.data.readableBytes
        let dataPtr = item.data.withUnsafeReadableBytes { $0.baseAddress?.assumingMemoryBound(to: UInt8.self) }
        items[i] = dagent_item(kind: item.kind, code: item.code, type: item.type, cookie: item.cookie, token: item.token,
                               src: UnsafePointer(srcPtr), src_len: srcLen, data: n > 0 ? dataPtr : nil, len: n,
                               topic: topicPtr, topic_len: topicLen)
    }
    h.taken = batch
    return Int32(batch.count)
}

@_cdecl("dagent_on")
public func dagent_on(_ p: OpaquePointer?, _ type: UInt32, _ handler: dagent_handler?, _ user: UnsafeMutableRawPointer?) -> Int32 {
    guard let h = handle(p) else { return -Int32(DAGENT_E_STATE) }
    h.lock.withLock {
        if let handler { h.handlers[type] = (handler, user) } else { h.handlers[type] = nil }
    }
    return 0
}

@_cdecl("dagent_update")
public func dagent_update(_ p: OpaquePointer?, _ timeoutMs: Int32) -> Int32 {
    guard let h = handle(p) else { return -Int32(DAGENT_E_STATE) }
    let waited = dagent_wait(p, timeoutMs)
    if waited < 0 { return waited }
    var handled: Int32 = 0
    let cap: Int32 = 256
    let items = UnsafeMutablePointer<dagent_item>.allocate(capacity: Int(cap))
    defer { items.deallocate() }
    while true {
        let n = dagent_take(p, items, cap)
        if n <= 0 { break }
        for i in 0..<Int(n) {
            let item = items[i]
            guard item.kind == Int32(DAGENT_ITEM_MESSAGE) else { continue }
            let entry = h.lock.withLock { h.handlers[item.type] }
            let src = String(cString: item.src)
            guard let (fn, user) = entry else {
                if item.cookie != 0 {
                    let reason = "node '\(h.node.config.name)' has no handler for message type \(item.type)"
                    _ = dagent_respond(p, item.src, item.type, item.cookie, 0, reason, reason.utf8.count)
                }
                continue
            }
            var copy = item
            let rc = fn(p, &copy, user)
            handled += 1
            if rc != 0 && item.cookie != 0 {
                let reason = "handler for type \(item.type) in '\(h.node.config.name)' failed (returned \(rc))"
                _ = dagent_respond(p, src, item.type, item.cookie, 0, reason, reason.utf8.count)
            }
        }
        if n < cap { break }
    }
    return handled
}
