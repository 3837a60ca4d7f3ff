import DAgentNode
import DAgentRaft
import Foundation
import XCTest
@testable import DAgentRoot

/// A replica whose stored snapshot cannot be restored does not start (it must never apply
/// entries on top of stale state), and says why.
final class ReplicaRestoreTests: XCTestCase {
    static func config() -> NodeConfig {
        var c = NodeConfig(name: "r1")
        c.listen = [.tcp(host: "127.0.0.1", port: 0)]
        return c
    }

    func testUnrestorableSnapshotStopsTheReplica() throws {
        let storage = MemoryStorage()
        try storage.applySnapshot(Snapshot(metadata: SnapshotMetadata(index: 5, term: 1, membership: Membership(voters: [1])),
                                           data: Array("DKVS".utf8) + [1] + Array(repeating: 0xFF, count: 32)))
        let node = try Node(config: Self.config())
        defer { try? node.shutdown() }
        let replica = RootReplica(node: node, selfID: 1, streamID: 1,
                                  members: [GroupMember(nodeID: 1, endpoint: .tcp(host: "127.0.0.1", port: 1))], storage: storage)
        XCTAssertThrowsError(try replica.start().wait()) { error in
            XCTAssertTrue("\(error)".contains("cannot restore the snapshot at index 5"), "\(error)")
        }
    }

    func testWrappedSnapshotCarriesTheAddressBook() throws {
        let node = try Node(config: Self.config())
        defer { try? node.shutdown() }
        let a = RootReplica(node: node, selfID: 1, streamID: 1,
                            members: [GroupMember(nodeID: 1, endpoint: .tcp(host: "127.0.0.1", port: 7001))], storage: MemoryStorage())
        a.addresses[4] = .tcp(host: "127.0.0.1", port: 7004)
        let data = a.snapshotData()
        let b = RootReplica(node: node, selfID: 2, streamID: 1, members: [], storage: MemoryStorage())
        try b.restoreSnapshot(data)
        XCTAssertEqual(b.addresses[4], .tcp(host: "127.0.0.1", port: 7004))
        XCTAssertEqual(b.addresses[1], .tcp(host: "127.0.0.1", port: 7001))
        XCTAssertThrowsError(try b.restoreSnapshot(Array(data.prefix(20))))
    }
}
