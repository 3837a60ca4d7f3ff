@testable import DAgentRaft
import Foundation
@testable import DAgentRaftStorage
import DAgentTestSupport

/// Interprets the scenario language of `testdata/*.txt`. One command per line, `#` starts
/// a comment. Node ids are numbers. Commands:
///
/// Cluster setup
///   nodes N [prevote=on|off] [checkquorum=on|off] [maxbytes=B] [inflight=K]
///           [election=T] [heartbeat=T] [autocompact=K]
///                              fresh cluster of founding members 1...N (replaces any previous)
///   add-node ID                start an empty process that can join via `conf`
///   election-timeout ID T      fix node ID's election timeout (default electionTick+ID-1)
/// Time and network
///   campaign ID                start an election on ID now
///   tick ID [N]                tick one node N times (messages are queued, not delivered)
///   tick-all [N]               N rounds of: tick every live node, then deliver until quiet
///   deliver [ROUNDS]           deliver queued messages until quiet, or ROUNDS rounds
///   partition A B | C D ...    only nodes in the same group can talk
///   isolate ID                 cut ID from everybody
///   cut A B                    cut the link A<->B
///   drop A->B                  cut the link A->B only
///   heal                       remove all cuts
///   crash ID / restart ID      crash drops volatile state and ID's queued messages
///   reset-counters             reset delivered-message counters
/// Client operations
///   propose ID VALUE           propose on ID (must not throw)
///   conf ID add|remove NODE    membership change proposed on ID (must not throw)
///   read-index ID CTX          ReadIndex on ID (must not throw)
///   transfer ID TARGET         leadership transfer requested on ID
///   compact ID                 compact ID's log up to its applied index
/// Expectations
///   expect leader ID term T    ID is leader in term T
///   expect role ID ROLE        follower|precandidate|candidate|leader
///   expect term-above ID T   ID's term is greater than T
///   expect term ID T / expect lead ID L / expect commit ID N / expect applied ID N
///   expect last-index ID N / expect first-index ID N / expect entry ID INDEX TERM
///   expect values ID V...      exact applied values ("-" for none)
///   expect has-value ID V / expect no-value ID V
///   expect read ID CTX INDEX / expect no-read ID CTX
///   expect voters ID A B ...   ID's membership
///   expect propose-error ID V / expect read-error ID CTX / expect conf-error ID add|remove NODE
///   expect delivered TYPE OP N message counter (TYPE as in MessageType.description,
///                              `-reject` suffix for rejections; OP is ==, >=, <=)
///   expect max-term T          no live node has a term above T
final class ScenarioRunner {
    let name: String
    private(set) var cluster = ScenarioCluster()

    init(name: String) { self.name = name }

    static func run(file url: URL) throws {
        let text = try String(contentsOf: url, encoding: .utf8)
        let runner = ScenarioRunner(name: url.lastPathComponent)
        try runner.run(text)
    }

    func run(_ text: String) throws {
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = String(raw)
            if let hash = line.firstIndex(of: "#") { line = String(line[..<hash]) }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if words.isEmpty { continue }
            do {
                try exec(words)
            } catch {
                let recent = cluster.trace.suffix(15).joined(separator: "\n    ")
                throw ScenarioFailure("\(name):\(i + 1): `\(words.joined(separator: " "))`: \(error)\n  \(statusLines())\n  recent messages:\n    \(recent)")
            }
        }
    }

    private func statusLines() -> String {
        cluster.ids.map { id -> String in
            guard let r = cluster.procs[id]?.raft else { return "\(id): down" }
            return "\(id): \(r.role) t\(r.term) lead=\(r.leader) commit=\(r.commitIndex) applied=\(r.appliedIndex) last=\(r.lastIndex) voters=\(r.membership)"
        }.joined(separator: "\n  ")
    }

    // MARK: Parsing helpers

    private func num(_ s: String) throws -> UInt64 {
        guard let v = UInt64(s) else { throw ScenarioFailure("expected a number, got '\(s)'") }
        return v
    }

    private func arg(_ w: [String], _ i: Int) throws -> String {
        guard i < w.count else { throw ScenarioFailure("missing argument \(i)") }
        return w[i]
    }

    private func id(_ w: [String], _ i: Int) throws -> NodeID { try num(arg(w, i)) }

    private func check(_ ok: Bool, _ msg: @autoclosure () -> String) throws {
        if !ok { throw ScenarioFailure("expectation failed: " + msg()) }
    }

    // MARK: Commands

    private func exec(_ w: [String]) throws {
        let c = cluster
        switch w[0] {
        case "nodes", "add-nodes":
            cluster = ScenarioCluster()
            try configure(cluster, options: Array(w.dropFirst(2)))
            try cluster.bootstrap(count: Int(try num(arg(w, 1))))
        case "add-node":
            try c.addProcess(id: try id(w, 1))
        case "election-timeout":
            let n = try id(w, 1)
            c.timeouts[n] = Int(try num(arg(w, 2)))
            try c.raft(n).setElectionTimeoutForTesting(c.timeouts[n]!)
        case "campaign":
            try c.raft(try id(w, 1)).campaign()
            try c.process(try id(w, 1))
        case "tick":
            let n = try id(w, 1)
            let times = w.count > 2 ? try num(w[2]) : 1
            for _ in 0..<times { try c.tick(n) }
        case "tick-all":
            let times = w.count > 1 ? try num(w[1]) : 1
            for _ in 0..<times {
                for n in c.ids where c.procs[n]!.isUp { try c.tick(n) }
                try c.deliverAll()
            }
        case "deliver":
            if w.count > 1 {
                for _ in 0..<(try num(w[1])) { try c.deliverRound() }
            } else {
                try c.deliverAll()
            }
        case "partition":
            var groups: [[NodeID]] = [[]]
            for word in w.dropFirst() {
                if word == "|" { groups.append([]) } else { groups[groups.count - 1].append(try num(word)) }
            }
            c.blocked = []
            for (gi, g) in groups.enumerated() {
                for (hi, h) in groups.enumerated() where gi != hi {
                    for a in g { for b in h { c.blocked.insert(Link(from: a, to: b)) } }
                }
            }
        case "isolate":
            let x = try id(w, 1)
            for o in c.ids where o != x {
                c.blocked.insert(Link(from: x, to: o))
                c.blocked.insert(Link(from: o, to: x))
            }
        case "cut":
            let a = try id(w, 1), b = try id(w, 2)
            c.blocked.insert(Link(from: a, to: b))
            c.blocked.insert(Link(from: b, to: a))
        case "drop":
            let parts = try arg(w, 1).components(separatedBy: "->")
            guard parts.count == 2 else { throw ScenarioFailure("use drop A->B") }
            c.blocked.insert(Link(from: try num(parts[0]), to: try num(parts[1])))
        case "heal":
            c.blocked = []
        case "crash":
            try c.crash(try id(w, 1))
        case "restart":
            try c.start(try id(w, 1))
        case "reset-counters":
            c.resetCounters()
        case "propose":
            let n = try id(w, 1)
            try c.raft(n).propose(Array(try arg(w, 2).utf8))
            try c.process(n)
        case "conf":
            let n = try id(w, 1)
            try c.raft(n).proposeConfChange(try confChange(w, 2))
            try c.process(n)
        case "read-index":
            let n = try id(w, 1)
            try c.raft(n).readIndex(context: Array(try arg(w, 2).utf8))
            try c.process(n)
        case "transfer":
            let n = try id(w, 1)
            try c.raft(n).transferLeadership(to: try id(w, 2))
            try c.process(n)
        case "compact":
            try c.proc(try id(w, 1)).compactNow()
        case "expect":
            try expect(Array(w.dropFirst()))
        default:
            throw ScenarioFailure("unknown command \(w[0])")
        }
    }

    private func configure(_ c: ScenarioCluster, options: [String]) throws {
        for opt in options {
            let kv = opt.split(separator: "=").map(String.init)
            guard kv.count == 2 else { throw ScenarioFailure("bad option \(opt)") }
            let on = kv[1] == "on"
            switch kv[0] {
            case "prevote": c.template.preVote = on
            case "checkquorum": c.template.checkQuorum = on
            case "maxbytes": c.template.maxSizePerMsg = try num(kv[1])
            case "inflight": c.template.maxInflightMsgs = Int(try num(kv[1]))
            case "election": c.template.electionTick = Int(try num(kv[1]))
            case "heartbeat": c.template.heartbeatTick = Int(try num(kv[1]))
            case "autocompact": c.autoCompact = try num(kv[1])
            default: throw ScenarioFailure("unknown option \(kv[0])")
            }
        }
    }

    private func confChange(_ w: [String], _ i: Int) throws -> ConfChange {
        let node = try id(w, i + 1)
        switch try arg(w, i) {
        case "add": return ConfChange(type: .addNode, nodeID: node)
        case "remove": return ConfChange(type: .removeNode, nodeID: node)
        default: throw ScenarioFailure("conf type must be add or remove")
        }
    }

    private func expect(_ w: [String]) throws {
        let c = cluster
        guard let what = w.first else { throw ScenarioFailure("expect what?") }
        switch what {
        case "leader":
            let r = try c.raft(try id(w, 1))
            try check(w.count == 4 && w[2] == "term", "syntax: expect leader ID term T")
            let t = try num(w[3])
            try check(r.role == .leader && r.term == t, "node \(r.id) is \(r.role) in term \(r.term), want leader in term \(t)")
        case "role":
            let r = try c.raft(try id(w, 1))
            let want = try arg(w, 2)
            try check(r.role.description == want, "node \(r.id) role is \(r.role), want \(want)")
        case "term":
            let r = try c.raft(try id(w, 1))
            let t = try num(arg(w, 2))
            try check(r.term == t, "node \(r.id) term is \(r.term), want \(t)")
        case "term-above":
            let r = try c.raft(try id(w, 1))
            let t = try num(arg(w, 2))
            try check(r.term > t, "node \(r.id) term is \(r.term), want > \(t)")
        case "lead":
            let r = try c.raft(try id(w, 1))
            let l = try num(arg(w, 2))
            try check(r.leader == l, "node \(r.id) follows \(r.leader), want \(l)")
        case "commit":
            let r = try c.raft(try id(w, 1))
            let n = try num(arg(w, 2))
            try check(r.commitIndex == n, "node \(r.id) commit is \(r.commitIndex), want \(n)")
        case "applied":
            let r = try c.raft(try id(w, 1))
            let n = try num(arg(w, 2))
            try check(r.appliedIndex == n, "node \(r.id) applied is \(r.appliedIndex), want \(n)")
        case "last-index":
            let r = try c.raft(try id(w, 1))
            let n = try num(arg(w, 2))
            try check(r.lastIndex == n, "node \(r.id) last index is \(r.lastIndex), want \(n)")
        case "first-index":
            let r = try c.raft(try id(w, 1))
            let n = try num(arg(w, 2))
            try check(r.firstIndex == n, "node \(r.id) first index is \(r.firstIndex), want \(n)")
        case "entry":
            let r = try c.raft(try id(w, 1))
            let idx = try num(arg(w, 2)), t = try num(arg(w, 3))
            let got = r.logTerm(at: idx)
            try check(got == t, "node \(r.id) entry \(idx) has term \(got.map(String.init) ?? "none"), want \(t)")
        case "values":
            let p = try c.proc(try id(w, 1))
            let want = w.count == 3 && w[2] == "-" ? [] : Array(w.dropFirst(2))
            try check(p.sm.values == want, "node \(p.id) applied values \(p.sm.values), want \(want)")
        case "has-value", "no-value":
            let p = try c.proc(try id(w, 1))
            let v = try arg(w, 2)
            let has = p.sm.values.contains(v)
            try check(has == (what == "has-value"), "node \(p.id) values \(p.sm.values) \(has ? "contain" : "lack") \(v)")
        case "read":
            let p = try c.proc(try id(w, 1))
            let ctx = Array(try arg(w, 2).utf8), idx = try num(arg(w, 3))
            let found = p.readStates.filter { $0.context == ctx }
            try check(found.map(\.index) == [idx], "node \(p.id) read states for \(w[2]): \(found.map(\.index)), want [\(idx)]")
        case "no-read":
            let p = try c.proc(try id(w, 1))
            let ctx = Array(try arg(w, 2).utf8)
            let found = p.readStates.filter { $0.context == ctx }
            try check(found.isEmpty, "node \(p.id) unexpectedly has read state \(found)")
        case "voters":
            let r = try c.raft(try id(w, 1))
            let want = try w.dropFirst(2).map { try num($0) }
            try check(r.membership.voters == want.sorted(), "node \(r.id) voters \(r.membership.voters), want \(want)")
        case "propose-error":
            let n = try id(w, 1)
            do {
                try c.raft(n).propose(Array(try arg(w, 2).utf8))
                try c.process(n)
                throw ScenarioFailure("expectation failed: proposal on \(n) was accepted")
            } catch let e as RaftError {
                _ = e
            }
        case "read-error":
            let n = try id(w, 1)
            do {
                try c.raft(n).readIndex(context: Array(try arg(w, 2).utf8))
                try c.process(n)
                throw ScenarioFailure("expectation failed: read index on \(n) was accepted")
            } catch let e as RaftError {
                _ = e
            }
        case "conf-error":
            let n = try id(w, 1)
            do {
                try c.raft(n).proposeConfChange(try confChange(w, 2))
                try c.process(n)
                throw ScenarioFailure("expectation failed: conf change on \(n) was accepted")
            } catch let e as RaftError {
                _ = e
            }
        case "delivered":
            let key = try arg(w, 1), op = try arg(w, 2), n = Int(try num(arg(w, 3)))
            let got = c.counter(key)
            let ok: Bool
            switch op {
            case "==": ok = got == n
            case ">=": ok = got >= n
            case "<=": ok = got <= n
            default: throw ScenarioFailure("operator must be ==, >= or <=")
            }
            try check(ok, "delivered \(key) = \(got), want \(op) \(n)")
        case "max-term":
            let t = try num(arg(w, 1))
            for n in c.ids {
                if let r = c.procs[n]?.raft { try check(r.term <= t, "node \(n) has term \(r.term) > \(t)") }
            }
        default:
            throw ScenarioFailure("unknown expectation \(what)")
        }
    }
}
