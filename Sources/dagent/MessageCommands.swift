import ArgumentParser
import DAgentWire
import Foundation

/// `dagent send`: a one-shot node that sends one message and confirms delivery.
struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send one message to a named node through ADDR.",
        discussion: """
        The message asks the destination node for a delivery receipt, so the command exits 0
        only once the message reached the destination node, and non-zero with the reason
        (no route, timeout, ...) otherwise. --no-confirm skips the receipt.
        DATA is literal text, '-' for stdin or '@FILE'.
        """
    )
    @OptionGroup var join: JoinOptions
    @Option(help: "Destination node name.") var to: String
    @Option(help: "Message type (0...4294901759).") var type: UInt32 = 1
    @Option(help: "Seconds to wait for the delivery receipt.") var timeout: Double = 5
    @Flag(help: "Do not wait for the delivery receipt.") var noConfirm = false
    @Argument(help: "Payload.") var data: String?

    func run() throws {
        join.withJoinedNode { node in
            if !noConfirm {
                try node.sendConfirmed(to: to, type: type, payload: payloadData(data), timeout: timeout).wait()
            } else {
                try node.send(to: to, type: type, payload: payloadData(data)).wait()
                try node.waitForScheduledFlush()
            }
        }
    }
}

/// `dagent request`: a one-shot node that sends a request and prints the reply.
struct RequestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "request",
        abstract: "Send a request to a named node through ADDR and print the reply's payload.",
        discussion: "Exits non-zero with a one-line reason on no route, timeout or refusal."
    )
    @OptionGroup var join: JoinOptions
    @Option(help: "Destination node name.") var to: String
    @Option(help: "Message type.") var type: UInt32 = 1
    @Option(help: "Seconds to wait for the reply.") var timeout: Double = 5
    @Argument(help: "Payload: text, '-' for stdin or '@FILE'.") var data: String?

    func run() throws {
        join.withJoinedNode { node in
            let reply = try node.request(to: to, type: type, payload: payloadData(data), timeout: timeout).wait()
            FileHandle.standardOutput.write(reply.payload)
            if isatty(1) != 0 || reply.payload.last != UInt8(ascii: "\n") { FileHandle.standardOutput.write(Data("\n".utf8)) }
        }
    }
}

/// `dagent recv`: a named endpoint that prints what it receives.
struct RecvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recv",
        abstract: "Join as NAME through ADDR and print every message received, one per line.",
        discussion: "Lines are `SRC TYPE PAYLOAD` (or JSON with --json). Requests are answered with their own payload when --echo is given."
    )
    @OptionGroup var join: JoinOptions
    @Option(help: "Exit after this many messages.") var count: Int?
    @Option(help: "Exit (status 1) if nothing more arrives for this many seconds.") var timeout: Double?
    @Flag(help: "Answer requests with their own payload.") var echo = false
    @Flag(help: "Print JSON lines.") var json = false

    func run() throws {
        bootstrapLogging(level: join.logLevel)
        var config = try join.nodeConfig()
        config.echo = echo
        let node = joinOrExit(config, timeout: join.joinTimeout)
        let printer = LinePrinter(count: count, timeout: timeout)
        FileHandle.standardError.write(Data("dagent recv: '\(config.name)' ready\n".utf8))
        node.onMessage = { envelope in
            guard envelope.kind == .data || envelope.kind == .request else { return }
            let text = String(decoding: envelope.payload, as: UTF8.self)
            printer.print(json ? "{\"src\":\(JSONString.quoted(envelope.src)),\"type\":\(envelope.type),\"payload\":\(JSONString.quoted(text))}"
                               : "\(envelope.src) \(envelope.type) \(text)")
        }
        node.onEvent = { event in
            if case .registrationFailed(let error) = event { fail("\(error)") }
        }
        try printer.wait(node: node)
        try? node.shutdown()
    }
}

/// `dagent tree`: what the node at ADDR sees.
struct TreeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tree",
        abstract: "Show the live tree as the node at ADDR sees it: names, levels, links, queue depths.",
        discussion: """
        The query registers with the node first, like the other one-shot commands, but query-only:
        its --name is checked (and, in secret mode, the cluster secret proved) without adding it to
        the tree. Nodes answer tree queries only on registered links. Sessions are never shown.
        """
    )
    @Option(help: "Address of the node to ask (tcp://HOST:PORT, or msgq://PATH for the agent serving that path).") var via: String
    @Option(help: "Name to register the query with (default: tree-RANDOM).") var name: String?
    @Option(help: "Cluster secret, if the tree requires one (visible in ps: prefer --secret-file).") var secret: String = ""
    @Option(help: "File holding the cluster secret (mode 0600), if the tree requires one.") var secretFile: String?
    @Flag(help: "Print JSON.") var json = false
    @Option(help: "Seconds to wait for the answer.") var timeout: Double = 3
    @OptionGroup var tls: TLSOptions

    func run() throws {
        let endpoint: Endpoint
        do {
            endpoint = try Endpoint.parse(via.replacingOccurrences(of: "pull:", with: "").replacingOccurrences(of: "push:", with: ""))
        } catch { fail("\(error)") }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        do {
            let key = try secretFile.map { try SecretFile.read($0, label: "--secret-file") } ?? secret
            let reply = try TreeQuery.fetch(endpoint, timeout: timeout, name: try name ?? tls.certificateName(), secret: key, group: group,
                                            tls: try tls.contexts()).wait()
            print(json ? TreeRender.json(reply) : TreeRender.text(reply))
        } catch {
            fail("\(error)")
        }
    }
}

import NIOPosix
import DAgentNode
import DAgentRouting
import DAgentCLI
