import DAgentNode
import DAgentRaft
import DAgentRaftStorage
import DAgentTestSupport
import DAgentWire
import Foundation
import XCTest
@testable import DAgentRoot

/// Deferred commit notices in a running group (`RootReplica-commitNotices.swift`): three
/// replicas in this process on loopback, with real fsync'd storage, and heartbeats 10 s
/// apart, so that no heartbeat can be what tells a follower a commit index.
final class CommitNoticeReplicaTests: TempDirTestCase {
    struct Group {
        var nodes: [Node]
        var replicas: [RootReplica]
        var ports: [Int]
    }

    /// Starts the group with `delayUs` as every replica's `commitNoticeDelayUs`; replica 1 leads.
    func startGroup(delayUs: Int64) throws -> Group {
        let ports = (0..<3).map { _ in freePort() }
        let members = (0..<3).map { GroupMember(nodeID: UInt64($0 + 1), endpoint: .tcp(host: "127.0.0.1", port: ports[$0]), preferredLeader: $0 == 0) }
        var g = Group(nodes: [], replicas: [], ports: ports)
        for i in 0..<3 {
            var c = NodeConfig(name: "r\(i + 1)")
            c.listen = [.tcp(host: "127.0.0.1", port: ports[i])]
            let node = try Node(config: c)
            let storage = try DiskStorage(directory: tmp + "/raft\(i + 1)", bootstrapVoters: [1, 2, 3])
            let replica = RootReplica(node: node, selfID: UInt64(i + 1), streamID: 1, members: members, storage: storage)
            replica.tickMs = 10_000
            replica.commitNoticeDelayUs = delayUs
            replica.attach()
            try node.start().wait()
            g.nodes.append(node)
            g.replicas.append(replica)
        }
        for r in g.replicas.reversed() { try r.start().wait() }
        // With ticks 10 s apart a lost vote would wait 100 s for the next election: campaign
        // again once replica 1's links are up.
        let r1 = g.replicas[0]
        waitFor("replica 1's peer links", timeout: 20) { (try? r1.node.eventLoop.submit { r1.peers.count }.wait()) == 2 }
        waitFor("replica 1 leads", timeout: 20) {
            (try? r1.node.eventLoop.submit { () -> Bool in
                if r1.raft.role != .leader { r1.raft.campaign(); r1.processReady() }
                return r1.raft.role == .leader
            }.wait()) == true
        }
        return g
    }

    func stop(_ g: Group) {
        for r in g.replicas { r.stop() }
        for n in g.nodes { try? n.shutdown() }
    }

    func put(_ n: Node, _ key: String, timeout: Double) throws -> String {
        let reply = try n.request(to: "@state", type: StateTypes.request,
                                  payload: Data(#"{"op":"put","key":"\#(key)","value":"v"}"#.utf8), timeout: timeout).wait()
        return String(decoding: reply.payload, as: UTF8.self)
    }

    func applied(_ r: RootReplica) -> UInt64 { (try? r.node.eventLoop.submit { r.raft.appliedIndex }.wait()) ?? 0 }

    /// A follower answers a write it proposed when it applies it, so the leader tells the
    /// followers at once when it applies an entry another replica proposed. With the timer
    /// at 60 s and heartbeats 10 s apart, each of these writes would otherwise wait seconds.
    func testAWriteThroughAFollowerIsAnsweredWithoutWaitingForTheTimerOrAHeartbeat() throws {
        let g = try startGroup(delayUs: 60_000_000)
        defer { stop(g) }
        let client = try joinLeaf("client", at: g.ports[1])
        defer { try? client.shutdown() }
        for i in 0..<5 {
            let answer = try put(client, "k\(i)", timeout: 2)
            XCTAssertTrue(answer.contains("\"ok\":true"), answer)
        }
    }

    /// A write proposed on the leader is not broadcast on its own; when no later append
    /// carries the commit, the timer tells the followers within `commitNoticeDelayUs`, long
    /// before the next heartbeat.
    func testAnIdleGroupsFollowersLearnTheCommitFromTheTimer() throws {
        let g = try startGroup(delayUs: 2_000)
        defer { stop(g) }
        let client = try joinLeaf("client", at: g.ports[0])
        defer { try? client.shutdown() }
        for i in 0..<3 {
            let answer = try put(client, "k\(i)", timeout: 2)
            XCTAssertTrue(answer.contains("\"ok\":true"), answer)
            let target = applied(g.replicas[0])
            waitFor("the followers apply put \(i) (index \(target))", timeout: 2) {
                applied(g.replicas[1]) >= target && applied(g.replicas[2]) >= target
            }
        }
    }
}
