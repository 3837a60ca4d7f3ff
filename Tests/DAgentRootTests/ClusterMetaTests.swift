import DAgentRaft
import Foundation
import XCTest
@testable import DAgentTestSupport
@testable import DAgentRoot

/// `meta.json`: DCF JSON validation, first-start persistence, later starts ignore changes.
final class ClusterMetaTests: TempDirTestCase {
    private let json = """
        [{"stream_id":1,"node_id":1,"ip":"10.0.0.1","port":1711,"role":"LEADER"},
         {"stream_id":1,"node_id":2,"ip":"10.0.0.2","port":1712,"role":"FOLLOWER"},
         {"stream_id":1,"node_id":3,"ip":"10.0.0.3","port":1713,"role":"FOLLOWER"}]
        """

    func testFirstStartPersistsAndLaterStartsIgnoreChangedJSON() throws {
        let dir = tmp + "/data"
        let first = try ClusterMeta.loadOrInit(dataDir: dir, json: json, nodeID: 2)
        XCTAssertTrue(first.firstStart)
        XCTAssertNil(first.ignoredJSONDifference)
        XCTAssertEqual(first.meta.streamID, 1)
        XCTAssertEqual(first.meta.voters, [1, 2, 3])
        XCTAssertEqual(first.meta.me, ClusterMember(streamID: 1, nodeID: 2, ip: "10.0.0.2", port: 1712, role: .follower))
        XCTAssertTrue(Disk.exists(dir + "/meta.json"))
        XCTAssertFalse(Disk.list(dir).contains { $0.hasSuffix(".tmp") })

        // Same JSON (reordered): no difference.
        let reordered = "[" + json.split(separator: "\n").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " [],")) }
            .reversed().joined(separator: ",") + "]"
        let same = try ClusterMeta.loadOrInit(dataDir: dir, json: reordered, nodeID: 2)
        XCTAssertFalse(same.firstStart)
        XCTAssertNil(same.ignoredJSONDifference)
        XCTAssertEqual(same.meta, first.meta)

        // Changed JSON: the persisted metadata wins, the difference is reported.
        let changed = """
            [{"stream_id":1,"node_id":1,"ip":"10.0.0.9","port":1711,"role":"FOLLOWER"},
             {"stream_id":1,"node_id":2,"ip":"10.0.0.2","port":1712,"role":"FOLLOWER"},
             {"stream_id":1,"node_id":4,"ip":"10.0.0.4","port":1714,"role":"FOLLOWER"}]
            """
        let later = try ClusterMeta.loadOrInit(dataDir: dir, json: changed, nodeID: 2)
        XCTAssertEqual(later.meta, first.meta)
        let diff = try XCTUnwrap(later.ignoredJSONDifference)
        XCTAssertTrue(diff.contains("added node(s) [4]") && diff.contains("removed node(s) [3]")
                      && diff.contains("node 1 changed from 10.0.0.1:1711 LEADER to 10.0.0.9:1711 FOLLOWER"), diff)
        // Even an invalid JSON does not stop a node that already has its metadata.
        let invalid = try ClusterMeta.loadOrInit(dataDir: dir, json: "[{", nodeID: 2)
        XCTAssertEqual(invalid.meta, first.meta)
        XCTAssertTrue(invalid.ignoredJSONDifference?.contains("invalid") ?? false)
        // But another node's data directory is refused.
        XCTAssertThrowsError(try ClusterMeta.loadOrInit(dataDir: dir, json: json, nodeID: 3)) { error in
            XCTAssertTrue("\(error)".contains("belongs to node 2"), "\(error)")
        }
    }

    private func assertRejected(_ text: String, nodeID: NodeID = 1, streamID: UInt64? = nil,
                                _ expected: ClusterMetaError, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ClusterMeta.parse(json: text, nodeID: nodeID, streamID: streamID), file: file, line: line) { error in
            XCTAssertEqual(error as? ClusterMetaError, expected, "\(error)", file: file, line: line)
        }
    }

    func testMalformedJSONErrorsNameTheProblem() {
        let ok = #"{"stream_id":1,"node_id":1,"ip":"h1","port":1711,"role":"LEADER"}"#
        XCTAssertThrowsError(try ClusterMeta.parse(json: "[{\"stream_id\":1,", nodeID: 1)) { error in
            guard case .malformedJSON? = error as? ClusterMetaError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("Unexpected end of file"), "\(error)")
        }
        assertRejected(#"{"a":1}"#, .notAnArray(found: "an object"))
        assertRejected("[]", .emptyMemberList)
        assertRejected("[\(ok), 5]", .memberNotAnObject(index: 1, found: "a number"))
        assertRejected(#"[{"node_id":1,"ip":"h","port":1,"role":"LEADER"}]"#, .missingField(index: 0, field: "stream_id"))
        assertRejected(#"[{"stream_id":1,"node_id":1,"ip":"h","role":"LEADER"}]"#, .missingField(index: 0, field: "port"))
        assertRejected(#"[{"stream_id":1,"node_id":1,"ip":"h","port":70000,"role":"LEADER"}]"#,
                       .invalidField(index: 0, field: "port", reason: "must be an integer in 1...65535, got 70000"))
        assertRejected(#"[{"stream_id":1,"node_id":1,"ip":"h","port":"1711","role":"LEADER"}]"#,
                       .invalidField(index: 0, field: "port", reason: "must be an integer in 1...65535, got \"1711\""))
        assertRejected(#"[{"stream_id":1,"node_id":0,"ip":"h","port":1,"role":"LEADER"}]"#,
                       .invalidField(index: 0, field: "node_id", reason: "must be an integer in 1...9223372036854775807, got 0"))
        assertRejected(#"[{"stream_id":1,"node_id":true,"ip":"h","port":1,"role":"LEADER"}]"#,
                       .invalidField(index: 0, field: "node_id", reason: "must be an integer in 1...9223372036854775807, got true"))
        assertRejected(#"[{"stream_id":1,"node_id":1,"ip":"","port":1,"role":"LEADER"}]"#,
                       .invalidField(index: 0, field: "ip", reason: "must be a non-empty address string, got \"\""))
        assertRejected("[\(ok), " + #"{"stream_id":1,"node_id":2,"ip":"h","port":1,"role":"CANDIDATE"}]"#,
                       .invalidField(index: 1, field: "role", reason: "must be one of LEADER, FOLLOWER, got \"CANDIDATE\""))
        assertRejected("[\(ok), \(ok)]", .duplicateNodeID(1))
        assertRejected("[\(ok)]", nodeID: 7, .ownNodeMissing(nodeID: 7, streamID: 1))
        let stream2 = #"{"stream_id":2,"node_id":1,"ip":"h1","port":1711,"role":"LEADER"}"#
        assertRejected("[\(ok), \(stream2)]", .multipleStreams([1, 2]))
        assertRejected("[\(ok)]", streamID: 3, .unknownStream(3))
        XCTAssertEqual(try ClusterMeta.parse(json: "[\(ok), \(stream2)]", nodeID: 1, streamID: 2).members.map(\.streamID), [2])
        // Messages name member and field.
        XCTAssertEqual(ClusterMetaError.invalidField(index: 2, field: "port", reason: "must be ...").description,
                       "member[2].port: must be ...")
    }

    func testFirstStartWithInvalidJSONWritesNothing() {
        let dir = tmp + "/data"
        XCTAssertThrowsError(try ClusterMeta.loadOrInit(dataDir: dir, json: "[]", nodeID: 1))
        XCTAssertFalse(Disk.exists(dir + "/meta.json"))
    }

    func testCorruptStoredMetaIsAnError() throws {
        let dir = tmp + "/data"
        _ = try ClusterMeta.loadOrInit(dataDir: dir, json: json, nodeID: 1)
        Disk.write(dir + "/meta.json", Array("{\"format\":1,".utf8))
        XCTAssertThrowsError(try ClusterMeta.loadOrInit(dataDir: dir, json: json, nodeID: 1)) { error in
            XCTAssertTrue("\(error)".contains(dir + "/meta.json"), "\(error)")
        }
    }
}
