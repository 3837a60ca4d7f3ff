import ArgumentParser
import DAgentWire
import Foundation
import NIOCore
import NIOPosix
import DAgentNode
import DAgentRouting
import DAgentCLI

/// `dagent bench`: load generators.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dagent-bench",
        abstract: "Load generators that measure the tree.",
        subcommands: [PingPong.self, Mesh.self, StateBench.self, PythonBench.self, FanoutBench.self, WSFanoutBench.self, QueueBench.self]
    )
}

/// Round trips and a one-way stream between two endpoints joined at two addresses.
struct PingPong: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pingpong",
        abstract: "Join endpoint A at --from and B at --to; measure A→B round trips (p50, p99) and an A→B stream (msgs/s, MB/s).",
        discussion: """
        Round trips are request/reply (B answers each request). The stream is one-way DATA
        with flow control: B sends a credit every 1000 messages and A keeps at most --window
        messages in flight. Both endpoints run on one event loop thread in this process
        (--loops 2: one NIO thread each, as two processes would). --loops msgq (both
        addresses msgq://) gives each endpoint its own message-queue event loop, the
        default for a leaf on a queue: the thread waiting on the queue runs the node.
        With --from msgq://PATH --to msgq://PATH, A and B are brothers under one agent and
        talk directly (brother p2p); the output says which route was measured.
        """
    )
    @Option(help: "Address endpoint A joins through.") var from: String
    @Option(help: "Address endpoint B joins through.") var to: String
    @Option(help: "Payload size in bytes.") var size: Int = 64
    @Option(help: "Messages in the stream.") var count: Int = 200_000
    @Option(help: "Measured round trips (after 1000 warm-up ones).") var rttCount: Int = 20_000
    @Option(help: "Stream messages in flight at most.") var window: Int = 20_000
    @Option(help: "Event loops: 1 (A and B share a NIO thread), 2 (a NIO thread each, like two processes) or msgq (a message-queue loop each).") var loops: String = "1"
    @Flag(help: "Print one JSON line.") var json = false
    @Option(help: "Log level.") var logLevel: String = "warning"
    @OptionGroup var tls: TLSOptions

    func run() throws {
        bootstrapLogging(level: logLevel)
        guard ["1", "2", "msgq"].contains(loops) else { fail("--loops must be 1, 2 or msgq") }
        // With TLS the endpoints are bench-a and bench-b: the certificate must name both.
        let tlsFiles = try tls.files()
        let group: MultiThreadedEventLoopGroup? = loops == "msgq" ? nil : MultiThreadedEventLoopGroup(numberOfThreads: Int(loops)!)
        let tag = tlsFiles == nil ? "-\(getpid())" : ""
        var configA = NodeConfig(name: "bench-a\(tag)")
        configA.parents = try Shorthand.parseList(from)
        var configB = NodeConfig(name: "bench-b\(tag)")
        configB.parents = try Shorthand.parseList(to)
        configA.tls = tlsFiles
        configB.tls = tlsFiles
        for c in [configA, configB] where c.maxMessageBytes < size {
            fail("--size \(size) exceeds max_message_bytes=\(c.maxMessageBytes)")
        }
        if group == nil && !(configA.runsOnMessageQueueLoop && configB.runsOnMessageQueueLoop) {
            fail("--loops msgq needs msgq:// addresses for --from and --to (and DAGENT_MSGQ_LOOP not 0)")
        }
        let a = joinOrExit(configA, timeout: 10, group: group)
        let b = joinOrExit(configB, timeout: 10, group: group)
        let run = BenchRun(a: a, b: b, size: size, count: count, rttCount: rttCount, window: window)
        let result: BenchResult
        do {
            result = try run.start().wait()
        } catch {
            fail("bench failed: \(error)")
        }
        let route = result.direct ? "direct" : "tree"
        if json {
            print(String(format: "{\"system\":\"dagent\",\"route\":\"%@\",\"loops\":\"%@\",\"size\":%d,\"count\":%d,\"rtt_count\":%d,\"rtt_p50_us\":%.1f,\"rtt_p99_us\":%.1f,\"stream_msgs_per_s\":%.0f,\"stream_mb_per_s\":%.2f,\"direct_out\":%llu}",
                         route, loops, size, count, rttCount, result.p50us, result.p99us, result.msgsPerSec, result.mbPerSec, result.directOut))
        } else {
            print(String(format: "dagent pingpong size=%dB (%@): rtt p50 %.1f us, p99 %.1f us (%d round trips); stream %.0f msgs/s, %.2f MB/s (%d messages)",
                         size, result.direct ? "brother p2p" : "through the tree", result.p50us, result.p99us, rttCount, result.msgsPerSec, result.mbPerSec, count))
        }
        try? a.shutdown()   // also ends the loops the nodes own (--loops msgq)
        try? b.shutdown()
        try? group?.syncShutdownGracefully()
    }
}

struct BenchResult {
    var p50us = 0.0, p99us = 0.0, msgsPerSec = 0.0, mbPerSec = 0.0
    /// A and B reach each other directly (brothers on one agent's message queues).
    var direct = false
    var directOut: UInt64 = 0
}

/// The benchmark state machine; runs entirely on the shared event loop.
final class BenchRun: @unchecked Sendable {
    let a: Node, b: Node
    let size: Int, count: Int, rttCount: Int, window: Int
    let payload: Data
    /// A's event loop: everything but B's handler runs here. B's handler runs
    /// on B's loop (the same one unless --loops 2) and talks to A by messages only.
    let loop: EventLoop
    let promise: EventLoopPromise<BenchResult>
    var result = BenchResult()
    var samples: [UInt64] = []
    var sent = 0, credited = 0
    var streamStart: UInt64 = 0
    /// B's side (on B's loop).
    var received = 0
    static let pingType: UInt32 = 1, streamType: UInt32 = 2, creditType: UInt32 = 3

    init(a: Node, b: Node, size: Int, count: Int, rttCount: Int, window: Int) {
        self.a = a
        self.b = b
        self.size = size
        self.count = count
        self.rttCount = rttCount
        self.window = window
        payload = Data(repeating: 0x61, count: size)
        loop = a.eventLoop
        promise = loop.makePromise()
        samples.reserveCapacity(rttCount)
    }

    func start() -> EventLoopFuture<BenchResult> {
        // Batch handlers with `DataMessage`s (headers parsed once, payloads slices of what was read),
        // as an application on the data path takes them.
        try? b.eventLoop.submit { self.b.onMessages = { [unowned self] batch in for m in batch { self.onB(m) } } }.wait()
        loop.execute {
            self.a.onMessages = { [unowned self] batch in for m in batch { self.onA(m) } }
            self.probe(attempt: 0)
        }
        return promise.futureResult
    }

    /// Waits until B is reachable from A end to end.
    func probe(attempt: Int) {
        a.requestOnLoop(to: b.config.name, type: WireConstants.pingType, payload: Data(), timeout: 1, waiter: .callback { [unowned self] r in
            switch r {
            case .success:
                let aName = self.a.config.name
                self.b.eventLoop.submit { self.b.isDirectRoute(to: aName) }.hop(to: self.loop).whenSuccess { bDirect in
                    self.result.direct = bDirect && self.a.isDirectRoute(to: self.b.config.name)
                    self.ping(i: 0)
                }
            case .failure(let e):
                if attempt > 20 { self.promise.fail(e) } else {
                    self.loop.scheduleTask(in: .milliseconds(50)) { self.probe(attempt: attempt + 1) }
                }
            }
        })
    }

    func ping(i: Int) {
        let warmup = 1000
        if i == warmup + rttCount {
            samples.sort()
            result.p50us = Double(samples[samples.count / 2]) / 1000
            result.p99us = Double(samples[min(samples.count - 1, samples.count * 99 / 100)]) / 1000
            streamStart = DispatchTime.now().uptimeNanoseconds
            pump()
            return
        }
        let t0 = DispatchTime.now().uptimeNanoseconds
        // The reply as it was read (`.message`: no `Dagent_Envelope` built for it), as the C API takes it.
        a.requestOnLoop(to: b.config.name, type: Self.pingType, payload: payload, timeout: 5, waiter: .message { [unowned self] r in
            switch r {
            case .success:
                if i >= warmup { self.samples.append(DispatchTime.now().uptimeNanoseconds - t0) }
                self.ping(i: i + 1)
            case .failure(let e):
                self.promise.fail(e)
            }
        })
    }

    /// B: answers requests, counts the stream, returns credits (with the count,
    /// and at the end the time the last message arrived and B's direct sends).
    func onB(_ m: DataMessage) {
        if m.kind == .request {
            b.reply(to: m, payload: m.payload)
        } else if m.type == Self.streamType {
            received += 1
            if received % 1000 == 0 || received == count {
                var credit = (UInt64(received), received == count ? DispatchTime.now().uptimeNanoseconds : 0, b.directOut)
                try? withUnsafeBytes(of: &credit) { p throws(DAgentError) in
                    try b.sendOnLoop(to: a.config.name, type: Self.creditType, payload: p)
                }
            }
        }
    }

    func onA(_ m: DataMessage) {
        if m.type == Self.creditType && m.payload.readableBytes == 24 {
            let got = m.payload.getInteger(at: m.payload.readerIndex, endianness: .little, as: UInt64.self)!
            let end = m.payload.getInteger(at: m.payload.readerIndex + 8, endianness: .little, as: UInt64.self)!
            let bDirect = m.payload.getInteger(at: m.payload.readerIndex + 16, endianness: .little, as: UInt64.self)!
            credited = Int(got)
            if credited == count {
                let elapsed = Double(end - streamStart) / 1e9
                result.msgsPerSec = Double(count) / elapsed
                result.mbPerSec = Double(count * size) / elapsed / 1e6
                result.directOut = a.directOut + bDirect
                promise.succeed(result)
                return
            }
            pump()
        } else if m.kind == .error {
            promise.fail(DAgentError(m.error, m.reason))
        }
    }

    /// Sends while the window allows, in bursts, yielding to the loop between bursts.
    func pump() {
        var burst = 0
        while sent < count && sent - credited < window && burst < 2000 {
            do {
                try a.sendOnLoop(to: b.config.name, type: Self.streamType, payload: payload)
            } catch {
                promise.fail(error)
                return
            }
            sent += 1
            burst += 1
        }
        if burst == 2000 { loop.execute { self.pump() } }
    }
}

/// One member of an all-pairs mesh: joins as NAME, sends --count requests to
/// every peer, answers theirs, and exits once both are done.
struct Mesh: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mesh",
        abstract: "Join as NAME; send --count requests to each of --peers and answer theirs; print one JSON line of counts.",
        discussion: """
        Start one process per name (all with the same --peers list). Each waits until every
        peer is reachable (with --require-direct: until the agent's name table maps every
        peer to a brother channel, so all traffic is brother p2p), sends its requests, and
        exits 0 once every request got its reply and it answered --count requests from each
        peer. Exit 1 with the reason otherwise (--timeout).
        """
    )
    @OptionGroup var join: JoinOptions
    @Flag(help: "Print JSON (the only output of this command).") var json = false
    @Option(help: "Comma-separated names of every member (this one may be included).") var peers: String
    @Option(help: "Requests to send to each peer.") var count: Int = 10
    @Option(help: "Payload size in bytes.") var size: Int = 64
    @Option(help: "Seconds before giving up.") var timeout: Double = 60
    @Flag(help: "Wait until every peer is a direct (brother p2p) route before sending.") var requireDirect = false

    func run() throws {
        bootstrapLogging(level: join.logLevel)
        var config = try join.nodeConfig()
        let me = config.name
        let others = peers.split(separator: ",").map(String.init).filter { $0 != me && !$0.isEmpty }
        config.reconnectInitialBackoff = 0.05
        let node: Node
        do { node = try Node(config: config) } catch { fail("\(error)") }
        let state = MeshState(node: node, peers: others, count: count, payload: Data(repeating: 0x6D, count: size), requireDirect: requireDirect)
        node.onMessage = { [unowned state] e in state.onMessage(e) }
        do {
            try node.start().wait()
            try node.ready().timeoutWait(node: node, seconds: join.joinTimeout)
        } catch {
            fail("not ready: \(error)")
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let outcome: Result<Void, Error>
        do {
            outcome = .success(try state.run().timeoutWait(node: node, seconds: timeout))
        } catch {
            outcome = .failure(error)
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let tree = (try? node.treeSnapshot().wait()) ?? Dagent_TreeReply()
        let counts = (try? node.eventLoop.submit { (state.replies, state.answered, state.errors) }.wait()) ?? (0, 0, 0)
        print(String(format: "{\"name\":\"%@\",\"peers\":%d,\"sent\":%d,\"replies\":%d,\"answered\":%d,\"errors\":%d,\"direct_out\":%llu,\"direct_in\":%llu,\"elapsed_s\":%.3f}",
                     me, others.count, others.count * count, counts.0, counts.1, counts.2, tree.directOut, tree.directIn, elapsed))
        try? node.shutdown()
        if case .failure(let error) = outcome {
            fail("mesh '\(me)': \(error) (replies \(counts.0)/\(others.count * count), answered \(counts.1)/\(others.count * count), errors \(counts.2))")
        }
    }
}

/// The mesh member's state; runs on the node's event loop.
final class MeshState: @unchecked Sendable {
    let node: Node
    let peers: [String]
    let count: Int
    let payload: Data
    let requireDirect: Bool
    let promise: EventLoopPromise<Void>
    var replies = 0, answered = 0, errors = 0
    var sending = false
    var firstError: DAgentError?

    init(node: Node, peers: [String], count: Int, payload: Data, requireDirect: Bool) {
        self.node = node
        self.peers = peers
        self.count = count
        self.payload = payload
        self.requireDirect = requireDirect
        promise = node.eventLoop.makePromise()
    }

    var expected: Int { peers.count * count }

    func run() -> EventLoopFuture<Void> {
        node.eventLoop.execute { self.waitForPeers(pending: Set(self.peers)) }
        return promise.futureResult
    }

    /// Polls until every peer is reachable: in the name table (direct), or answering a probe.
    func waitForPeers(pending: Set<String>) {
        var left = pending
        if requireDirect {
            left = left.filter { !node.isDirectRoute(to: $0) }
            if left.isEmpty { return send() }
            node.eventLoop.scheduleTask(in: .milliseconds(20)) { self.waitForPeers(pending: left) }
            return
        }
        final class Round: @unchecked Sendable {
            var left: Set<String>
            var outstanding: Int
            init(_ peers: Set<String>) { left = peers; outstanding = peers.count }
        }
        let round = Round(left)
        if left.isEmpty { return send() }
        for peer in left {
            node.requestOnLoop(to: peer, type: WireConstants.pingType, payload: Data(), timeout: 1, waiter: .callback { r in
                if case .success = r { round.left.remove(peer) }
                round.outstanding -= 1
                guard round.outstanding == 0 else { return }
                if round.left.isEmpty { self.send() } else {
                    self.node.eventLoop.scheduleTask(in: .milliseconds(50)) { self.waitForPeers(pending: round.left) }
                }
            })
        }
    }

    func send() {
        sending = true
        for _ in 0..<count {
            for peer in peers {
                node.requestOnLoop(to: peer, type: 7, payload: payload, timeout: 30, waiter: .callback { r in
                    switch r {
                    case .success(let e) where e.payload == self.payload: self.replies += 1
                    case .success: self.errors += 1
                    case .failure(let e):
                        self.errors += 1
                        if self.firstError == nil { self.firstError = e }
                    }
                    self.check()
                })
            }
        }
        check()
    }

    func onMessage(_ e: Dagent_Envelope) {
        if e.kind == .request {
            node.reply(to: e, payload: e.payload)
            answered += 1
            check()
        }
    }

    func check() {
        if let e = firstError, replies + errors == expected { promise.fail(e); return }
        if sending && replies == expected && answered >= expected { promise.succeed(()) }
    }
}
