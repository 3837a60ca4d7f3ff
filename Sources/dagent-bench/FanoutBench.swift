import ArgumentParser
import DAgentCLI
import DAgentNode
import DAgentRouting
import DAgentWire
import Foundation
import NIOCore
import NIOPosix

/// `dagent-bench fanout`: one publisher, N subscribers of one topic, through the
/// tree (`--system dagent`) or through nats-server (`--system nats`).
struct FanoutBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanout",
        abstract: "Fan-out from 1 publisher (joined at --pub) to N subscribers (at --sub): deliveries/s and publish-to-receive latency.",
        discussion: """
        dagent: the publisher is a node joined at --pub, each subscriber a node of its own joined
        at --sub, subscribed to the topic. nats: the publisher and each subscriber are NATS
        connections (--pub/--sub are nats://HOST:PORT), each subscriber with a SUB of the topic.
        All clients share one event loop thread, so both systems pay the same client cost.

        First every subscriber must receive a probe (interest has travelled). Latency: --latency-count
        publishes one at a time, each timed from the publish call to its arrival at every
        subscriber (p50/p99 over all deliveries). Throughput: --count publishes with at most --window
        messages in flight per subscriber; deliveries/s = deliveries / (last arrival - first publish).
        Nothing is retried (at most once): deliveries that never come are reported as lost.
        """
    )
    @Option(help: "dagent or nats.") var system: String
    @Option(help: "Address the publisher joins (tcp://... for dagent, nats://HOST:PORT for nats).") var pub: String
    @Option(help: "Address the subscribers join.") var sub: String
    @Option(help: "Subscribers.") var subscribers: Int = 10
    @Option(help: "Messages published in the throughput phase.") var count: Int = 20_000
    @Option(help: "Measured publishes in the latency phase (after 100 warm-up ones).") var latencyCount: Int = 1_000
    @Option(help: "Messages in flight per subscriber at most (throughput phase).") var window: Int = 1_000
    @Option(help: "Payload bytes (at least 16: a timestamp and a sequence number).") var size: Int = 64
    @Option(help: "Topic.") var topic: String = "bench.fanout.data"
    @Flag(help: "Print one JSON line.") var json = false
    @Option(help: "Log level.") var logLevel: String = "warning"

    func run() throws {
        bootstrapLogging(level: logLevel)
        guard system == "dagent" || system == "nats" else { fail("--system must be dagent or nats (got '\(system)')") }
        guard subscribers >= 1, count >= 1, latencyCount >= 1, window >= 1 else { fail("--subscribers, --count, --latency-count and --window must be >= 1") }
        guard size >= 16 else { fail("--size must be at least 16 bytes (got \(size))") }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let run = FanoutRun(loop: loop, subscribers: subscribers, count: count, latencyCount: latencyCount, window: window, size: size)
        let clients: FanoutClients
        do {
            clients = system == "dagent"
                ? try DAgentFanout(pub: pub, sub: sub, subscribers: subscribers, topic: topic, group: group, run: run)
                : try NATSFanout(pub: pub, sub: sub, subscribers: subscribers, topic: topic, group: group, run: run)
        } catch {
            fail("fanout (\(system)) set-up failed: \(error)")
        }
        run.publish = clients.publish
        run.flush = clients.flush
        let r: FanoutResult
        do { r = try run.start().wait() } catch { fail("fanout (\(system)) failed: \(error)") }
        clients.close()
        try? group.syncShutdownGracefully()
        if json {
            print(String(format: "{\"system\":\"%@\",\"subscribers\":%d,\"size\":%d,\"count\":%d,\"latency_count\":%d,\"deliveries_per_s\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"lost\":%d}",
                         system, subscribers, size, count, latencyCount, r.deliveriesPerSec, r.p50us, r.p99us, r.lost))
        } else {
            print(String(format: "%@ fanout 1->%d, %d B: %.0f deliveries/s; latency p50 %.1f us, p99 %.1f us; lost %d",
                         system, subscribers, size, r.deliveriesPerSec, r.p50us, r.p99us, r.lost))
        }
    }
}

struct FanoutResult {
    var deliveriesPerSec = 0.0, p50us = 0.0, p99us = 0.0
    var lost = 0
}

/// The publisher and subscribers of one system; deliveries go to `run.delivered`.
protocol FanoutClients {
    /// Queues one publish (written, not necessarily flushed).
    var publish: (ByteBuffer) -> Void { get }
    /// Ends a burst of publishes: what is queued goes out (one write per burst, as dagent's node does).
    var flush: () -> Void { get }
    func close()
}

/// The measurement; everything runs on the one client event loop.
final class FanoutRun: @unchecked Sendable {
    let loop: EventLoop
    let n: Int, count: Int, latencyCount: Int, window: Int, size: Int
    var publish: (ByteBuffer) -> Void = { _ in }
    var flush: () -> Void = {}
    let promise: EventLoopPromise<FanoutResult>
    var result = FanoutResult()
    enum Phase { case probe, latency, throughput, done }
    var phase = Phase.probe
    var probed: Set<Int> = []
    var seq: UInt64 = 0
    var received = 0          // deliveries in the current phase
    var samples: [UInt64] = []
    var startNs: UInt64 = 0, last: UInt64 = 0
    var published = 0
    var lastProgress: UInt64 = 0
    static let warmup = 100

    init(loop: EventLoop, subscribers: Int, count: Int, latencyCount: Int, window: Int, size: Int) {
        self.loop = loop
        n = subscribers
        self.count = count
        self.latencyCount = latencyCount
        self.window = window
        self.size = size
        promise = loop.makePromise()
        samples.reserveCapacity((latencyCount + Self.warmup) * subscribers)
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// payload: [0..<8] publish time, [8..<16] phase<<56 | sequence.
    func message(phase: UInt64, seq: UInt64) -> ByteBuffer {
        var b = ByteBufferAllocator().buffer(capacity: size)
        b.writeInteger(Self.now(), endianness: .little)
        b.writeInteger(phase << 56 | seq, endianness: .little)
        b.writeRepeatingByte(0x61, count: size - 16)
        return b
    }

    func start() -> EventLoopFuture<FanoutResult> {
        loop.execute { self.probe() }
        loop.scheduleTask(in: .seconds(30)) {
            if self.phase == .probe { self.promise.fail(DAgentError(.timeout, "only \(self.probed.count) of \(self.n) subscribers got a probe within 30s")) }
        }
        return promise.futureResult
    }

    func probe() {
        guard phase == .probe else { return }
        publish(message(phase: 0, seq: 0))
        flush()
        loop.scheduleTask(in: .milliseconds(20)) { self.probe() }
    }

    /// A delivery to subscriber `index` (on the loop).
    func delivered(_ index: Int, _ payload: ByteBuffer) {
        guard let sent = payload.getInteger(at: payload.readerIndex, endianness: .little, as: UInt64.self),
              let tag = payload.getInteger(at: payload.readerIndex + 8, endianness: .little, as: UInt64.self) else { return }
        delivered(index, sent: sent, tag: tag)
    }

    func delivered(_ index: Int, _ payload: Data) {
        guard payload.count >= 16 else { return }
        let (sent, tag) = payload.withUnsafeBytes { p in
            (UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
             UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
        delivered(index, sent: sent, tag: tag)
    }

    func delivered(_ index: Int, sent: UInt64, tag: UInt64) {
        let t = Self.now()
        let ph = tag >> 56
        switch phase {
        case .probe:
            guard ph == 0 else { return }
            probed.insert(index)
            if probed.count == n {
                phase = .latency
                loop.scheduleTask(in: .milliseconds(50)) { self.seq = 0; self.received = 0; self.nextLatency() }
            }
        case .latency:
            guard ph == 1 else { return }
            if Int(tag & 0xFFFF_FFFF) >= Self.warmup { samples.append(t - sent) }
            received += 1
            if received == n { received = 0; seq += 1; nextLatency() }
        case .throughput:
            guard ph == 2 else { return }
            received += 1
            last = t
            lastProgress = t
            if received % n == 0 { pump() }
            if received == n * count { finish() }
        case .done:
            return
        }
    }

    func nextLatency() {
        if Int(seq) == latencyCount + Self.warmup {
            samples.sort()
            result.p50us = Double(samples[samples.count / 2]) / 1000
            result.p99us = Double(samples[min(samples.count - 1, samples.count * 99 / 100)]) / 1000
            phase = .throughput
            received = 0
            startNs = Self.now()
            lastProgress = startNs
            pump()
            watchdog()
            return
        }
        publish(message(phase: 1, seq: seq))
        flush()
    }

    /// Publishes while fewer than `window` messages per subscriber are in flight.
    func pump() {
        while published < count && published - received / n < window {
            publish(message(phase: 2, seq: UInt64(published)))
            published += 1
        }
        flush()
    }

    /// Ends the throughput phase if deliveries stopped (lost ones are not retried).
    func watchdog() {
        guard phase == .throughput else { return }
        if Self.now() - lastProgress > 2_000_000_000 {
            finish()
            return
        }
        loop.scheduleTask(in: .milliseconds(100)) { self.watchdog() }
    }

    func finish() {
        guard phase == .throughput else { return }
        phase = .done
        result.lost = n * count - received
        result.deliveriesPerSec = Double(received) / (Double(max(last, startNs + 1) - startNs) / 1e9)
        promise.succeed(result)
    }
}

/// dagent: a publisher node and one node per subscriber.
final class DAgentFanout: FanoutClients {
    let publisher: Node
    var subs: [Node] = []
    let publish: (ByteBuffer) -> Void
    /// The node flushes by itself at the end of the loop tick (scheduleFlush).
    let flush: () -> Void = {}

    init(pub: String, sub: String, subscribers: Int, topic: String, group: EventLoopGroup, run: FanoutRun) throws {
        let tag = "\(getpid())"
        var config = NodeConfig(name: "fan-pub-\(tag)")
        config.parents = try Shorthand.parseList(pub)
        let publisher = joinOrExit(config, timeout: 10, group: group)
        self.publisher = publisher
        for i in 0..<subscribers {
            var c = NodeConfig(name: "fan-sub-\(tag)-\(i)")
            c.parents = try Shorthand.parseList(sub)
            let node = joinOrExit(c, timeout: 10, group: group)
            _ = try node.subscribeMessages(topic) { m in
                run.delivered(i, m.payload)
            }.wait()
            subs.append(node)
        }
        publish = { b in
            try? publisher.publishOnLoop(topic, payload: Data(b.readableBytesView))
        }
    }

    func close() {
        for n in subs { try? n.shutdown() }
        try? publisher.shutdown()
    }
}

/// nats: raw NATS protocol connections (CONNECT, SUB, PUB, MSG, PING/PONG).
final class NATSFanout: FanoutClients {
    var channels: [Channel] = []
    let publish: (ByteBuffer) -> Void
    let flush: () -> Void

    init(pub: String, sub: String, subscribers: Int, topic: String, group: EventLoopGroup, run: FanoutRun) throws {
        func connect(_ url: String, _ onMessage: ((ByteBuffer) -> Void)?) throws -> Channel {
            let hostPort = url.hasPrefix("nats://") ? String(url.dropFirst(7)) : url
            guard let colon = hostPort.lastIndex(of: ":"), let port = Int(hostPort[hostPort.index(after: colon)...]) else {
                throw DAgentError(.refused, "bad NATS address '\(url)' (nats://HOST:PORT)")
            }
            let host = String(hostPort[..<colon])
            let ch = try ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture {
                        try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(NATSDecoder(onMessage: onMessage)))
                    }
                }
                .connect(host: host, port: port).wait()
            try ch.writeAndFlush(ByteBuffer(string: "CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false}\r\n")).wait()
            return ch
        }
        for i in 0..<subscribers {
            let ch = try connect(sub) { run.delivered(i, $0) }
            try ch.writeAndFlush(ByteBuffer(string: "SUB \(topic) \(i + 1)\r\n")).wait()
            channels.append(ch)
        }
        let p = try connect(pub, nil)
        channels.append(p)
        let header = "PUB \(topic) "
        publish = { b in
            var out = p.allocator.buffer(capacity: b.readableBytes + header.utf8.count + 16)
            out.writeString(header)
            out.writeString("\(b.readableBytes)\r\n")
            out.writeImmutableBuffer(b)
            out.writeString("\r\n")
            p.write(out, promise: nil)
        }
        flush = { p.flush() }
    }

    func close() {
        for ch in channels { try? ch.close().wait() }
    }
}

/// Parses what a NATS server sends: INFO, PING (answered), +OK, -ERR, MSG (handed on).
struct NATSDecoder: ByteToMessageDecoder {
    typealias InboundOut = Never
    let onMessage: ((ByteBuffer) -> Void)?

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let crlf = buffer.readableBytesView.firstIndex(of: 0x0A) else { return .needMoreData }
        let lineLen = crlf - buffer.readerIndex + 1
        guard let line = buffer.getString(at: buffer.readerIndex, length: lineLen - 2) else { return .needMoreData }
        if line.hasPrefix("MSG ") {
            // MSG <subject> <sid> [reply-to] <#bytes>
            guard let n = line.split(separator: " ").last.flatMap({ Int($0) }) else {
                throw DAgentError(.badFrame, "bad NATS MSG line: \(line)")
            }
            guard buffer.readableBytes >= lineLen + n + 2 else { return .needMoreData }
            buffer.moveReaderIndex(forwardBy: lineLen)
            let payload = buffer.readSlice(length: n)!
            buffer.moveReaderIndex(forwardBy: 2)
            onMessage?(payload)
            return .continue
        }
        buffer.moveReaderIndex(forwardBy: lineLen)
        if line.hasPrefix("PING") {
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: "PONG\r\n")), promise: nil)
        } else if line.hasPrefix("-ERR") {
            throw DAgentError(.refused, "nats-server: \(line)")
        }
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        .needMoreData
    }
}
