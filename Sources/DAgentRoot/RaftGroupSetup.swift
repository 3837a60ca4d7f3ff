import DAgentRaft
import DAgentRaftStorage
import DAgentState
import DAgentRoot
import Foundation
import Logging
import DAgentNode
import DAgentRouting

/// `dagent run --raft CLUSTER.json --node-id N --data DIR` (as DCF's
/// `dcf_start(node_id, cfg_str)`): the first start persists the member list
/// as DIR/meta.json; later starts use that and ignore a changed JSON (with a
/// log line saying so).
package struct RaftGroupSetup {
    package var load: ClusterMetaLoad
    package var dataDir: String

    package var members: [GroupMember] {
        load.meta.members.map {
            GroupMember(nodeID: $0.nodeID, endpoint: .tcp(host: $0.ip, port: Int($0.port)), preferredLeader: $0.role == .leader)
        }
    }

    package var listen: Endpoint {
        let me = load.meta.members.first { $0.nodeID == load.meta.nodeID }!
        return .tcp(host: me.ip, port: Int(me.port))
    }

    package static func load(jsonPath: String, nodeID: UInt64, dataDir: String?) throws -> RaftGroupSetup {
        guard var dataDir else { throw ConfigError("--raft needs --data DIR: the raft log and snapshots live there") }
        if !dataDir.hasPrefix("/") { dataDir = FileManager.default.currentDirectoryPath + "/" + dataDir }
        guard let json = try? String(contentsOfFile: jsonPath, encoding: .utf8) else {
            throw ConfigError("cannot read cluster file '\(jsonPath)'")
        }
        do {
            return RaftGroupSetup(load: try ClusterMeta.loadOrInit(dataDir: dataDir, json: json, nodeID: nodeID), dataDir: dataDir)
        } catch {
            throw ConfigError("\(jsonPath): \(error)")
        }
    }

    /// Every stream of the JSON this node is in, one setup each (one Raft group each):
    /// a JSON of one stream gives `load(...)`; with several, stream 1 keeps `DIR` and stream
    /// S uses `DIR/stream-S` (its own meta.json, WAL and snapshots).
    package static func loadStreams(jsonPath: String, nodeID: UInt64, dataDir: String?) throws -> (groups: [RaftGroupSetup], members: [UInt64: [UInt64]]) {
        guard var dataDir else { throw ConfigError("--raft needs --data DIR: the raft log and snapshots live there") }
        if !dataDir.hasPrefix("/") { dataDir = FileManager.default.currentDirectoryPath + "/" + dataDir }
        guard let json = try? String(contentsOfFile: jsonPath, encoding: .utf8) else {
            throw ConfigError("cannot read cluster file '\(jsonPath)'")
        }
        do {
            let all = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] ?? []
            if Set(all.compactMap { $0["stream_id"] as? Int }).count <= 1 {
                let one = try load(jsonPath: jsonPath, nodeID: nodeID, dataDir: dataDir)
                return ([one], [one.load.meta.streamID: one.load.meta.voters])
            }
        } catch {}
        do {
            let groups = try ClusterMeta.streams(json: json, nodeID: nodeID).map { stream in
                let dir = stream == 1 ? dataDir : "\(dataDir)/stream-\(stream)"
                return RaftGroupSetup(load: try ClusterMeta.loadOrInit(dataDir: dir, json: json, nodeID: nodeID, streamID: stream), dataDir: dir)
            }
            return (groups, try ClusterMeta.streamMembers(json: json))
        } catch {
            throw ConfigError("\(jsonPath): \(error)")
        }
    }

    /// `join`: this data directory is a new member of a running group (`dagent run --join`):
    /// an empty log is not bootstrapped; the replica waits for `dagent state member add`.
    package func makeReplica(node: Node, join: Bool = false) throws -> RootReplica {
        if let difference = load.ignoredJSONDifference {
            node.logger.warning("ignoring changed cluster JSON (\(difference)); using the membership stored in \(dataDir)/meta.json")
        }
        let storage = try DiskStorage(directory: dataDir, options: Self.storageOptions)
        for event in storage.recoveryReport.events {
            node.logger.warning("raft storage recovery: \(event)")
        }
        if storage.isEmpty && !join {   // a founding member's first start
            try storage.bootstrap(voters: load.meta.voters)
        }
        let replica = RootReplica(node: node, selfID: load.meta.nodeID, streamID: load.meta.streamID, members: members, storage: storage)
        replica.joining = storage.isEmpty && join
        return replica
    }
}

extension RaftGroupSetup {
    /// How a replica's Raft log is stored: the WAL's current segment is zero-filled 4 MiB
    /// ahead, so that a group commit's fdatasync overwrites allocated blocks instead of
    /// growing the file (no filesystem journal commit per write: 0.1 against ~4 ms on this
    /// machine's ext4 while other processes write; `WALOptions.preallocateBytes`).
    package static var storageOptions: DiskStorageOptions {
        var o = DiskStorageOptions()
        o.preallocateBytes = 4 << 20
        return o
    }

    /// Seeds an empty data directory with a backup (`dagent state backup`): a
    /// snapshot at index 1 carrying the store and the cluster's voters. Restore
    /// every member of the new group from the same file.
    package func restore(from backup: Data) throws -> UInt64 {
        let storage = try DiskStorage(directory: dataDir, options: Self.storageOptions)
        guard storage.isEmpty else {
            throw ConfigError("\(dataDir) already holds a raft log; restore needs an empty data directory")
        }
        // Validate the backup before writing anything.
        _ = try KVStateMachine(snapshot: Array(backup))
        let snapshot = Snapshot(metadata: SnapshotMetadata(index: 1, term: 1, membership: Membership(voters: load.meta.voters)),
                                data: Array(backup))
        try storage.applySnapshot(snapshot)
        try storage.setHardState(HardState(term: 1, vote: 0, commit: 1))
        return UInt64(backup.count)
    }
}
