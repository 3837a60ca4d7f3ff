import ArgumentParser
import DAgentCLI
import DAgentNode
import Foundation
import NIOCore
import NIOPosix

/// `dagent-bench queue`: messages/s that a leaf queues while its parent is down, with the
/// durable queue log (`durable: true`, fsync'd) and without it (memory only), alternating
/// in the same run.
struct QueueBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Messages/s queued by a leaf whose parent is down: durable (fsync'd log) vs memory only.",
        discussion: """
        The leaf's parent is a closed loopback port, so every message waits in its send queue
        (the case `durable: true` protects). Two ways of sending, each with and without the log:
          one-by-one  a client thread calls `Node.send` and waits for its future before the next
                      (durable: the future completes after the message's fdatasync, so this
                      is one fsync per message);
          batched     --batch messages are sent in one event-loop turn (`sendOnLoop`), as a
                      plugin handler or a busy link does; one write and one fdatasync cover them.
        Rounds alternate memory and durable. One JSON line per (mode, durable) with --json.
        """
    )
    @Option(help: "Messages per one-by-one run.") var count: Int = 2000
    @Option(help: "Messages per batched run.") var batchedCount: Int = 50_000
    @Option(help: "Messages per event-loop turn in the batched runs.") var batch: Int = 500
    @Option(help: "Payload size in bytes.") var size: Int = 64
    @Option(help: "Rounds (each runs memory and durable).") var rounds: Int = 3
    @Option(help: "Directory for the durable logs (a temporary one by default; it must be on the disk to measure).") var dir: String?
    @Flag(help: "Print JSON lines.") var json = false

    func run() throws {
        bootstrapLogging(level: "error")
        guard count >= 1, batchedCount >= 1, batch >= 1, size >= 0, rounds >= 1 else {
            fail("--count, --batched-count, --batch and --rounds must be at least 1 (got \(count), \(batchedCount), \(batch), \(rounds))")
        }
        let base = dir ?? NSTemporaryDirectory() + "dagent-queue-bench.\(getpid())"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { if dir == nil { try? FileManager.default.removeItem(atPath: base) } }
        let closed = try closedPort()
        var results: [String: [Double]] = [:]
        let payload = Data(repeating: 0x71, count: size)
        for round in 1...rounds {
            for durable in [false, true] {
                for batched in [false, true] {
                    let data = "\(base)/r\(round)-\(durable ? "durable" : "memory")-\(batched ? "b" : "s")"
                    var config = NodeConfig(name: "queue-bench-\(getpid())")
                    config.parents = [.tcp(host: "127.0.0.1", port: closed)]
                    config.sendQueueLength = max(count, batchedCount) + 10
                    config.queueTimeout = 3600
                    config.durable = durable
                    config.dataDir = data
                    config.durableSegmentBytes = 1 << 30
                    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
                    let node = try Node(config: config, group: group)
                    try node.start().wait()
                    let n = batched ? batchedCount : count
                    let start = DispatchTime.now().uptimeNanoseconds
                    if batched {
                        try sendBatched(node, n: n, payload: payload)
                    } else {
                        for _ in 0..<n { try node.send(to: "sink", type: 1, payload: payload).wait() }
                    }
                    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                    results["\(batched ? "batched" : "one-by-one"):\(durable)", default: []].append(Double(n) / seconds)
                    try? node.shutdown()
                    try? group.syncShutdownGracefully()
                    try? FileManager.default.removeItem(atPath: data)
                }
            }
        }
        for mode in ["one-by-one", "batched"] {
            let mem = median(results["\(mode):false"]!), dur = median(results["\(mode):true"]!)
            if json {
                print(String(format: "{\"mode\":\"%@\",\"size\":%d,\"batch\":%d,\"rounds\":%d,\"memory_msgs_per_s\":%.0f,\"durable_msgs_per_s\":%.0f,\"durable_vs_memory\":%.4f}",
                             mode, size, mode == "batched" ? batch : 1, rounds, mem, dur, dur / mem))
            } else {
                print(String(format: "%@: memory %.0f msgs/s, durable %.0f msgs/s (%.3f×), %d B, medians of %d rounds",
                             mode, mem, dur, dur / mem, size, rounds))
            }
        }
    }

    /// `n` messages, `batch` per loop turn; returns once the last turn's commit ran.
    func sendBatched(_ node: Node, n: Int, payload: Data) throws {
        var left = n
        while left > 0 {
            let k = min(batch, left)
            left -= k
            // The turn's flush (and with it the durable commit) was scheduled by the first
            // send; the no-op submitted after it runs once that commit is done.
            try node.eventLoop.submit {
                for _ in 0..<k { try node.sendOnLoop(to: "sink", type: 1, payload: payload) }
            }.wait()
            try node.eventLoop.submit {}.wait()
        }
    }

    /// A loopback port that nobody listens on (bound by a NIO listener, then closed).
    func closedPort() throws -> Int {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let listener = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        guard let port = listener.localAddress?.port else { fail("cannot bind a loopback port") }
        try listener.close().wait()
        return port
    }

    func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
