import DAgentRaft
import DAgentRoot
import DCNode
import Foundation

/// `dagent run --raft CLUSTER.json --node-id N --data DIR`: reads the
/// DCF-style member list and prepares this replica's storage.
struct RaftGroupSetup {
    var streamID: UInt64
    var nodeID: UInt64
    var members: [GroupMember]
    var listen: Endpoint
    var dataDir: String?

    /// Parses `[{"stream_id":1,"node_id":1,"ip":"127.0.0.1","port":7100,"role":"LEADER"}, ...]`.
    static func load(jsonPath: String, nodeID: UInt64, dataDir: String?) throws -> RaftGroupSetup {
        guard let data = FileManager.default.contents(atPath: jsonPath) else {
            throw ConfigError("cannot read cluster file '\(jsonPath)'")
        }
        guard let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]], !list.isEmpty else {
            throw ConfigError("\(jsonPath): expected a non-empty JSON array of {stream_id, node_id, ip, port, role}")
        }
        var members: [GroupMember] = []
        var stream: UInt64?
        for (i, item) in list.enumerated() {
            guard let id = (item["node_id"] as? NSNumber)?.uint64Value, id > 0 else { throw ConfigError("\(jsonPath): entry \(i) needs node_id > 0") }
            guard let ip = item["ip"] as? String else { throw ConfigError("\(jsonPath): entry \(i) needs \"ip\"") }
            guard let port = (item["port"] as? NSNumber)?.intValue, (1...65535).contains(port) else { throw ConfigError("\(jsonPath): entry \(i) needs \"port\" in 1...65535") }
            let role = (item["role"] as? String ?? "FOLLOWER").uppercased()
            guard role == "LEADER" || role == "FOLLOWER" else { throw ConfigError("\(jsonPath): entry \(i) has role '\(role)'; expected LEADER or FOLLOWER") }
            let s = (item["stream_id"] as? NSNumber)?.uint64Value ?? 1
            if let stream, stream != s { throw ConfigError("\(jsonPath): several stream_ids; one file describes one stream") }
            stream = s
            if members.contains(where: { $0.nodeID == id }) { throw ConfigError("\(jsonPath): node_id \(id) appears twice") }
            members.append(GroupMember(nodeID: id, endpoint: .tcp(host: ip, port: port), preferredLeader: role == "LEADER"))
        }
        guard let me = members.first(where: { $0.nodeID == nodeID }) else {
            throw ConfigError("\(jsonPath): no entry with node_id \(nodeID) (members: \(members.map(\.nodeID)))")
        }
        return RaftGroupSetup(streamID: stream ?? 1, nodeID: nodeID, members: members, listen: me.endpoint, dataDir: dataDir)
    }

    func makeReplica(node: Node) throws -> RootReplica {
        let storage = MemoryStorage()
        try storage.bootstrap(voters: members.map(\.nodeID))
        return RootReplica(node: node, selfID: nodeID, streamID: streamID, members: members, storage: storage)
    }
}
