import ArgumentParser
import DAgentPython
import DAgentWire
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import DAgentNode
import DAgentRouting
import DAgentCLI

/// `dagent bench python`: a trivial Python handler against a native Swift
/// handler, fed the same local stream in the same run.
struct PythonBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "python",
        abstract: "Messages/s handled by a trivial Python plugin handler vs. a native Swift handler, same stream, same run.",
        discussion: """
        One process, one event loop: a receiver node R (with the embedded plugin host) listens
        on loopback, and a sender node S joins it over TCP and streams one-way messages to R.
        Native rounds: R's handler is a Swift closure that counts. Python rounds: R hands the
        messages to its plugin host, whose plugin handler is `def sink(msg): pass`. The sender
        keeps at most --window messages unhandled in both cases. Rounds alternate native and
        Python so that both see the same machine; the medians are reported.
        """
    )
    @Option(help: "Messages per round.") var count: Int = 300_000
    @Option(help: "Rounds of each kind.") var rounds: Int = 5
    @Option(help: "Payload size in bytes.") var size: Int = 64
    @Option(help: "Messages in flight (sent, not yet handled) at most.") var window: Int = 20_000
    @Option(help: "Directory holding the dagent Python package (found automatically).") var pythonPath: String?
    @Flag(help: "Print one JSON line.") var json = false
    @Option(help: "Log level.") var logLevel: String = "warning"

    func run() throws {
        bootstrapLogging(level: logLevel)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let tag = "\(getpid())"
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("dagent-bench-python-\(tag)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try """
        import dagent

        @dagent.on(\(BenchStream.streamType))
        def sink(msg):
            pass
        """.write(to: dir.appendingPathComponent("bench_sink.py"), atomically: true, encoding: .utf8)

        var rConfig = NodeConfig(name: "bench-r-\(tag)")
        rConfig.listen = [.tcp(host: "127.0.0.1", port: 0)]
        rConfig.logLevel = logLevel
        let r: Node
        let host: PluginHost
        do {
            r = try Node(config: rConfig, group: group)
            var settings = PluginSettings()
            settings.dirs = [dir.path]
            settings.handlerBudget = 30
            settings.pythonPath = pythonPath
            host = try PluginHost(node: r, settings: settings)
            try r.start().wait()
            try host.start()
        } catch {
            fail("bench setup failed: \(error)")
        }
        let port = try r.boundPorts.first!
        var sConfig = NodeConfig(name: "bench-s-\(tag)")
        sConfig.parents = [.tcp(host: "127.0.0.1", port: port)]
        let s = joinOrExit(sConfig, timeout: 10, group: group)

        let stream = BenchStream(sender: s, receiver: r, host: host, size: size, window: window)
        var native: [Double] = [], python: [Double] = []
        do {
            // warm-up of both paths (allocations, Python caches)
            _ = try stream.round(python: false, count: min(count, 50_000)).wait()
            _ = try stream.round(python: true, count: min(count, 50_000)).wait()
            for i in 1...rounds {
                native.append(try stream.round(python: false, count: count).wait())
                python.append(try stream.round(python: true, count: count).wait())
                if !json {
                    FileHandle.standardError.write(Data(String(format: "round %d/%d: native %.0f msgs/s, python %.0f msgs/s\n",
                                                               i, rounds, native.last!, python.last!).utf8))
                }
            }
        } catch {
            fail("bench failed: \(error)")
        }
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        let n = median(native), p = median(python)
        if json {
            print(String(format: "{\"system\":\"dagent\",\"bench\":\"python\",\"size\":%d,\"count\":%d,\"rounds\":%d,\"native_msgs_per_s\":%.0f,\"python_msgs_per_s\":%.0f,\"python_vs_native\":%.3f}",
                         size, count, rounds, n, p, p / n))
        } else {
            print(String(format: "dagent bench python size=%dB, %d messages x %d rounds (medians): native handler %.0f msgs/s, Python handler %.0f msgs/s = %.0f%% of native",
                         size, count, rounds, n, p, 100 * p / n))
        }
        host.stop()
        try? s.stop().wait()
        try? r.stop().wait()
        try? group.syncShutdownGracefully()
    }
}

/// One stream round: S sends `count` messages to R, at most `window` unhandled.
final class BenchStream: @unchecked Sendable {
    static let streamType: UInt32 = 2
    let s: Node, r: Node, host: PluginHost
    let payload: Data
    let window: Int
    let loop: EventLoop
    // Written by the handler side (event loop or plugin thread), read by the pump.
    private let lock = NIOLock()
    private var handled = 0
    private var lastNotified = 0
    // Event loop only.
    private var sent = 0, count = 0, base = 0, nativeHandled = 0
    private var start: UInt64 = 0
    private var promise: EventLoopPromise<Double>?

    init(sender: Node, receiver: Node, host: PluginHost, size: Int, window: Int) {
        s = sender
        r = receiver
        self.host = host
        payload = Data(repeating: 0x61, count: size)
        self.window = window
        loop = sender.eventLoop
        host.onHandled = { [unowned self] total in self.handledUpTo(Int(total)) }
    }

    /// Records progress; wakes the pump every 1000 messages (and at the end).
    private func handledUpTo(_ total: Int) {
        let notify: Bool = lock.withLock {
            handled = total
            if total - lastNotified >= 1000 || total - base >= count {
                lastNotified = total
                return true
            }
            return false
        }
        if notify { loop.execute { self.pump() } }
    }

    /// Messages/s for one round.
    func round(python: Bool, count: Int) -> EventLoopFuture<Double> {
        loop.flatSubmit {
            let promise = self.loop.makePromise(of: Double.self)
            self.promise = promise
            self.count = count
            self.sent = 0
            let already = python ? Int(self.host.handledSoFar) : self.nativeHandled
            self.lock.withLock {
                self.base = already
                self.handled = already
                self.lastNotified = already
            }
            if python {
                self.host.install()
            } else {
                // The native handler takes the same batches the plugin host does.
                self.r.onMessages = { [unowned self] batch in
                    let before = self.nativeHandled
                    for m in batch where m.type == Self.streamType { self.nativeHandled += 1 }
                    if self.nativeHandled / 1000 != before / 1000 || self.nativeHandled - self.base >= self.count {
                        self.handledUpTo(self.nativeHandled)
                    }
                }
            }
            self.start = DispatchTime.now().uptimeNanoseconds
            self.pump()
            return promise.futureResult
        }
    }

    private func pump() {
        guard let promise else { return }
        let done = lock.withLock { handled - base }
        if done >= count {
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            self.promise = nil
            promise.succeed(Double(count) / elapsed)
            return
        }
        var burst = 0
        while sent < count && sent - done < window && burst < 2000 {
            do {
                try s.sendOnLoop(to: r.config.name, type: Self.streamType, payload: payload)
            } catch {
                self.promise = nil
                promise.fail(error)
                return
            }
            sent += 1
            burst += 1
        }
        if burst == 2000 { loop.execute { self.pump() } }
    }
}
