import ArgumentParser
import DAgentRoot
import DAgentWire
import Foundation
import NIOCore
import NIOPosix
import DAgentNode
import DAgentRouting
import DAgentCLI

/// `dagent bench state`: write or linearizable-read throughput and latency of the
/// root group, or of an etcd cluster driven the same way (for the same-run comparison).
struct StateBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state",
        abstract: "N concurrent clients each doing sequential puts or linearizable gets; reports ops/s, p50, p99.",
        discussion: """
        --target dagent: one node joins through --via; each client is an independent request loop
        to @state (requests share the node's link, as gRPC streams share a connection).
        --target etcd: each client has its own HTTP/1.1 keep-alive connection to the etcd v3 JSON
        gateway at --via (http://HOST:PORT, /v3/kv/put). Same loop, same clock, same output.
        --op get: the warm-up puts write 50 keys per client; the measured loop then reads them
        back, linearizably on both sides: @state `get` (ReadIndex at the leader, served after the
        apply index reaches it) and etcd's `/v3/kv/range` (linearizable unless serializable is set).
        The JSON line reports reads_per_s instead of writes_per_s.
        """
    )
    @Option(help: "dagent or etcd.") var target: String = "dagent"
    @Option(help: "dagent: tcp://HOST:PORT of any node; etcd: http://HOST:PORT.") var via: String
    @Option(help: "put (writes) or get (linearizable reads of keys written in the warm-up).") var op: String = "put"
    @Option(help: "Concurrent clients.") var clients: Int = 1
    @Option(help: "Total operations (after 50 warm-up puts per client).") var count: Int = 2000
    @Option(help: "Value size in bytes.") var size: Int = 64
    @Flag(help: "Print one JSON line.") var json = false

    func run() throws {
        bootstrapLogging(level: "warning")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let value = String(repeating: "v", count: size)
        guard op == "put" || op == "get" else { fail("--op must be put or get, not \(op)") }
        guard clients >= 1, count >= 1 else { fail("--clients and --count must be at least 1 (got \(clients), \(count))") }
        let driver: PutDriver
        switch target {
        case "dagent":
            var config = NodeConfig(name: "bench-state-\(getpid())")
            config.parents = try Shorthand.parseList(via)
            let node = joinOrExit(config, timeout: 10, group: group)
            driver = DAgentPuts(node: node, value: value)
        case "etcd":
            guard let url = URL(string: via), let host = url.host, let port = url.port else { fail("--via must be http://HOST:PORT for etcd") }
            driver = try EtcdPuts(loop: loop, host: host, port: port, clients: clients, value: value)
        default:
            fail("--target must be dagent or etcd")
        }
        let result = try PutLoad(loop: loop, driver: driver, clients: clients, count: count, reads: op == "get").run().wait()
        let rateKey = op == "get" ? "reads_per_s" : "writes_per_s"
        if json {
            print(String(format: "{\"system\":\"%@\",\"op\":\"%@\",\"clients\":%d,\"count\":%d,\"size\":%d,\"%@\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}",
                         target, op, clients, count, size, rateKey, result.rate, result.p50ms, result.p99ms))
        } else {
            print(String(format: "%@ %@s: %d clients, %.0f %@, p50 %.3f ms, p99 %.3f ms (%d ops, %d B values)",
                         target, op, clients, result.rate, rateKey.replacingOccurrences(of: "_per_s", with: "/s"),
                         result.p50ms, result.p99ms, count, size))
        }
        driver.stop()
        try? group.syncShutdownGracefully()
    }
}

/// Issues one put (or one linearizable get) for client `client` and calls back on the
/// loop when it is answered.
protocol PutDriver: AnyObject {
    func put(client: Int, key: String, done: @escaping (Error?) -> Void)
    func get(client: Int, key: String, done: @escaping (Error?) -> Void)
    func stop()
}

struct PutResult { var rate = 0.0, p50ms = 0.0, p99ms = 0.0 }

/// The load loop: every client does warm-up puts, then its share of `count`, one at a
/// time: puts, or (`reads`) gets of the keys its warm-up wrote.
final class PutLoad: @unchecked Sendable {
    let loop: EventLoop, driver: PutDriver, clients: Int, count: Int, reads: Bool
    var samples: [UInt64] = []
    var remaining: Int
    var active = 0
    var start: UInt64 = 0
    let promise: EventLoopPromise<PutResult>
    static let warmup = 50

    init(loop: EventLoop, driver: PutDriver, clients: Int, count: Int, reads: Bool = false) {
        self.loop = loop
        self.reads = reads
        self.driver = driver
        self.clients = clients
        self.count = count
        remaining = count
        promise = loop.makePromise()
        samples.reserveCapacity(count)
    }

    func run() -> EventLoopFuture<PutResult> {
        loop.execute {
            var warm = self.clients
            for c in 0..<self.clients { self.warm(c, left: PutLoad.warmup) { warm -= 1; if warm == 0 { self.measure() } } }
        }
        return promise.futureResult
    }

    func warm(_ c: Int, left: Int, then: @escaping () -> Void) {
        guard left > 0 else { then(); return }
        driver.put(client: c, key: "bench/warm/\(c)/\(left)") { error in
            if let error { self.promise.fail(error); return }
            self.warm(c, left: left - 1, then: then)
        }
    }

    func measure() {
        start = DispatchTime.now().uptimeNanoseconds
        active = clients
        for c in 0..<clients { next(c, i: 0) }
    }

    func next(_ c: Int, i: Int) {
        guard remaining > 0 else {
            active -= 1
            if active == 0 {
                let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                samples.sort()
                var r = PutResult()
                r.rate = Double(samples.count) / elapsed
                r.p50ms = Double(samples[samples.count / 2]) / 1e6
                r.p99ms = Double(samples[min(samples.count - 1, samples.count * 99 / 100)]) / 1e6
                promise.succeed(r)
            }
            return
        }
        remaining -= 1
        let t0 = DispatchTime.now().uptimeNanoseconds
        let done: (Error?) -> Void = { error in
            if let error { self.promise.fail(error); return }
            self.samples.append(DispatchTime.now().uptimeNanoseconds - t0)
            self.next(c, i: i + 1)
        }
        if reads {
            driver.get(client: c, key: "bench/warm/\(c)/\(i % PutLoad.warmup + 1)", done: done)
        } else {
            driver.put(client: c, key: "bench/\(c)/\(i)", done: done)
        }
    }
}

/// Puts through the tree to @state.
final class DAgentPuts: PutDriver {
    let node: Node, quotedValue: String
    init(node: Node, value: String) { self.node = node; self.quotedValue = JSONString.quoted(value) }
    func stop() { try? node.stop().wait() }

    func put(client: Int, key: String, done: @escaping (Error?) -> Void) {
        send(StateBenchJSON.put(key: key, quotedValue: quotedValue), done: done)
    }

    /// A linearizable read: @state answers a get after a ReadIndex round at the leader.
    func get(client: Int, key: String, done: @escaping (Error?) -> Void) {
        send(StateBenchJSON.get(key: key), done: done)
    }

    func send(_ body: Data, done: @escaping (Error?) -> Void) {
        node.requestOnLoop(to: StateTypes.serviceName, type: StateTypes.request, payload: body, timeout: 10, waiter: .callback { r in
            switch r {
            case .success(let e):
                switch StateBenchJSON.outcome(e.payload) {
                case .ok: done(nil)
                case .retry:
                    // No leader yet (election in progress): try again shortly.
                    self.node.eventLoop.scheduleTask(in: .milliseconds(20)) { self.send(body, done: done) }
                case .refused:
                    done(DAgentError(.refused, String(decoding: e.payload, as: UTF8.self)))
                }
            case .failure(let e): done(e)
            }
        })
    }
}

/// Puts over HTTP/1.1 keep-alive to etcd's v3 JSON gateway, one connection per client.
final class EtcdPuts: PutDriver {
    let value64: String
    var channels: [Channel] = []
    var handlers: [HTTPResponseHandler] = []
    let host: String

    init(loop: EventLoop, host: String, port: Int, clients: Int, value: String) throws {
        self.host = host
        value64 = Data(value.utf8).base64EncodedString()
        for _ in 0..<clients {
            let handler = HTTPResponseHandler()
            let channel = try ClientBootstrap(group: loop)
                .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(handler) } }
                .connect(host: host, port: port).wait()
            channels.append(channel)
            handlers.append(handler)
        }
    }

    func stop() { for c in channels { try? c.close().wait() } }

    func put(client: Int, key: String, done: @escaping (Error?) -> Void) {
        let body = "{\"key\":\"\(Data(key.utf8).base64EncodedString())\",\"value\":\"\(value64)\"}"
        post(client: client, path: "/v3/kv/put", body: body, done: done)
    }

    /// A linearizable range of one key (etcd's default; `serializable` is not set).
    func get(client: Int, key: String, done: @escaping (Error?) -> Void) {
        post(client: client, path: "/v3/kv/range", body: "{\"key\":\"\(Data(key.utf8).base64EncodedString())\"}", done: done)
    }

    func post(client: Int, path: String, body: String, done: @escaping (Error?) -> Void) {
        let request = "POST \(path) HTTP/1.1\r\nHost: \(host)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        handlers[client].pending.append(done)
        channels[client].writeAndFlush(ByteBuffer(string: request), promise: nil)
    }
}

/// Parses HTTP/1.1 responses with Content-Length (what etcd's gateway sends).
final class HTTPResponseHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var buffer = ByteBuffer()
    var pending: [(Error?) -> Void] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        buffer.writeBuffer(&bytes)
        while let view = buffer.readableBytesView.firstRange(of: "\r\n\r\n".utf8) {
            let headerEnd = view.upperBound - buffer.readerIndex
            let header = buffer.getString(at: buffer.readerIndex, length: headerEnd) ?? ""
            guard let line = header.split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") }),
                  let length = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) else {
                pending.removeFirst()(DAgentError(.badFrame, "HTTP response without Content-Length"))
                return
            }
            guard buffer.readableBytes >= headerEnd + length else { return }
            let ok = header.hasPrefix("HTTP/1.1 200")
            buffer.moveReaderIndex(forwardBy: headerEnd + length)
            let done = pending.removeFirst()
            done(ok ? nil : DAgentError(.refused, "etcd answered: \(header.split(separator: "\r\n").first ?? "")"))
        }
        buffer.discardReadBytes()
    }
}
