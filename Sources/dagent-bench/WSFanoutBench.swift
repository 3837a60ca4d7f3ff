import ArgumentParser
import DAgentCLI
import Foundation
import NIOCore
import NIOPosix

/// `dagent-bench ws-fanout`: WebSocket fan-out load, the same client for the
/// dagent push gateway, nats-server's websocket listener and Tornado + Redis.
struct WSFanoutBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ws-fanout",
        abstract: "WebSocket fan-out: --topics x --fanout subscriber connections, one publisher; deliveries/s and publish-to-receive p50/p99.",
        discussion: """
        Every connection (subscribers and publisher) is held on one NIO event loop thread
        (NIOWebSocket client). Each subscriber subscribes to one topic (bench.t0 ...); the
        subscribers of topic i are connections i, i+T, ... The protocol per --system:
          dagent   the push JSON protocol (docs/push.md): --url ws://H:P/ws?token=T; each
                   subscriber sends {"op":"sub"}; the publisher sends {"op":"pub"} on its own
                   WebSocket (through the push plugin, as a browser would).
          nats     the NATS text protocol over WebSocket (CONNECT, SUB, PING/PONG, MSG); the
                   publisher sends PUB on its own WebSocket.
          tornado  bench/push/tornado_redis.py: subscribers connect to --url?topics=T; the
                   publisher PUBLISHes into Redis (--redis PORT).
        Payloads are --payload bytes of text: "SEQ SEND_NS xxx...", the send time on this
        process's monotonic clock, so latency is publish-to-receive with no clock skew.

        First, warm-up messages are published on every topic until every subscriber has
        received one (all subscriptions are live end to end). Then --count messages are
        published round-robin over the topics in a closed loop: at most --window messages
        are in flight (not yet received by all of their topic's subscribers).
        deliveries/s = deliveries / (last delivery - first measured publish). client_cpu is
        this process's CPU time over that interval, as a share of one core: near 1.0 the
        client is the bottleneck.
        """
    )
    @Option(help: "dagent, nats or tornado.") var system: String
    @Option(help: "The subscribers' WebSocket URL (ws://HOST:PORT/PATH?QUERY).") var url: String
    @Option(help: "The publisher's WebSocket URL (default: --url; not used for tornado).") var pubUrl: String?
    @Option(help: "tornado: the Redis port the publisher PUBLISHes to (127.0.0.1).") var redis: Int?
    @Option(help: "Topics.") var topics: Int = 1
    @Option(help: "Subscriber connections per topic.") var fanout: Int = 1000
    @Option(help: "Messages published in the measured phase.") var count: Int = 300
    @Option(help: "Messages in flight at most (closed loop).") var window: Int = 4
    @Option(help: "Payload bytes (at least 32).") var payload: Int = 64
    @Option(help: "Connections being opened at once.") var connectBatch: Int = 50
    @Option(help: "Seconds without a delivery before the run ends with what it has.") var stallTimeout: Double = 15
    @Option(help: "A server process whose CPU share over the measured phase is reported as server_cpu (repeatable; reads /proc).") var watchPid: [Int32] = []
    @Flag(help: "Print one JSON line.") var json = false

    func run() throws {
        guard let peer = WSPeer(rawValue: system) else { fail("--system must be dagent, nats or tornado (got '\(system)')") }
        guard topics >= 1, fanout >= 1, count >= 1, window >= 1, connectBatch >= 1 else {
            fail("--topics, --fanout, --count, --window and --connect-batch must be >= 1")
        }
        guard payload >= 32 else { fail("--payload must be at least 32 bytes (got \(payload))") }
        guard count <= Int(UInt32.max) else { fail("--count must be at most \(UInt32.max) (got \(count))") }
        guard topics * fanout < 60_000 else { fail("--topics x --fanout must be under 60000 connections (got \(topics * fanout))") }
        if peer == .tornado && redis == nil { fail("--system tornado needs --redis PORT") }
        let subURL: WSURL, pubURL: WSURL
        do {
            subURL = try WSURL(url)
            pubURL = try WSURL(pubUrl ?? url)
        } catch {
            fail("\(error)")
        }
        raiseFileLimit()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let run = WSFanoutRun(peer: peer, loop: group.next(), group: group, subURL: subURL, pubURL: pubURL, redisPort: redis,
                              topics: topics, fanout: fanout, count: count, window: window, payload: payload,
                              connectBatch: connectBatch, stallTimeout: stallTimeout, watchPids: watchPid)
        let r: WSFanoutResult
        do { r = try run.start().wait() } catch { fail("ws-fanout (\(system)) failed: \(error)") }
        if json {
            let obj: [String: Any] = [
                "system": system, "topics": topics, "fanout": fanout, "count": count, "window": window, "payload": payload,
                "deliveries": r.deliveries, "expected": r.expected, "per_s": r.perSecond, "p50_ms": r.p50ms, "p99_ms": r.p99ms,
                "client_cpu": r.clientCPU, "server_cpu": r.serverCPU, "closed": r.closed, "errors": r.errors, "elapsed_s": r.elapsed, "connect_s": r.connectSeconds,
                "first_error": r.firstError ?? "",
            ]
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(String(format: "%@ ws-fanout %d topic(s) x %d: %.0f deliveries/s, p50 %.2f ms, p99 %.2f ms (%d/%d delivered, client CPU %.0f%%, server CPU %.0f%%, %d closed)",
                         system, topics, fanout, r.perSecond, r.p50ms, r.p99ms, r.deliveries, r.expected, r.clientCPU * 100, r.serverCPU * 100, r.closed))
        }
        try? group.syncShutdownGracefully()
    }

    func raiseFileLimit() {
        var rl = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
        rl.rlim_cur = rl.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
    }
}

/// The server a run drives.
enum WSPeer: String {
    case dagent, nats, tornado
}

struct WSFanoutResult {
    var deliveries = 0, expected = 0
    var perSecond = 0.0, p50ms = 0.0, p99ms = 0.0, clientCPU = 0.0, serverCPU = 0.0, elapsed = 0.0, connectSeconds = 0.0
    var closed = 0, errors = 0
    var firstError: String?
}
