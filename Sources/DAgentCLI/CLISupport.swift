import ArgumentParser
import DAgentWire
import Foundation
import Logging
import NIOCore
import NIOPosix
import DAgentNode
import DAgentRouting

/// Options shared by the one-shot commands that join the tree through an address.
package struct JoinOptions: ParsableArguments {
    package init() {}

    @Option(name: .long, help: "Address of the node to join through: tcp://HOST:PORT (a comma-separated list fails over), or msgq://PATH to join the local agent's message queues as a leaf.")
    package var via: String

    @Option(name: .long, help: "Name for this one-shot node (default: dagent-cli-PID).")
    package var name: String?

    @Option(name: .long, help: "Seconds to wait for the registration with --via.")
    package var joinTimeout: Double = 5

    @Option(name: .long, help: "Cluster secret, if the tree requires one (visible in ps: prefer --secret-file).")
    package var secret: String = ""

    @Option(name: .long, help: "File holding the cluster secret (mode 0600), if the tree requires one.")
    package var secretFile: String?

    @Option(name: .long, help: "Log level for this command (trace, debug, info, notice, warning, error).")
    package var logLevel: String = "warning"

    @Option(name: .long, help: "Seconds between heartbeats to the parent (heartbeat_interval).")
    package var heartbeatInterval: Double = 1.0

    @OptionGroup package var tls: TLSOptions

    package func nodeConfig(suffix: String = "") throws -> NodeConfig {
        var config = NodeConfig(name: (try name ?? tls.certificateName() ?? "dagent-cli-\(getpid())") + suffix)
        config.tls = try tls.files()
        config.parents = try Shorthand.parseList(via.hasPrefix("push:") ? String(via.dropFirst(5)) : via)
        config.secret = try resolvedSecret()
        config.heartbeatInterval = heartbeatInterval
        config.reconnectInitialBackoff = 0.05
        return config
    }
}

extension JoinOptions {
    /// The secret from --secret-file, or else --secret.
    package func resolvedSecret() throws -> String {
        guard let secretFile else { return secret }
        return try SecretFile.read(secretFile, label: "--secret-file")
    }

    /// The shape of every one-shot command: join the tree as `config` (default: from these
    /// options), run `body` on the registered node, shut down. Any error thrown by `body` shuts
    /// the node down and exits 1 with its reason.
    package func withJoinedNode<T>(_ config: NodeConfig? = nil, _ body: (Node) throws -> T) -> T {
        bootstrapLogging(level: logLevel)
        let node: Node
        do {
            node = joinOrExit(try config ?? nodeConfig(), timeout: joinTimeout)
        } catch {
            fail("\(error)")
        }
        let result: T
        do {
            result = try body(node)
        } catch {
            try? node.shutdown()
            fail("\(error)")
        }
        try? node.shutdown()
        return result
    }
}

/// The receiving end of `dagent recv` and `dagent sub`: prints one line per message (stdout
/// flushed at once), and ends after `count` messages or, with `timeout`, exits 1 once nothing
/// more arrived for that many seconds. `print` runs on the node's event loop.
package final class LinePrinter: @unchecked Sendable {
    private let count: Int?
    private let timeout: Double?
    private let done = DispatchSemaphore(value: 0)
    private var received = 0
    private var last = Date()

    package init(count: Int?, timeout: Double?) {
        self.count = count
        self.timeout = timeout
    }

    /// Prints `line` and counts it as one message received.
    package func print(_ line: String) {
        received += 1
        last = Date()
        Swift.print(line)
        fflush(stdout)
        if let count, received >= count { done.signal() }
    }

    /// Blocks until `count` messages were printed (forever without a count); with `timeout`,
    /// exits 1 with how many arrived once `node` received nothing for that long.
    package func wait(node: Node) throws {
        guard let timeout else { return done.wait() }
        while done.wait(timeout: .now() + 0.1) == .timedOut {
            let (idle, received) = try node.eventLoop.submit { (Date().timeIntervalSince(self.last), self.received) }.wait()
            if idle > timeout { fail("timeout: \(received) message(s) received, then nothing for \(timeout)s") }
        }
    }
}

extension Node {
    /// Waits until the event loop has run what is scheduled now: a send's or a publish's
    /// deferred flush has written its bytes when this returns.
    package func waitForScheduledFlush() throws {
        try eventLoop.submit {}.wait()
    }
}

/// Exits with a one-line reason on stderr.
package func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("dagent: \(message)\n".utf8))
    exit(code)
}

nonisolated(unsafe) private var loggingBootstrapped = false

/// Sends log lines at `level` and above to stderr. Only the first call takes effect
/// (swift-log may be bootstrapped once per process), so commands may call it freely.
package func bootstrapLogging(level: String) {
    guard !loggingBootstrapped else { return }
    loggingBootstrapped = true
    let parsed = Logger.Level(rawValue: level.lowercased()) ?? .info
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = parsed
        return handler
    }
}

/// Starts a one-shot node and waits until it is registered, or exits with the reason.
package func joinOrExit(_ config: NodeConfig, timeout: Double, group: EventLoopGroup? = nil) -> Node {
    let node: Node
    do {
        node = try Node(config: config, group: group)
        try node.start().wait()
    } catch {
        fail("\(error)")
    }
    do {
        try node.ready().timeoutWait(node: node, seconds: timeout)
    } catch let error as DAgentError where error.code != .timeout {
        fail("\(error)")
    } catch {
        let why = node.joinProblem().map { " (\($0))" } ?? ""
        fail("not ready: could not register '\(config.name)' through \(config.parents.map(\.description).joined(separator: ",")) within \(timeout)s\(why)")
    }
    return node
}

extension EventLoopFuture {
    /// Waits at most `seconds`; throws `DAgentError(.timeout)` after that.
    package func timeoutWait(node: Node, seconds: Double) throws -> Value {
        let promise = node.eventLoop.makePromise(of: Value.self)
        let timer = node.eventLoop.scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) {
            promise.fail(DAgentError(.timeout, "no answer within \(seconds)s"))
        }
        self.hop(to: node.eventLoop).whenComplete { result in
            timer.cancel()
            promise.completeWith(result)
        }
        return try promise.futureResult.wait()
    }
}

/// The payload argument: literal text, `-` for stdin, `@FILE` for a file.
package func payloadData(_ text: String?) -> Data {
    guard let text else { return Data() }
    if text == "-" { return FileHandle.standardInput.readDataToEndOfFile() }
    if text.hasPrefix("@") {
        guard let data = FileManager.default.contents(atPath: String(text.dropFirst())) else {
            fail("cannot read payload file '\(text.dropFirst())'")
        }
        return data
    }
    return Data(text.utf8)
}
