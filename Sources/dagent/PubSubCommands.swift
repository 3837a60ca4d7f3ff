import ArgumentParser
import DAgentCLI
import DAgentNode
import DAgentRouting
import DAgentWire
import Foundation

/// `dagent pub`: a one-shot node that publishes one message on a topic.
struct PubCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pub",
        abstract: "Publish DATA on TOPIC through ADDR.",
        discussion: """
        Exits 0 once the message is handed to the tree (written to the links whose interest
        matches it). Delivery is at most once: a message nobody subscribed to stops at the first
        node that knows so, and that is not an error. A bad topic (empty token, a wildcard,
        over max_topic_bytes or max_topic_tokens) exits 1 with the rule it broke.
        DATA is literal text, '-' for stdin or '@FILE'.
        """
    )
    @OptionGroup var join: JoinOptions
    @Argument(help: "Topic: dot-separated tokens, e.g. orders.eu.created (no wildcards).") var topic: String
    @Argument(help: "Payload.") var data: String?

    func run() throws {
        bootstrapLogging(level: join.logLevel)
        do {
            try TopicRules.checkTopic(topic, limits: TopicLimits())
        } catch {
            fail("\(error.asDAgentError)")
        }
        join.withJoinedNode { node in
            try node.publish(topic, payload: payloadData(data)).wait()
            try node.waitForScheduledFlush()
        }
    }
}

/// `dagent sub`: a one-shot node that subscribes and prints what is published.
struct SubCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sub",
        abstract: "Subscribe to PATTERN(s) through ADDR and print one line per message: TOPIC PAYLOAD.",
        discussion: """
        PATTERN is a topic whose tokens may be '*' (exactly one token) or, last, '>' (one or more
        tokens): orders.*.created, orders.>. With --queue, subscribers sharing the group name split
        the messages (each goes to one of them). With --json each line is
        {"topic": ..., "data": ..., "src": ...}. Prints "dagent sub: subscribed to PATTERN" on
        stderr once the subscription is in place.
        """
    )
    @OptionGroup var join: JoinOptions
    @Option(help: "Exit 0 after this many messages.") var count: Int?
    @Option(help: "Exit 1 if nothing (more) arrives for this many seconds.") var timeout: Double?
    @Option(help: "Queue group: members share the messages.") var queue: String = ""
    @Flag(help: "Print JSON lines.") var json = false
    @Option(help: "Also subscribe to every pattern in this file (one per line; '-' for stdin).") var patternsFrom: String?
    @Argument(help: "Pattern(s), e.g. orders.*.created or orders.> (several: one subscription each).") var patterns: [String] = []

    func run() throws {
        bootstrapLogging(level: join.logLevel)
        var patterns = self.patterns
        if let file = patternsFrom {
            let text = String(decoding: payloadData(file == "-" ? "-" : "@" + file), as: UTF8.self)
            patterns += text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
        }
        if patterns.isEmpty { fail("give a PATTERN (or --patterns-from FILE)") }
        do {
            for pattern in patterns { try TopicRules.checkPattern(pattern, limits: TopicLimits()) }
            try TopicRules.checkQueue(queue)
        } catch {
            fail("\(error.asDAgentError)")
        }
        let node = joinOrExit(try join.nodeConfig(), timeout: join.joinTimeout)
        let printer = LinePrinter(count: count, timeout: timeout)
        let json = self.json
        node.onEvent = { event in
            if case .registrationFailed(let error) = event { fail("\(error)") }
        }
        do {
            let handler: (Dagent_Envelope) -> Void = { envelope in
                let text = String(decoding: envelope.payload, as: UTF8.self)
                printer.print(json ? "{\"topic\":\(JSONString.quoted(envelope.topic)),\"data\":\(JSONString.quoted(text)),\"src\":\(JSONString.quoted(envelope.src))}"
                                   : "\(envelope.topic) \(text)")
            }
            for pattern in patterns { _ = try node.subscribe(pattern, queue: queue, handler: handler).wait() }
        } catch {
            try? node.shutdown()
            fail("\(error)")
        }
        let what = patterns.count == 1 ? patterns[0] : "\(patterns.count) patterns"
        FileHandle.standardError.write(Data("dagent sub: subscribed to \(what)\(queue.isEmpty ? "" : " (queue \(queue))")\n".utf8))
        try printer.wait(node: node)
        try? node.shutdown()
    }
}
