import ArgumentParser
import DAgentWire
import DCNode
import Foundation
import NIOCore
import NIOPosix

/// `dagent bench`: load generators.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Load generators that measure the tree.",
        subcommands: [PingPong.self, StateBench.self, PythonBench.self]
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
        messages in flight. Both endpoints run on one event loop thread in this process.
        """
    )
    @Option(help: "Address endpoint A joins through.") var from: String
    @Option(help: "Address endpoint B joins through.") var to: String
    @Option(help: "Payload size in bytes.") var size: Int = 64
    @Option(help: "Messages in the stream.") var count: Int = 200_000
    @Option(help: "Measured round trips (after 1000 warm-up ones).") var rttCount: Int = 20_000
    @Option(help: "Stream messages in flight at most.") var window: Int = 20_000
    @Flag(help: "Print one JSON line.") var json = false
    @Option(help: "Log level.") var logLevel: String = "warning"

    func run() throws {
        bootstrapLogging(level: logLevel)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let tag = "\(getpid())"
        var configA = NodeConfig(name: "bench-a-\(tag)")
        configA.parents = try Shorthand.parseList(from)
        var configB = NodeConfig(name: "bench-b-\(tag)")
        configB.parents = try Shorthand.parseList(to)
        for c in [configA, configB] where c.maxMessageBytes < size {
            fail("--size \(size) exceeds max_message_bytes=\(c.maxMessageBytes)")
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
        if json {
            print(String(format: "{\"system\":\"dagent\",\"size\":%d,\"count\":%d,\"rtt_count\":%d,\"rtt_p50_us\":%.1f,\"rtt_p99_us\":%.1f,\"stream_msgs_per_s\":%.0f,\"stream_mb_per_s\":%.2f}",
                         size, count, rttCount, result.p50us, result.p99us, result.msgsPerSec, result.mbPerSec))
        } else {
            print(String(format: "dagent pingpong size=%dB: rtt p50 %.1f us, p99 %.1f us (%d round trips); stream %.0f msgs/s, %.2f MB/s (%d messages)",
                         size, result.p50us, result.p99us, rttCount, result.msgsPerSec, result.mbPerSec, count))
        }
        try? a.stop().wait()
        try? b.stop().wait()
        try? group.syncShutdownGracefully()
    }
}

struct BenchResult {
    var p50us = 0.0, p99us = 0.0, msgsPerSec = 0.0, mbPerSec = 0.0
}

/// The benchmark state machine; runs entirely on the shared event loop.
final class BenchRun: @unchecked Sendable {
    let a: Node, b: Node
    let size: Int, count: Int, rttCount: Int, window: Int
    let payload: Data
    let loop: EventLoop
    let promise: EventLoopPromise<BenchResult>
    var result = BenchResult()
    var samples: [UInt64] = []
    var sent = 0, received = 0, credited = 0
    var streamStart: UInt64 = 0
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
        loop.execute {
            self.b.onMessage = { [unowned self] e in self.onB(e) }
            self.a.onMessage = { [unowned self] e in self.onA(e) }
            self.probe(attempt: 0)
        }
        return promise.futureResult
    }

    /// Waits until B is reachable from A end to end.
    func probe(attempt: Int) {
        a.requestOnLoop(to: b.config.name, type: WireConstants.pingType, payload: Data(), timeout: 1, waiter: .callback { [unowned self] r in
            switch r {
            case .success: self.ping(i: 0)
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
        a.requestOnLoop(to: b.config.name, type: Self.pingType, payload: payload, timeout: 5, waiter: .callback { [unowned self] r in
            switch r {
            case .success:
                if i >= warmup { self.samples.append(DispatchTime.now().uptimeNanoseconds - t0) }
                self.ping(i: i + 1)
            case .failure(let e):
                self.promise.fail(e)
            }
        })
    }

    func onB(_ e: Dagent_Envelope) {
        if e.kind == .request {
            b.reply(to: e, payload: e.payload)
        } else if e.type == Self.streamType {
            received += 1
            if received % 1000 == 0 || received == count {
                try? b.sendOnLoop(to: a.config.name, type: Self.creditType, payload: Data())
            }
            if received == count {
                let elapsed = Double(DispatchTime.now().uptimeNanoseconds - streamStart) / 1e9
                result.msgsPerSec = Double(count) / elapsed
                result.mbPerSec = Double(count * size) / elapsed / 1e6
                promise.succeed(result)
            }
        }
    }

    func onA(_ e: Dagent_Envelope) {
        if e.type == Self.creditType {
            credited = received >= count ? count : credited + 1000
            pump()
        } else if e.kind == .error {
            promise.fail(DAgentError(e.error, e.reason))
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
