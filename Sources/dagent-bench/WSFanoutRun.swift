import Foundation
import NIOCore
import NIOPosix

/// The state of one `ws-fanout` run. Everything runs on `loop` (every
/// connection is on it too), so there are no locks.
final class WSFanoutRun: WSConnectionDelegate, @unchecked Sendable {
    /// One subscriber connection's protocol state.
    final class Sub {
        let topic: Int
        var ready = false
        var warmed = false
        /// NATS: bytes of the stream not parsed yet.
        var pending: ByteBuffer?
        init(topic: Int) { self.topic = topic }
    }

    let peer: WSPeer
    let loop: EventLoop
    let group: EventLoopGroup
    let subURL: WSURL, pubURL: WSURL
    let redisPort: Int?
    let topicNames: [String]
    let fanout: Int, count: Int, window: Int, payloadSize: Int, connectBatch: Int
    let stallTimeoutNs: UInt64
    let promise: EventLoopPromise<WSFanoutResult>

    var subs: [Sub] = []
    var conns: [WSConnection] = []
    var opened = 0, readyCount = 0, connecting = 0, nextToOpen = 0
    var publisher: WSConnection?
    var publisherReady = false
    var redis: TCPSink?
    var pubPending: ByteBuffer?

    var measuring = false
    var finished = false
    var sent = 0, completed = 0, deliveries = 0
    /// Deliveries of each measured message so far.
    var got: [UInt16]
    var latencies: [UInt64] = []
    var t0: UInt64 = 0, lastDelivery: UInt64 = 0, lastProgress: UInt64 = 0
    var connectStart: UInt64 = 0, connectSeconds = 0.0
    var cpu0 = 0.0
    var closed = 0, errors = 0
    var firstError: String?
    var warmTask: RepeatedTask?, stallTask: RepeatedTask?
    var warmDeadline: UInt64 = 0
    let pad: [UInt8]
    let watchPids: [Int32]
    var server0 = 0.0

    init(peer: WSPeer, loop: EventLoop, group: EventLoopGroup, subURL: WSURL, pubURL: WSURL, redisPort: Int?,
         topics: Int, fanout: Int, count: Int, window: Int, payload: Int, connectBatch: Int, stallTimeout: Double, watchPids: [Int32] = []) {
        self.watchPids = watchPids
        self.peer = peer
        self.loop = loop
        self.group = group
        self.subURL = subURL
        self.pubURL = pubURL
        self.redisPort = redisPort
        topicNames = (0..<topics).map { "bench.t\($0)" }
        self.fanout = fanout
        self.count = count
        self.window = window
        payloadSize = payload
        self.connectBatch = connectBatch
        stallTimeoutNs = UInt64(stallTimeout * 1e9)
        promise = loop.makePromise(of: WSFanoutResult.self)
        got = [UInt16](repeating: 0, count: count)
        pad = [UInt8](repeating: UInt8(ascii: "x"), count: payload)
        latencies.reserveCapacity(count * fanout)
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    static func cpuSeconds() -> Double {
        var u = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &u)
        return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
    }

    /// utime + stime of the watched processes, in seconds (/proc/PID/stat).
    func serverSeconds() -> Double {
        var ticks = 0
        for pid in watchPids {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 12 { ticks += (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0) }
        }
        return Double(ticks) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    func start() -> EventLoopFuture<WSFanoutResult> {
        loop.execute { [self] in
            connectStart = Self.now()
            let total = topicNames.count * fanout
            subs = (0..<total).map { Sub(topic: $0 % topicNames.count) }
            openMore()
        }
        return promise.futureResult
    }

    func abort(_ why: String) {
        guard !finished else { return }
        finished = true
        warmTask?.cancel()
        stallTask?.cancel()
        for c in conns { c.close() }
        publisher?.close()
        redis?.channel?.close(promise: nil)
        promise.fail(WSClientError(why))
    }

    // MARK: connecting

    func openMore() {
        while connecting < connectBatch && nextToOpen < subs.count {
            let i = nextToOpen
            nextToOpen += 1
            connecting += 1
            let url = peer == .tornado ? subURL.adding(query: "topics=\(topicNames[subs[i].topic])") : subURL
            WSConnection.connect(url, index: i, delegate: self, group: loop).whenComplete { [self] r in
                if case .failure(let e) = r { abort("subscriber \(i): \(e)") }
            }
        }
    }

    func subscriberReady(_ i: Int) {
        guard !subs[i].ready else { return }
        subs[i].ready = true
        readyCount += 1
        connecting -= 1
        if readyCount == subs.count { openPublisher() } else { openMore() }
    }

    func openPublisher() {
        if peer == .tornado {
            TCPSink.connect(host: "127.0.0.1", port: redisPort!, group: loop).whenComplete { [self] r in
                switch r {
                case .success(let s):
                    redis = s
                    publisherReady = true
                    startWarmUp()
                case .failure(let e):
                    abort("cannot connect to redis at 127.0.0.1:\(redisPort!): \(e)")
                }
            }
            return
        }
        WSConnection.connect(pubURL, index: -1, delegate: self, group: loop).whenComplete { [self] r in
            if case .failure(let e) = r { abort("publisher: \(e)") }
        }
    }

    // MARK: WSConnectionDelegate

    func opened(_ conn: WSConnection) {
        if conn.index >= 0 {
            conns.append(conn)
            opened += 1
            if peer == .tornado { subscriberReady(conn.index) }
        } else {
            publisher = conn
        }
    }

    func closed(_ conn: WSConnection, code: UInt16, reason: String) {
        guard !finished else { return }
        if conn.index < 0 || !subs[conn.index].ready {
            abort("\(conn.index < 0 ? "the publisher" : "subscriber \(conn.index)") was closed (\(code) \(reason))")
            return
        }
        closed += 1
        if firstError == nil { firstError = "subscriber \(conn.index) closed: \(code) \(reason)" }
    }

    func message(_ conn: WSConnection, _ data: ByteBuffer) {
        if conn.index < 0 {
            publisherMessage(conn, data)
            return
        }
        let s = subs[conn.index]
        switch peer {
        case .tornado:
            payload(s, data)
        case .dagent:
            dagentFrame(conn, s, data)
        case .nats:
            var b = s.pending ?? conn.channel!.allocator.buffer(capacity: data.readableBytes)
            var d = data
            b.writeBuffer(&d)
            natsParse(&b) { kind, body in
                switch kind {
                case .msg: payload(s, body)
                case .info: conn.send("CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB \(topicNames[s.topic]) 1\r\nPING\r\n")
                case .ping: conn.send("PONG\r\n")
                case .pong: subscriberReady(conn.index)
                case .err: fault("subscriber \(conn.index): nats: \(String(buffer: body))", setup: !s.ready)
                }
            }
            if b.readableBytes == 0 { b.clear() } else if b.readerIndex > 65536 { b.discardReadBytes() }
            s.pending = b
        }
    }

    func fault(_ why: String, setup: Bool) {
        errors += 1
        if firstError == nil { firstError = why }
        if setup { abort(why) }
    }

    // MARK: dagent's JSON protocol

    static let msgPrefix = Array("{\"op\":\"msg\"".utf8)
    static let dataKey = Array("\"data\":\"".utf8)

    func dagentFrame(_ conn: WSConnection, _ s: Sub, _ data: ByteBuffer) {
        if data.starts(with: Self.msgPrefix) {
            guard let at = data.find(Self.dataKey) else { fault("subscriber \(conn.index): a msg frame without \"data\"", setup: false); return }
            payload(s, data.getSlice(at: at + Self.dataKey.count, length: data.writerIndex - at - Self.dataKey.count)!)
            return
        }
        let text = String(buffer: data)
        if text.hasPrefix("{\"op\":\"connected\"") {
            conn.send("{\"op\":\"sub\",\"topic\":\"\(topicNames[s.topic])\"}")
        } else if text.hasPrefix("{\"op\":\"subscribed\"") {
            subscriberReady(conn.index)
        } else if text.hasPrefix("{\"op\":\"error\"") {
            fault("subscriber \(conn.index): \(text)", setup: !s.ready)
        }
    }

    func publisherMessage(_ conn: WSConnection, _ data: ByteBuffer) {
        switch peer {
        case .dagent:
            if data.starts(with: Array("{\"op\":\"published\"".utf8)) { return }
            let text = String(buffer: data)
            if text.hasPrefix("{\"op\":\"connected\"") {
                publisherReady = true
                startWarmUp()
            } else if text.hasPrefix("{\"op\":\"error\"") {
                fault("publisher: \(text)", setup: !publisherReady)
            }
        case .nats:
            var b = pubPending ?? conn.channel!.allocator.buffer(capacity: data.readableBytes)
            var d = data
            b.writeBuffer(&d)
            natsParse(&b) { kind, body in
                switch kind {
                case .info: conn.send("CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n")
                case .ping: conn.send("PONG\r\n")
                case .pong:
                    if !publisherReady {
                        publisherReady = true
                        startWarmUp()
                    }
                case .err: fault("publisher: nats: \(String(buffer: body))", setup: !publisherReady)
                case .msg: break
                }
            }
            if b.readableBytes == 0 { b.clear() }
            pubPending = b
        case .tornado:
            break
        }
    }

    // MARK: NATS

    enum NATSKind { case msg, info, ping, pong, err }

    /// Parses whole NATS protocol lines (and MSG bodies) from `b`; leaves a partial one.
    func natsParse(_ b: inout ByteBuffer, _ each: (NATSKind, ByteBuffer) -> Void) {
        while let nl = b.find([0x0D, 0x0A]) {
            let lineLen = nl - b.readerIndex
            let line = b.getSlice(at: b.readerIndex, length: lineLen)!
            if line.starts(with: Array("MSG ".utf8)) {
                // MSG <subject> <sid> [reply-to] <#bytes>
                var size = 0
                line.withUnsafeReadableBytes { raw in
                    var i = raw.count - 1
                    var mul = 1
                    while i >= 0, raw[i] >= 48, raw[i] <= 57 {
                        size += Int(raw[i] - 48) * mul
                        mul *= 10
                        i -= 1
                    }
                }
                guard b.readableBytes >= lineLen + 2 + size + 2 else { return }
                let body = b.getSlice(at: nl + 2, length: size)!
                b.moveReaderIndex(forwardBy: lineLen + 2 + size + 2)
                each(.msg, body)
                continue
            }
            b.moveReaderIndex(forwardBy: lineLen + 2)
            if line.starts(with: Array("INFO".utf8)) { each(.info, line) }
            else if line.starts(with: Array("PING".utf8)) { each(.ping, line) }
            else if line.starts(with: Array("PONG".utf8)) { each(.pong, line) }
            else if line.starts(with: Array("-ERR".utf8)) { each(.err, line) }
        }
    }

    // MARK: payloads

    /// A payload "SEQ SEND_NS ..." (measured) or "w ..." (warm-up) at subscriber `s`.
    func payload(_ s: Sub, _ p: ByteBuffer) {
        let now = Self.now()
        let parsed: (seq: Int, sent: UInt64)? = p.withUnsafeReadableBytes { raw in
            guard let first = raw.first, first != UInt8(ascii: "w") else { return nil }
            var i = 0, seq = 0
            var sentNs: UInt64 = 0
            while i < raw.count, raw[i] != 32 { seq = seq * 10 + Int(raw[i] &- 48); i += 1 }
            i += 1
            while i < raw.count, raw[i] != 32 { sentNs = sentNs * 10 + UInt64(raw[i] &- 48); i += 1 }
            return (seq, sentNs)
        }
        guard let (seq, sentNs) = parsed else {
            s.warmed = true
            return
        }
        guard measuring, seq >= 0, seq < count else { return }
        deliveries += 1
        latencies.append(now &- sentNs)
        lastDelivery = now
        lastProgress = now
        got[seq] += 1
        if Int(got[seq]) == fanout {
            completed += 1
            if completed == count { finish() } else { pump() }
        }
    }

    // MARK: publishing

    func publish(topic: Int, _ body: [UInt8]) {
        let t = topicNames[topic]
        switch peer {
        case .dagent:
            var b = publisher!.channel!.allocator.buffer(capacity: body.count + t.utf8.count + 40)
            b.writeString("{\"op\":\"pub\",\"topic\":\"\(t)\",\"data\":\"")
            b.writeBytes(body)
            b.writeString("\"}")
            publisher!.send(b, flush: false)
        case .nats:
            var b = publisher!.channel!.allocator.buffer(capacity: body.count + t.utf8.count + 24)
            b.writeString("PUB \(t) \(body.count)\r\n")
            b.writeBytes(body)
            b.writeString("\r\n")
            publisher!.send(opcode: .binary, b, flush: false)
        case .tornado:
            let ch = redis!.channel!
            var b = ch.allocator.buffer(capacity: body.count + t.utf8.count + 48)
            b.writeString("*3\r\n$7\r\nPUBLISH\r\n$\(t.utf8.count)\r\n\(t)\r\n$\(body.count)\r\n")
            b.writeBytes(body)
            b.writeString("\r\n")
            ch.write(b, promise: nil)
        }
    }

    func flushPublisher() {
        if peer == .tornado { redis?.channel?.flush() } else { publisher?.flush() }
    }

    func startWarmUp() {
        connectSeconds = Double(Self.now() - connectStart) / 1e9
        warmDeadline = Self.now() + 30_000_000_000
        warmTask = loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(200)) { [self] _ in warmTick() }
    }

    func warmTick() {
        guard !finished else { return }
        if subs.allSatisfy(\.warmed) {
            warmTask?.cancel()
            // Let the last warm-ups drain before the clock starts.
            loop.scheduleTask(in: .milliseconds(200)) { [self] in beginMeasuring() }
            return
        }
        if Self.now() > warmDeadline {
            let cold = subs.filter { !$0.warmed }.count
            abort("warm-up: \(cold) of \(subs.count) subscribers saw no message within 30 s")
            return
        }
        var cold = Set<Int>()
        for s in subs where !s.warmed { cold.insert(s.topic) }
        var body = Array("w 0 ".utf8)
        body += pad[..<(payloadSize - body.count)]
        for t in cold.sorted() { publish(topic: t, body) }
        flushPublisher()
    }

    func beginMeasuring() {
        guard !finished else { return }
        measuring = true
        cpu0 = Self.cpuSeconds()
        server0 = serverSeconds()
        t0 = Self.now()
        lastProgress = t0
        stallTask = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .milliseconds(500)) { [self] _ in
            if !finished && Self.now() - lastProgress > stallTimeoutNs { finish() }
        }
        pump()
    }

    /// Publishes while fewer than `window` messages are in flight.
    func pump() {
        guard !finished else { return }
        var any = false
        while sent < count && sent - completed < window {
            var body = Array("\(sent) \(Self.now()) ".utf8)
            if body.count < payloadSize { body += pad[..<(payloadSize - body.count)] }
            publish(topic: sent % topicNames.count, body)
            sent += 1
            any = true
        }
        if any { flushPublisher() }
    }

    func finish() {
        guard !finished else { return }
        finished = true
        let cpu = Self.cpuSeconds() - cpu0
        let serverCPU = serverSeconds() - server0
        stallTask?.cancel()
        var r = WSFanoutResult()
        r.deliveries = deliveries
        r.expected = count * fanout
        let span = Double(max(lastDelivery, t0 + 1) - t0) / 1e9
        r.perSecond = deliveries > 0 ? Double(deliveries) / span : 0
        r.elapsed = span
        r.clientCPU = cpu / max(span, 1e-3)
        r.serverCPU = serverCPU / max(Double(Self.now() - t0) / 1e9, 1e-3)
        latencies.sort()
        func q(_ f: Double) -> Double {
            latencies.isEmpty ? .nan : Double(latencies[min(latencies.count - 1, Int(f * Double(latencies.count)))]) / 1e6
        }
        r.p50ms = q(0.50)
        r.p99ms = q(0.99)
        r.closed = closed
        r.errors = errors
        r.firstError = firstError
        r.connectSeconds = connectSeconds
        for c in conns { c.close() }
        publisher?.close()
        redis?.channel?.close(promise: nil)
        promise.succeed(r)
    }
}

extension ByteBuffer {
    /// The absolute index of the first occurrence of `needle` in the readable bytes.
    func find(_ needle: [UInt8]) -> Int? {
        withUnsafeReadableBytes { raw -> Int? in
            guard needle.count <= raw.count, let first = needle.first else { return nil }
            var i = 0
            let last = raw.count - needle.count
            while i <= last {
                if raw[i] == first {
                    var j = 1
                    while j < needle.count && raw[i + j] == needle[j] { j += 1 }
                    if j == needle.count { return readerIndex + i }
                }
                i += 1
            }
            return nil
        }
    }

    func starts(with prefix: [UInt8]) -> Bool {
        guard readableBytes >= prefix.count else { return false }
        return withUnsafeReadableBytes { raw in
            for i in 0..<prefix.count where raw[i] != prefix[i] { return false }
            return true
        }
    }
}
