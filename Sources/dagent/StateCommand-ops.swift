import ArgumentParser
import DAgentRoot
import DAgentRaftStorage
import Foundation
import DAgentNode
import DAgentCLI

/// `dagent state status|member|transfer|backup|restore`: operating a running group.
extension StateCommandGroup {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Leader, term, commit index and members, as the serving replica sees them.")
        @OptionGroup var join: JoinOptions
        @OptionGroup var out: StateOutput
        func run() throws {
            StateCommandGroup.finish(StateCommandGroup.call(join, StateRequestBody(op: "status"), timeout: out.timeout), json: out.json) { a in
                """
                replica \(a.nodeId ?? 0) (\(a.name ?? "?")), stream \(a.stream ?? 1): \(a.role ?? "?"), leader \(a.leader ?? 0), term \(a.term ?? 0)
                commit \(a.commit ?? 0), applied \(a.applied ?? 0), revision \(a.revision ?? 0), snapshot index \(a.snapshotIndex ?? 0)
                members \((a.members ?? []).map(String.init).joined(separator: ",")), peers connected \((a.peersConnected ?? []).map(String.init).joined(separator: ","))
                """
            }
        }
    }

    struct Member: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "list | add NODE_ID tcp://HOST:PORT | remove NODE_ID (one member at a time; send to the leader's tree).",
            discussion: """
            Adding: start the new replica first with `dagent run --raft NEW.json --node-id N --data DIR --join`,
            where NEW.json lists the group's current members and the new member's own entry; then
            `dagent state member add N tcp://HOST:PORT --via ...`. It catches up from the leader (by
            snapshot if the log was compacted) and votes once the change commits.
            Removing the leader is refused: move leadership first with `dagent state transfer --to`.
            """)
        @OptionGroup var join: JoinOptions
        @OptionGroup var out: StateOutput
        @Argument(help: "list, add or remove") var action: String
        @Argument(help: "Node id (add, remove).") var node: UInt64?
        @Argument(help: "The new member's address, tcp://HOST:PORT (add).") var address: String?
        func run() throws {
            var b: StateRequestBody
            switch action {
            case "list": b = StateRequestBody(op: "member_list")
            case "add":
                guard let node, let address else { fail("member add needs NODE_ID and tcp://HOST:PORT") }
                b = StateRequestBody(op: "member_add")
                b.node = node
                b.address = address
            case "remove":
                guard let node else { fail("member remove needs NODE_ID") }
                b = StateRequestBody(op: "member_remove")
                b.node = node
            default: fail("member action must be list, add or remove (got '\(action)')")
            }
            StateCommandGroup.finish(StateCommandGroup.call(join, b, timeout: out.timeout), json: out.json) { a in
                (a.memberList ?? []).map { m in
                    "\(m.node)\t\(m.address)\t\(m.node == a.leader ? "leader" : "voter")" + (m.connected == false ? "\tdisconnected" : "")
                }.joined(separator: "\n")
            }
        }
    }

    struct Transfer: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Move leadership to replica --to (waits until it leads).")
        @OptionGroup var join: JoinOptions
        @OptionGroup var out: StateOutput
        @Option(help: "The replica (node id) that should lead.") var to: UInt64
        func run() throws {
            var b = StateRequestBody(op: "transfer")
            b.node = to
            StateCommandGroup.finish(StateCommandGroup.call(join, b, timeout: out.timeout), json: out.json) { "leader \($0.leader ?? 0), term \($0.term ?? 0)" }
        }
    }

    struct Backup: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a consistent snapshot of the store to --out, in chunks, with progress, and verify its checksum (the group keeps running).")
        @OptionGroup var join: JoinOptions
        @Option(help: "Seconds to wait for each answer.") var timeout: Double = 30
        @Option(help: "Output file.") var out: String
        @Flag(help: "Print a JSON summary.") var json = false
        @Flag(help: "No progress lines on stderr.") var quiet = false
        func run() throws {
            let node = StateCommandGroup.connect(join)
            let (_, begin) = Lock.answer(StateCommandGroup.request(node, StateRequestBody(op: "backup"), timeout: timeout))
            guard begin.ok, let info = begin.backup else { fail("backup refused: \(begin.error ?? "no backup in the answer")") }
            var bytes = [UInt8]()
            bytes.reserveCapacity(Int(info.size))
            let started = Date()
            var lastReport = Date.distantPast
            while UInt64(bytes.count) < info.size {
                var b = StateRequestBody(op: "backup_chunk")
                b.backup = info.id
                b.offset = UInt64(bytes.count)
                let chunk = StateCommandGroup.request(node, b, type: StateTypes.backupChunk, timeout: timeout)
                if chunk.first == UInt8(ascii: "{"), let a = try? StateCoding.decoder().decode(StateAnswer.self, from: chunk), !a.ok {
                    fail("backup failed at byte \(bytes.count) of \(info.size): \(a.error ?? "refused")")
                }
                guard !chunk.isEmpty, UInt64(bytes.count + chunk.count) <= info.size else {
                    fail("backup failed at byte \(bytes.count) of \(info.size): the replica sent \(chunk.count) bytes")
                }
                bytes.append(contentsOf: chunk)
                if !quiet && (Date().timeIntervalSince(lastReport) > 0.5 || UInt64(bytes.count) == info.size) {
                    lastReport = Date()
                    let pct = info.size == 0 ? 100 : Double(bytes.count) * 100 / Double(info.size)
                    FileHandle.standardError.write(Data(String(format: "dagent: backup %d of %d bytes (%.0f%%)\n", bytes.count, info.size, pct).utf8))
                }
            }
            var done = StateRequestBody(op: "backup_chunk")
            done.backup = info.id
            done.offset = info.size
            _ = StateCommandGroup.request(node, done, type: StateTypes.backupChunk, timeout: timeout)   // releases the image
            try? node.shutdown()
            let sum = RootReplica.checksum(bytes)
            guard sum == info.checksum else { fail("backup checksum mismatch: got \(sum), the replica announced \(info.checksum); nothing written") }
            do { try AtomicFile.write(Data(bytes), to: out) } catch { fail("cannot write \(out): \(error)") }
            let seconds = Date().timeIntervalSince(started)
            if json {
                print("{\"bytes\":\(bytes.count),\"checksum\":\"\(sum)\",\"revision\":\(info.revision),\"index\":\(info.index),\"seconds\":\(String(format: "%.3f", seconds)),\"out\":\"\(out)\"}")
            } else {
                FileHandle.standardError.write(Data("dagent: wrote \(bytes.count) bytes to \(out) (revision \(info.revision), \(sum) verified, \(String(format: "%.1f", seconds)) s)\n".utf8))
            }
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
        static let configuration = CommandConfiguration(abstract: "Print every change under PREFIX, from --from (default: now). Resumes after reconnects from the last revision seen.")
        @OptionGroup var join: JoinOptions
        @Option(help: "First revision to deliver (0: only new changes).") var from: Int64 = 0
        @Option(help: "Exit after this many events.") var count: Int?
        @Flag(help: "Print each event as a JSON line.") var json = false
        @Argument var prefix: String
        func run() throws {
            let node = StateCommandGroup.connect(join)
            let done = DispatchSemaphore(value: 0)
            /// The revision to resume from after a reconnect, and the events seen (other threads).
            final class Progress: @unchecked Sendable {
                let lock = NSLock()
                var next: Int64
                var seen = 0
                var lost = false
                init(_ v: Int64) { next = v }
            }
            let progress = Progress(from)
            let json = self.json, count = self.count
            node.onMessage = { e in
                guard e.type == StateTypes.watchEvent, let w = try? StateCoding.decoder().decode(StateWatchEvent.self, from: e.payload) else { return }
                if let compacted = w.compacted {
                    fail("watch fell behind compaction at revision \(compacted); the oldest revision still available is \(w.oldest ?? compacted + 1): re-read, then watch --from a newer revision")
                }
                let encoder = StateCoding.encoder()
                for event in w.events ?? [] {
                    if json, let d = try? encoder.encode(event) {
                        FileHandle.standardOutput.write(d + Data("\n".utf8))
                    } else if !json {
                        let line = event.type == "put" ? "PUT \(event.key) = \(event.value) (revision \(event.revision))" : "DELETE \(event.key) (revision \(event.revision))"
                        FileHandle.standardOutput.write(Data((line + "\n").utf8))
                    }
                    progress.lock.withLock { progress.seen += 1 }
                    if let count, progress.lock.withLock({ progress.seen }) >= count { done.signal() }
                }
                if let n = w.nextRevision { progress.lock.withLock { progress.next = n } }
            }
            let prefix = self.prefix
            let subscribe: @Sendable () -> Void = {
                var b = StateRequestBody(op: "watch")
                b.prefix = prefix
                b.from = progress.lock.withLock { progress.next }
                b.id = 1
                _ = StateCommandGroup.attempt(node, b, timeout: 5)
            }
            // Resubscribe (from the last revision seen) only after a failover:
            // the first registration already happened inside joinOrExit.
            node.onEvent = { event in
                switch event {
                case .parentLost: progress.lock.withLock { progress.lost = true }
                case .registered where progress.lock.withLock({ progress.lost }):
                    progress.lock.withLock { progress.lost = false }
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
