import ArgumentParser
import DAgentRoot
import Foundation
import DAgentNode
import DAgentCLI

/// `dagent state lease|lock`.
extension StateCommandGroup {
    struct Lease: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "grant TTL_MS | keepalive ID | revoke ID")
        @OptionGroup var join: JoinOptions
        @OptionGroup var out: StateOutput
        @Argument(help: "grant, keepalive or revoke") var action: String
        @Argument(help: "TTL in ms (grant) or lease id") var value: UInt64
        func run() throws {
            var b: StateRequestBody
            switch action {
            case "grant": b = StateRequestBody(op: "lease_grant"); b.ttlMs = value
            case "keepalive": b = StateRequestBody(op: "lease_keepalive"); b.id = value
            case "revoke": b = StateRequestBody(op: "lease_revoke"); b.id = value
            default: fail("lease action must be grant, keepalive or revoke (got '\(action)')")
            }
            StateCommandGroup.finish(StateCommandGroup.call(join, b, timeout: out.timeout), json: out.json) { a in
                guard let l = a.lease else { return "" }
                return action == "revoke" ? "revoked lease \(l.id); deleted \(a.deletedKeys?.count ?? 0) key(s)" : "lease \(l.id) ttl \(l.ttlMs ?? 0) ms"
            }
        }
    }

    struct Lock: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Hold lock NAME while COMMAND runs (dagent state lock NAME -- COMMAND ARGS...), or take/release it.",
            discussion: """
            With a COMMAND: grants a lease of --ttl seconds, takes the lock (waiting up to --wait
            seconds while another owner holds it), runs COMMAND with DAGENT_LOCK_TOKEN (the fencing
            token: the lock's revision, larger for every new holder) and DAGENT_LOCK_OWNER in its
            environment, renews the lease every ttl/3, and releases the lock when COMMAND exits
            (exit status: COMMAND's). If the lease is lost anyway (the group was unreachable for
            longer than the ttl), COMMAND gets SIGTERM and the exit status is 75.
            Without a COMMAND: takes the lock under --lease (or a new lease of --ttl) and prints the
            owner, lease and token; release it with --release --owner OWNER.
            Every owner is unique (this node's name and a random suffix) unless --owner is given.
            """)
        @OptionGroup var join: JoinOptions
        @OptionGroup var out: StateOutput
        @Option(help: "Owner id (default: this one-shot node's name and a random suffix).") var owner: String?
        @Option(help: "Lease that keeps the lock (default: a new lease of --ttl).") var lease: UInt64?
        @Option(help: "Lease time-to-live in seconds when the command grants its own lease.") var ttl: Double = 10
        @Option(help: "Seconds to wait for a lock held by someone else (0: fail at once).") var wait: Double = 0
        @Flag(help: "Release instead of take (needs --owner).") var release = false
        @Argument var name: String
        @Argument(parsing: .postTerminator, help: "The command to run while holding the lock (after --).") var command: [String] = []

        func run() throws {
            guard ttl >= 1 else { fail("--ttl must be at least 1 second (got \(ttl))") }
            let node = StateCommandGroup.connect(join)
            let who = owner ?? "\(node.config.name)/\(String(UInt64.random(in: 1...UInt64.max), radix: 16))"
            if release {
                guard owner != nil else { fail("--release needs --owner (the owner printed when the lock was taken)") }
                var b = StateRequestBody(op: "unlock")
                b.name = name
                b.owner = who
                StateCommandGroup.finish(Self.answer(StateCommandGroup.request(node, b, timeout: out.timeout)), json: out.json) { "released \($0.unlocked ?? name)" }
            }
            let leaseID: UInt64
            var ownLease = false
            if let lease {
                leaseID = lease
            } else {
                var g = StateRequestBody(op: "lease_grant")
                g.ttlMs = UInt64(ttl * 1000)
                let (_, a) = Self.answer(StateCommandGroup.request(node, g, timeout: out.timeout))
                guard a.ok, let id = a.lease?.id else { fail("cannot grant a lease: \(a.error ?? "no lease in the answer")") }
                leaseID = id
                ownLease = true
            }
            var b = StateRequestBody(op: "lock")
            b.name = name
            b.owner = who
            b.lease = leaseID
            let deadline = Date().addingTimeInterval(wait)
            var result = Self.answer(StateCommandGroup.request(node, b, timeout: out.timeout))
            while !result.1.ok && result.1.code == "lock_held" && Date() < deadline {
                if ownLease { _ = StateCommandGroup.request(node, Self.keepalive(leaseID), timeout: out.timeout) }
                usleep(100_000)
                result = Self.answer(StateCommandGroup.request(node, b, timeout: out.timeout))
            }
            guard result.1.ok, let token = result.1.lock?.token else {
                if ownLease { _ = StateCommandGroup.request(node, Self.revoke(leaseID), timeout: out.timeout) }
                try? node.shutdown()
                StateCommandGroup.finish(result, json: out.json) { _ in "" }
            }
            if command.isEmpty {
                try? node.shutdown()
                StateCommandGroup.finish(result, json: out.json) { _ in "locked \(name) owner \(who) lease \(leaseID) token \(token)" }
            }
            let status = Self.runHolding(node: node, command: command, lease: leaseID, owner: who, token: token, ttl: ttl, timeout: out.timeout)
            // Release: revoking our lease drops the lock; with a given lease, unlock explicitly.
            if ownLease {
                _ = StateCommandGroup.request(node, Self.revoke(leaseID), timeout: out.timeout)
            } else {
                var u = StateRequestBody(op: "unlock")
                u.name = name
                u.owner = who
                _ = StateCommandGroup.request(node, u, timeout: out.timeout)
            }
            try? node.shutdown()
            Foundation.exit(status)
        }

        static func answer(_ payload: Data) -> (Data, StateAnswer) {
            (payload, (try? StateCoding.decoder().decode(StateAnswer.self, from: payload)) ?? .failure("undecodable answer"))
        }

        static func keepalive(_ id: UInt64) -> StateRequestBody {
            var k = StateRequestBody(op: "lease_keepalive")
            k.id = id
            return k
        }

        static func revoke(_ id: UInt64) -> StateRequestBody {
            var k = StateRequestBody(op: "lease_revoke")
            k.id = id
            return k
        }

        /// Runs `command` while renewing `lease` every ttl/3; returns the exit status.
        static func runHolding(node: Node, command: [String], lease: UInt64, owner: String, token: Int64, ttl: Double, timeout: Double) -> Int32 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = command
            var env = ProcessInfo.processInfo.environment
            env["DAGENT_LOCK_TOKEN"] = String(token)
            env["DAGENT_LOCK_OWNER"] = owner
            process.environment = env
            do { try process.run() } catch { fail("cannot run \(command.joined(separator: " ")): \(error)") }
            final class Lost: @unchecked Sendable { var value = false }
            let lost = Lost()
            let renewer = Thread {
                while process.isRunning {
                    let step = ttl / 3
                    var slept = 0.0
                    while slept < step && process.isRunning { usleep(50_000); slept += 0.05 }
                    guard process.isRunning else { break }
                    let a = StateCommandGroup.attempt(node, keepalive(lease), timeout: min(timeout, ttl / 3))
                    if !a.ok && a.retry != true {
                        FileHandle.standardError.write(Data("dagent: lost the lock (lease \(lease): \(a.error ?? "refused")); stopping the command\n".utf8))
                        lost.value = true
                        process.terminate()
                        break
                    }
                }
            }
            renewer.start()
            process.waitUntilExit()
            return lost.value ? 75 : process.terminationStatus
        }
    }
}
