import ArgumentParser
import DAgentRoot
import Foundation
import DAgentCLI

/// `dagent state get|put|del|cas|range|txn`.
extension StateCommandGroup {
    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Read one key (linearizable); prints its value.")
        @OptionGroup var join: JoinOptions
        @OptionGroup var out: StateOutput
        @Argument var key: String
        func run() throws {
            var b = StateRequestBody(op: "get")
            b.key = StateCommandGroup.value(key)
            StateCommandGroup.finish(StateCommandGroup.call(join, b, timeout: out.timeout), json: out.json) { $0.record?.value ?? "" }
        }
    }

    struct Put: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a key; prints the new revision. VALUE: text, '-' (stdin) or '@FILE'.")
        @OptionGroup var join: JoinOptions
        @OptionGroup var out: StateOutput
        @Option(help: "Attach the key to this lease.") var lease: UInt64?
        @Argument var key: String
        @Argument var value: String
        func run() throws {
            var b = StateRequestBody(op: "put")
            b.key = StateCommandGroup.value(key)
            b.value = StateCommandGroup.value(value)
            b.lease = lease
            StateCommandGroup.finish(StateCommandGroup.call(join, b, timeout: out.timeout), json: out.json) { "revision \($0.revision ?? 0)" }
        }
    }

    struct Del: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a key (or every key under --prefix); prints what was deleted.")
        @OptionGroup var join: JoinOptions
        @OptionGroup var out: StateOutput
        @Flag(help: "Treat KEY as a prefix.") var prefix = false
        @Argument var key: String
        func run() throws {
            var b = StateRequestBody(op: prefix ? "delprefix" : "del")
            if prefix { b.prefix = StateCommandGroup.value(key) } else { b.key = StateCommandGroup.value(key) }
            StateCommandGroup.finish(StateCommandGroup.call(join, b, timeout: out.timeout), json: out.json) { a in
                "deleted \(a.deleted?.count ?? 0) key(s) at revision \(a.revision ?? 0)"
            }
        }
    }

    struct Cas: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Compare-and-set: write VALUE only if the key holds --expect (or is absent with --absent, or has --mod-revision).")
        @OptionGroup var join: JoinOptions
        @OptionGroup var out: StateOutput
        @Option(help: "Expected current value (text, '-' or '@FILE').") var expect: String?
        @Option(help: "Expected mod revision.") var modRevision: Int64?
        @Flag(help: "Expect the key to be absent.") var absent = false
        @Argument var key: String
        @Argument var value: String
        func run() throws {
            var b = StateRequestBody(op: "cas")
            b.key = StateCommandGroup.value(key)
            b.value = StateCommandGroup.value(value)
            if let expect { b.expectValue = StateCommandGroup.value(expect) } else if let modRevision { b.expectMod = modRevision } else if absent { b.expectAbsent = true } else {
                fail("cas needs --expect VALUE, --mod-revision N or --absent")
            }
            StateCommandGroup.finish(StateCommandGroup.call(join, b, timeout: out.timeout), json: out.json) { "revision \($0.revision ?? 0)" }
        }
    }

    struct Range: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys under a prefix (linearizable): KEY<TAB>VALUE lines.")
        @OptionGroup var join: JoinOptions
        @OptionGroup var out: StateOutput
        @Option(help: "At most this many keys (0: all).") var limit: Int = 0
        @Argument var prefix: String
        func run() throws {
            var b = StateRequestBody(op: "range")
            b.prefix = StateCommandGroup.value(prefix)
            b.limit = limit
            StateCommandGroup.finish(StateCommandGroup.call(join, b, timeout: out.timeout), json: out.json) { a in
                ((a.records ?? []).map(StateCommandGroup.record) + (a.more == true ? ["... (more; raise --limit)"] : [])).joined(separator: "\n")
            }
        }
    }

    struct Txn: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a transaction from --file: if every compare holds, the success ops, else the failure ops (one revision).",
            discussion: """
            The file (or '-' for stdin) holds
              {"compare": [{"key":"k","value":"v"} | {"key":"k","version":3} | {"key":"k","mod_revision":5}
                           | {"key":"k","create_revision":0} | {"key":"k","exists":true} | {"key":"k","missing":true}],
               "success": [{"op":"put","key":"k","value":"v","lease":7} | {"op":"del","key":"k"}
                           | {"op":"delprefix","prefix":"p"} | {"op":"get","key":"k"} | {"op":"range","prefix":"p","limit":10}],
               "failure": [...]}
            Prints which branch ran and each op's response. Exit status 0 for either branch.
            """)
        @OptionGroup var join: JoinOptions
        @OptionGroup var out: StateOutput
        @Option(help: "Transaction JSON file, or '-' for stdin.") var file: String
        func run() throws {
            let data = payloadData(file == "-" ? "-" : "@" + file)
            var b: StateRequestBody
            do {
                b = StateRequestBody(op: "txn")
                let parts = try StateCoding.decoder().decode(TxnFile.self, from: data)
                b.compare = parts.compare ?? []
                b.success = parts.success ?? []
                b.failure = parts.failure ?? []
                _ = try StateRequest.parse(b, nowMs: 0)   // the same checks the group makes, before joining
            } catch let e as StateProtocolError {
                fail("\(file): \(e)")
            } catch {
                fail("\(file): not a transaction document (\(error)); see `dagent state txn --help`")
            }
            StateCommandGroup.finish(StateCommandGroup.call(join, b, timeout: out.timeout), json: out.json) { a in
                var lines = ["\(a.succeeded == true ? "success" : "failure") branch ran; revision \(a.revision ?? 0)"]
                for r in a.responses ?? [] {
                    switch r.op {
                    case "get": lines.append("get: " + (r.record.map(StateCommandGroup.record) ?? "(absent)"))
                    case "range": lines.append("range: \(r.records?.count ?? 0) key(s)"); lines += (r.records ?? []).map { "  " + StateCommandGroup.record($0) }
                    case "del": lines.append("del: \(r.deleted?.count ?? 0) key(s)")
                    default: lines.append(r.op)
                    }
                }
                return lines.joined(separator: "\n")
            }
        }
    }

    /// The document `dagent state txn --file` reads.
    struct TxnFile: Decodable {
        var compare: [StateCompareJSON]?
        var success: [StateOpJSON]?
        var failure: [StateOpJSON]?
    }
}
