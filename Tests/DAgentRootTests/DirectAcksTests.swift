import DAgentNode
import DAgentRaft
import DAgentRaftStorage
import DAgentTestSupport
import DAgentWire
import Foundation
import XCTest
@testable import DAgentRoot

/// A follower's acks leave from its storage thread, right after the fsync (`DirectSends`):
/// three replicas in this process, each on its own node, event loop and data directory,
/// under concurrent puts, with the followers' peer links to the leader killed again and
/// again mid-stream. Every put is answered, every replica applies every entry, and the
/// followers' direct-write counters show the acks went the storage thread's way (and stay
/// at zero with the direct path turned off).
final class DirectAcksTests: TempDirTestCase {
    struct Group {
        var nodes: [Node] = []
        var replicas: [RootReplica] = []
        var ports: [Int] = []
        /// Index of the replica that leads (whoever won the first election).
        var leader = 0

        func onLoop<T>(_ i: Int, _ body: @escaping () -> T) throws -> T {
            try nodes[i].eventLoop.submit { body() }.wait()
        }
    }

    func startGroup(directAcks: Bool) throws -> Group {
        var g = Group()
        g.ports = (0..<3).map { _ in freePort() }
        let members = (0..<3).map {
            GroupMember(nodeID: UInt64($0 + 1), endpoint: .tcp(host: "127.0.0.1", port: g.ports[$0]), preferredLeader: $0 == 0)
        }
        for i in 0..<3 {
            var options = DiskStorageOptions()
            options.preallocateBytes = 1 << 20
            let storage = try DiskStorage(directory: tmp + "/r\(i + 1)", bootstrapVoters: [1, 2, 3], options: options)
            var c = NodeConfig(name: "r\(i + 1)")
            c.listen = [.tcp(host: "127.0.0.1", port: g.ports[i])]
            let node = try Node(config: c)
            let replica = RootReplica(node: node, selfID: UInt64(i + 1), streamID: 1, members: members, storage: storage)
            replica.options.directAcks = directAcks
            replica.attach()
            try node.start().wait()
            g.nodes.append(node)
            g.replicas.append(replica)
        }
        for r in g.replicas { try r.start().wait() }
        let group = g
        func leading() -> Int? {
            guard let l = (0..<3).first(where: { i in (try? group.onLoop(i) { group.replicas[i].raft.role == .leader }) == true }),
                  (try? group.onLoop(l) { group.replicas[l].peers.count == 2 }) == true,
                  (0..<3).allSatisfy({ i in i == l || (try? group.onLoop(i) { group.replicas[i].peers[UInt64(l + 1)] != nil }) == true })
            else { return nil }
            return l
        }
        waitFor("a leader with both followers' links up", timeout: 30) { leading() != nil }
        g.leader = leading() ?? 0
        return g
    }

    func stop(_ g: Group) {
        for r in g.replicas { r.stop() }
        for n in g.nodes { try? n.shutdown() }
    }

    /// Puts from `clients` concurrent request loops; every `killEvery` answers, a follower's
    /// peer link to the leader is closed (on alternate followers, from alternate ends).
    func runPuts(_ g: Group, client: Node, count: Int, clients: Int, killEvery: Int) throws -> Int {
        let lock = NSLock()
        var answered = 0, failures: [String] = [], kills = 0
        let group = DispatchGroup()
        for c in 0..<clients {
            group.enter()
            DispatchQueue.global().async {
                defer { group.leave() }
                for n in stride(from: c, to: count, by: clients) {
                    do {
                        let reply = try client.request(to: "@state", type: StateTypes.request,
                                                       payload: Data(#"{"op":"put","key":"k\#(n)","value":"v\#(n)"}"#.utf8),
                                                       timeout: 60).wait()
                        let text = String(decoding: reply.payload, as: UTF8.self)
                        lock.lock()
                        if !text.contains("\"ok\":true") { failures.append("put \(n): \(text)") }
                        answered += 1
                        let kill = killEvery > 0 && answered % killEvery == 0
                        if kill { kills += 1 }
                        let which = kills
                        lock.unlock()
                        if kill {
                            // One follower or the other; from its own end or from the leader's.
                            let follower = (g.leader + 1 + which % 2) % 3
                            let fromLeader = (which / 2) % 2 == 1
                            let at = fromLeader ? g.leader : follower
                            let peer = UInt64((fromLeader ? follower : g.leader) + 1)
                            g.nodes[at].eventLoop.execute {
                                if let link = g.replicas[at].peers[peer] { g.nodes[at].closeLink(link) }
                            }
                        }
                    } catch {
                        lock.lock(); failures.append("put \(n): \(error)"); lock.unlock()
                    }
                }
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 240), .success, "the puts finish")
        lock.lock()
        defer { lock.unlock() }
        XCTAssertEqual(failures, [], "every put is answered ok")
        XCTAssertEqual(answered, count)
        return kills
    }

    func leaf(_ name: String, parent port: Int) throws -> Node {
        var c = NodeConfig(name: name)
        c.parents = [.tcp(host: "127.0.0.1", port: port)]
        let n = try Node(config: c)
        try n.start().wait()
        try n.ready().wait()
        return n
    }

    func check(directAcks: Bool) throws {
        let g = try startGroup(directAcks: directAcks)
        defer { stop(g) }
        let client = try leaf("c", parent: g.ports[g.leader])   // writes proposed at the leader (no forwarding to lose)
        defer { try? client.shutdown() }
        let count = 600
        let kills = try runPuts(g, client: client, count: count, clients: 8, killEvery: 50)
        XCTAssertGreaterThanOrEqual(kills, 10, "peer links were killed mid-stream")

        XCTAssertEqual(try g.onLoop(g.leader) { g.replicas[g.leader].raft.role }, .leader, "no election meanwhile")
        let target = try g.onLoop(g.leader) { g.replicas[g.leader].raft.appliedIndex }
        waitFor("every replica applied up to the leader's index \(target)", timeout: 60) {
            (0..<3).allSatisfy { i in ((try? g.onLoop(i) { g.replicas[i].raft.appliedIndex }) ?? 0) >= target }
        }
        for i in 0..<3 {
            let values = try g.onLoop(i) { (0..<count).map { g.replicas[i].machine.get(Array("k\($0)".utf8))?.value } }
            XCTAssertEqual(values, (0..<count).map { Array("v\($0)".utf8) }, "replica \(i + 1) holds every put")
        }
        let direct = try (0..<3).map { i in try g.onLoop(i) { g.replicas[i].figures.directMessages } }
        if directAcks {
            for i in 0..<3 where i != g.leader {
                XCTAssertGreaterThan(direct[i], 0, "follower \(i + 1)'s acks left from its storage thread")
            }
        } else {
            XCTAssertEqual(direct, [0, 0, 0], "with the direct path off the loop sends every message")
        }
    }

    func testAcksFromTheStorageThreadWhilePeerLinksAreKilled() throws {
        try check(directAcks: true)
    }

    func testTheLoopSendsEveryAckWithDirectAcksOff() throws {
        try check(directAcks: false)
    }
}
