import ArgumentParser
import DAgentRoot
import DAgentWire
import Foundation
import DAgentNode
import DAgentRouting
import DAgentCLI

/// `dagent state ...`: the replicated key-value store of the root group.
struct StateCommandGroup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state",
        abstract: "Read and write the root group's replicated key-value store (served as @state).",
        discussion: """
        Every subcommand joins the tree through --via (any node: the request is routed up to the
        root group and served by, or forwarded to, its leader) and prints the answer; --json prints
        the group's JSON answer instead. Every VALUE argument may be literal text, '-' (stdin) or
        '@FILE'. Exit status 1 when the operation failed (e.g. a cas whose expectation did not hold).
        See docs/state.md.
        """,
        subcommands: [Get.self, Put.self, Del.self, Cas.self, Range.self, Txn.self, Watch.self, Lease.self, Lock.self,
                      Status.self, Member.self, Transfer.self, Backup.self, Restore.self]
    )

    /// Joins the tree through `join` (exits with the reason if it cannot).
    static func connect(_ join: JoinOptions) -> Node {
        bootstrapLogging(level: join.logLevel)
        do {
            return joinOrExit(try join.nodeConfig(), timeout: join.joinTimeout)
        } catch {
            fail("\(error)")
        }
    }

    /// Sends one request on `node` and returns the reply payload, retrying while the group
    /// answers "retry" (no leader yet) until `timeout`.
    static func request(_ node: Node, _ body: StateRequestBody, type: UInt32 = StateTypes.request, timeout: Double) -> Data {
        let payload = StateCoding.encode(StateStreamSelection.apply(body))
        var lastError = ""
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            do {
                let reply = try node.request(to: StateTypes.serviceName, type: type, payload: payload,
                                             timeout: max(0.5, deadline.timeIntervalSinceNow)).wait()
                if type == StateTypes.request, let a = try? StateCoding.decoder().decode(StateAnswer.self, from: reply.payload), a.retry == true {
                    lastError = a.error ?? "no leader"
                    usleep(100_000)
                    continue
                }
                return reply.payload
            } catch {
                fail("\(error)")
            }
        }
        fail("timeout after \(timeout)s: \(lastError)")
    }

    /// One attempt, never exiting: a transport failure becomes a `retry` answer.
    static func attempt(_ node: Node, _ body: StateRequestBody, timeout: Double) -> StateAnswer {
        do {
            let reply = try node.request(to: StateTypes.serviceName, type: StateTypes.request, payload: StateCoding.encode(StateStreamSelection.apply(body)),
                                         timeout: timeout).wait()
            return (try? StateCoding.decoder().decode(StateAnswer.self, from: reply.payload)) ?? .failure("undecodable answer")
        } catch {
            return .failure("\(error)", retry: true)
        }
    }

    /// One request from a fresh one-shot node: the answer's bytes and its decoded form.
    static func call(_ join: JoinOptions, _ body: StateRequestBody, timeout: Double) -> (Data, StateAnswer) {
        let node = connect(join)
        let payload = request(node, body, timeout: timeout)
        try? node.shutdown()
        guard let answer = try? StateCoding.decoder().decode(StateAnswer.self, from: payload) else {
            fail("the group sent an answer that is not @state JSON: \(String(decoding: payload.prefix(200), as: UTF8.self))")
        }
        return (payload, answer)
    }

    /// Prints the answer (raw JSON with --json, else `human(answer)`) and exits: status 1
    /// with the group's reason on stderr when it failed.
    static func finish(_ result: (Data, StateAnswer), json: Bool, human: (StateAnswer) -> String) -> Never {
        let (payload, answer) = result
        if json {
            FileHandle.standardOutput.write(payload + Data("\n".utf8))
        } else if answer.ok {
            let text = human(answer)
            if !text.isEmpty { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }
        }
        if !answer.ok {
            if !json { FileHandle.standardError.write(Data("dagent: \(answer.error ?? "refused")\n".utf8)) }
            Foundation.exit(1)
        }
        Foundation.exit(0)
    }

    /// A value argument: literal text, `-` for stdin, `@FILE` for a file's contents.
    static func value(_ text: String) -> String {
        let data = payloadData(text)
        guard let s = String(data: data, encoding: .utf8) else {
            fail("the value from \(text == "-" ? "stdin" : text) is not UTF-8 text (state values are text)")
        }
        return s
    }

    static func record(_ r: StateRecordJSON) -> String { "\(r.key)\t\(r.value)" }
}

/// The `--json` flag of the state commands that print data.
struct StateOutput: ParsableArguments {
    @Flag(help: "Print the group's JSON answer.") var json = false
    @Option(help: "Seconds to wait for the answer.") var timeout: Double = 5
    @Option(help: "The root group's stream to ask (a group of several streams; default: the replicas' `streams:` prefix map, else 1).")
    var stream: UInt64?

    func validate() throws {
        if let stream {
            guard stream >= 1 else { throw ValidationError("--stream must be >= 1 (got \(stream))") }
            StateStreamSelection.stream = stream
        }
    }
}

/// The `--stream` of this invocation, put into every request body that names none.
enum StateStreamSelection {
    nonisolated(unsafe) static var stream: UInt64?

    static func apply(_ body: StateRequestBody) -> StateRequestBody {
        var b = body
        if b.stream == nil { b.stream = stream }
        return b
    }
}
