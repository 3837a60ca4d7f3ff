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
        root group and served by, or forwarded to, its leader) and prints the JSON answer.
        Exit status 1 when the operation failed (e.g. a cas whose expectation did not hold).
        """,
        subcommands: [Get.self, Put.self, Del.self, Cas.self, Range.self, Watch.self, Lease.self, Lock.self, Status.self, Backup.self, Restore.self]
    )

    /// Sends one JSON request to @state and returns the reply payload.
    static func call(_ join: JoinOptions, _ request: [String: Any], timeout: Double) -> Data {
        bootstrapLogging(level: join.logLevel)
        let node = joinOrExit(try! join.nodeConfig(), timeout: join.joinTimeout)
        let body = try! JSONSerialization.data(withJSONObject: request)
        var lastError = ""
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            do {
                let reply = try node.request(to: StateTypes.serviceName, type: StateTypes.request, payload: body,
                                             timeout: max(0.5, deadline.timeIntervalSinceNow)).wait()
                // "retry" answers come while the group has no leader yet.
                if let obj = try? JSONSerialization.jsonObject(with: reply.payload) as? [String: Any], obj["retry"] as? Bool == true {
                    lastError = obj["error"] as? String ?? "no leader"
                    usleep(100_000)
                    continue
                }
                try? node.shutdown()
                return reply.payload
            } catch {
                fail("\(error)")
            }
        }
        fail("timeout: \(lastError)")
    }

    static func printAndExit(_ payload: Data) -> Never {
        FileHandle.standardOutput.write(payload)
        FileHandle.standardOutput.write(Data("\n".utf8))
        let obj = try? JSONSerialization.jsonObject(with: payload) as? [String: Any]
        Foundation.exit(obj?["ok"] as? Bool == false ? 1 : 0)
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Read one key (linearizable).")
        @OptionGroup var join: StateJoinOptions
        @Option(help: "Seconds to wait.") var timeout: Double = 5
        @Argument var key: String
        func run() throws { StateCommandGroup.printAndExit(StateCommandGroup.call(join, ["op": "get", "key": key], timeout: timeout)) }
    }

    struct Put: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a key.")
        @OptionGroup var join: StateJoinOptions
        @Option(help: "Seconds to wait.") var timeout: Double = 5
        @Option(help: "Attach the key to this lease.") var lease: UInt64?
        @Argument var key: String
        @Argument var value: String
        func run() throws {
            var r: [String: Any] = ["op": "put", "key": key, "value": value]
            if let lease { r["lease"] = lease }
            StateCommandGroup.printAndExit(StateCommandGroup.call(join, r, timeout: timeout))
        }
    }

    struct Del: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a key (or every key under --prefix).")
        @OptionGroup var join: StateJoinOptions
        @Option(help: "Seconds to wait.") var timeout: Double = 5
        @Flag(help: "Treat KEY as a prefix.") var prefix = false
        @Argument var key: String
        func run() throws {
            let r: [String: Any] = prefix ? ["op": "delprefix", "prefix": key] : ["op": "del", "key": key]
            StateCommandGroup.printAndExit(StateCommandGroup.call(join, r, timeout: timeout))
        }
    }

    struct Cas: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Compare-and-set: write VALUE only if the key holds --expect (or is absent with --absent, or has --mod-revision).")
        @OptionGroup var join: StateJoinOptions
        @Option(help: "Seconds to wait.") var timeout: Double = 5
        @Option(help: "Expected current value.") var expect: String?
        @Option(help: "Expected mod revision.") var modRevision: Int64?
        @Flag(help: "Expect the key to be absent.") var absent = false
        @Argument var key: String
        @Argument var value: String
        func run() throws {
            var r: [String: Any] = ["op": "cas", "key": key, "value": value]
            if let expect { r["expect_value"] = expect } else if let modRevision { r["expect_mod"] = modRevision } else if absent { r["expect_absent"] = true } else {
                fail("cas needs --expect VALUE, --mod-revision N or --absent")
            }
            StateCommandGroup.printAndExit(StateCommandGroup.call(join, r, timeout: timeout))
        }
    }

    struct Range: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys under a prefix (linearizable).")
        @OptionGroup var join: StateJoinOptions
        @Option(help: "Seconds to wait.") var timeout: Double = 5
        @Option(help: "At most this many keys (0: all).") var limit: Int = 0
        @Argument var prefix: String
        func run() throws { StateCommandGroup.printAndExit(StateCommandGroup.call(join, ["op": "range", "prefix": prefix, "limit": limit], timeout: timeout)) }
    }

    struct Lease: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "grant TTL_MS | keepalive ID | revoke ID")
        @OptionGroup var join: StateJoinOptions
        @Option(help: "Seconds to wait.") var timeout: Double = 5
        @Argument(help: "grant, keepalive or revoke") var action: String
        @Argument(help: "TTL in ms (grant) or lease id") var value: UInt64
        func run() throws {
            let r: [String: Any]
            switch action {
            case "grant": r = ["op": "lease_grant", "ttl_ms": value]
            case "keepalive": r = ["op": "lease_keepalive", "id": value]
            case "revoke": r = ["op": "lease_revoke", "id": value]
            default: fail("lease action must be grant, keepalive or revoke")
            }
            StateCommandGroup.printAndExit(StateCommandGroup.call(join, r, timeout: timeout))
        }
    }

    struct Lock: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take (or with --release, release) lock NAME for --owner, kept alive by --lease.")
        @OptionGroup var join: StateJoinOptions
        @Option(help: "Seconds to wait.") var timeout: Double = 5
        @Option(help: "Owner name (default: this one-shot node's name).") var owner: String?
        @Option(help: "Lease that keeps the lock (grant one with `dagent state lease grant`).") var lease: UInt64 = 0
        @Flag(help: "Release instead of take.") var release = false
        @Argument var name: String
        func run() throws {
            let who = owner ?? "dagent-cli"
            let r: [String: Any] = release ? ["op": "unlock", "name": name, "owner": who] : ["op": "lock", "name": name, "owner": who, "lease": lease]
            StateCommandGroup.printAndExit(StateCommandGroup.call(join, r, timeout: timeout))
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Leader, term, commit index and members, as the serving replica sees them.")
        @OptionGroup var join: StateJoinOptions
        @Option(help: "Seconds to wait.") var timeout: Double = 5
        func run() throws { StateCommandGroup.printAndExit(StateCommandGroup.call(join, ["op": "status"], timeout: timeout)) }
    }

    struct Backup: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a consistent snapshot of the store to --out (taken through ReadIndex; the group keeps running).")
        @OptionGroup var join: JoinOptions
        @Option(help: "Seconds to wait.") var timeout: Double = 10
        @Option(help: "Output file.") var out: String
        func run() throws {
            let data = StateCommandGroup.call(join, ["op": "backup"], timeout: timeout)
            do { try AtomicFile.write(data, to: out) } catch { fail("cannot write \(out): \(error)") }
            FileHandle.standardError.write(Data("dagent: wrote \(data.count) bytes to \(out)\n".utf8))
        }
    }

    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Seed an empty replica data directory from a backup (run it for every member of the new group, then start them).",
            discussion: "dagent state restore --from backup.bin --raft cluster.json --node-id 1 --data /var/lib/dagent/r1")
        @Option(help: "Backup file written by `dagent state backup`.") var from: String
        @Option(help: "Cluster JSON of the new group.") var raft: String
        @Option(help: "This member's node_id.") var nodeId: UInt64
        @Option(help: "Empty data directory of this member.") var data: String
        func run() throws {
            guard let backup = FileManager.default.contents(atPath: from) else { fail("cannot read backup '\(from)'") }
            do {
                let setup = try RaftGroupSetup.load(jsonPath: raft, nodeID: nodeId, dataDir: data)
                let n = try setup.restore(from: backup)
                FileHandle.standardError.write(Data("dagent: restored \(n) bytes into \(setup.dataDir) (node \(nodeId)); start it with dagent run --raft\n".utf8))
            } catch {
                fail("restore failed: \(error)")
            }
        }
    }

    struct Watch: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print every change under PREFIX as JSON lines, from --from (default: now). Resumes after reconnects from the last revision seen.")
        @OptionGroup var join: StateJoinOptions
        @Option(help: "First revision to deliver (0: only new changes).") var from: Int64 = 0
        @Option(help: "Exit after this many events.") var count: Int?
        @Argument var prefix: String
        func run() throws {
            bootstrapLogging(level: join.logLevel)
            let node = joinOrExit(try join.nodeConfig(), timeout: join.joinTimeout)
            let done = DispatchSemaphore(value: 0)
            var seen = 0
            /// The revision to resume from after a reconnect (read on another thread).
            final class Resume: @unchecked Sendable {
                let lock = NSLock()
                var next: Int64
                init(_ v: Int64) { next = v }
                var value: Int64 { get { lock.withLock { next } } set { lock.withLock { next = newValue } } }
            }
            let resume = Resume(from)
            node.onMessage = { e in
                guard e.type == StateTypes.watchEvent, let obj = try? JSONSerialization.jsonObject(with: e.payload) as? [String: Any] else { return }
                if let n = (obj["next_revision"] as? NSNumber)?.int64Value { resume.value = n }
                for event in obj["events"] as? [[String: Any]] ?? [] {
                    if let d = try? JSONSerialization.data(withJSONObject: event, options: [.sortedKeys]) {
                        FileHandle.standardOutput.write(d + Data("\n".utf8))
                    }
                    seen += 1
                    if let count, seen >= count { done.signal() }
                }
                if obj["compacted"] != nil { fail("watch fell behind compaction at revision \(obj["compacted"]!); restart from a newer revision") }
            }
            let prefix = self.prefix
            let subscribe: @Sendable () -> Void = {
                let body = try! JSONSerialization.data(withJSONObject: ["op": "watch", "prefix": prefix, "from": resume.value, "id": 1] as [String: Any])
                _ = try? node.request(to: StateTypes.serviceName, type: StateTypes.request, payload: body, timeout: 5).wait()
            }
            // Resubscribe (from the last revision seen) only after a failover:
            // the first registration already happened inside joinOrExit.
            final class Flag: @unchecked Sendable { var lost = false }
            let flag = Flag()
            node.onEvent = { event in
                switch event {
                case .parentLost: flag.lost = true
                case .registered where flag.lost:
                    flag.lost = false
                    DispatchQueue.global().async { subscribe() }
                default: break
                }
            }
            subscribe()
            done.wait()
            try? node.shutdown()
        }
    }
}
