import Foundation
import DAgentRaftStorage
import DAgentState
import DAgentRaft

/// Role of a member in the DCF cluster JSON. Both are voters; `LEADER` marks the member
/// expected to lead initially (Raft still elects whoever wins).
public enum ClusterRole: String, Sendable, Codable, CaseIterable {
    case leader = "LEADER"
    case follower = "FOLLOWER"
}

/// One member line of the DCF cluster JSON: `{"stream_id","node_id","ip","port","role"}`.
public struct ClusterMember: Sendable, Equatable, Codable {
    public var streamID: UInt64
    public var nodeID: NodeID
    public var ip: String
    public var port: UInt16
    public var role: ClusterRole

    public init(streamID: UInt64, nodeID: NodeID, ip: String, port: UInt16, role: ClusterRole) {
        self.streamID = streamID
        self.nodeID = nodeID
        self.ip = ip
        self.port = port
        self.role = role
    }

    enum CodingKeys: String, CodingKey {
        case streamID = "stream_id", nodeID = "node_id", ip, port, role
    }
}

/// What `ClusterMeta.loadOrInit` found.
public struct ClusterMetaLoad: Sendable, Equatable {
    /// The metadata in effect (the persisted one on later starts).
    public var meta: ClusterMeta
    /// True if this call created `meta.json` (first start of this data directory).
    public var firstStart: Bool
    /// On later starts: why the given JSON differs from the persisted metadata (it is
    /// ignored; log "ignoring changed cluster JSON: ..."), nil if it matches.
    public var ignoredJSONDifference: String?
}

/// Cluster identity of a data directory, from the DCF JSON of the first start: stream id,
/// own node id and members. Persisted as `meta.json` (written atomically) so that later
/// starts use the original membership; from then on membership changes go through Raft.
public struct ClusterMeta: Sendable, Equatable {
    public var streamID: UInt64
    public var nodeID: NodeID
    /// Members of the stream, sorted by node id.
    public var members: [ClusterMember]

    /// File name of the persisted metadata inside the data directory.
    public static let fileName = "meta.json"
    static let formatVersion: Int64 = 1

    /// Validates: at least one member, unique node ids, own node present, one stream.
    public init(streamID: UInt64, nodeID: NodeID, members: [ClusterMember]) throws {
        guard !members.isEmpty else { throw ClusterMetaError.emptyMemberList }
        var seen = Set<NodeID>()
        for m in members {
            guard m.streamID == streamID else { throw ClusterMetaError.multipleStreams([streamID, m.streamID].sorted()) }
            guard seen.insert(m.nodeID).inserted else { throw ClusterMetaError.duplicateNodeID(m.nodeID) }
        }
        guard seen.contains(nodeID) else { throw ClusterMetaError.ownNodeMissing(nodeID: nodeID, streamID: streamID) }
        self.streamID = streamID
        self.nodeID = nodeID
        self.members = members.sorted { $0.nodeID < $1.nodeID }
    }

    /// Node ids of all members (the founding voters for `RaftStorage.bootstrap(voters:)`).
    public var voters: [NodeID] { members.map(\.nodeID) }

    /// This node's own member line.
    public var me: ClusterMember { members.first { $0.nodeID == nodeID }! }

    /// First start: parses `json` (DCF member array), validates it and persists it as
    /// `dataDir/meta.json`. Later starts: loads the persisted metadata and reports in
    /// `ignoredJSONDifference` whether `json` differs (an invalid `json` counts as a
    /// difference, it is not an error then). Throws `ClusterMetaError` for an invalid
    /// JSON on first start, an unreadable `meta.json`, or a `meta.json` of another node.
    public static func loadOrInit(dataDir: String, json: String, nodeID: NodeID,
                                  streamID: UInt64? = nil) throws -> ClusterMetaLoad {
        let path = dataDir + "/" + fileName
        if FileIO.exists(path) {
            let stored = try load(path: path)
            guard stored.nodeID == nodeID else {
                throw ClusterMetaError.storedMetaMismatch("\(path) belongs to node \(stored.nodeID), this is node \(nodeID)")
            }
            if let s = streamID, s != stored.streamID {
                throw ClusterMetaError.storedMetaMismatch("\(path) is for stream \(stored.streamID), asked for stream \(s)")
            }
            let diff: String?
            do {
                diff = stored.difference(to: try parse(json: json, nodeID: nodeID, streamID: stored.streamID))
            } catch {
                diff = "the given cluster JSON is invalid (\(error))"
            }
            return ClusterMetaLoad(meta: stored, firstStart: false, ignoredJSONDifference: diff)
        }
        let meta = try parse(json: json, nodeID: nodeID, streamID: streamID)
        try FileIO.ensureDirectory(dataDir)
        try FileIO.writeAtomically(path, meta.encoded())
        return ClusterMetaLoad(meta: meta, firstStart: true, ignoredJSONDifference: nil)
    }

    /// Human-readable difference to `other` (nil if the member lists are equal).
    public func difference(to other: ClusterMeta) -> String? {
        var parts: [String] = []
        let mine = Dictionary(uniqueKeysWithValues: members.map { ($0.nodeID, $0) })
        let theirs = Dictionary(uniqueKeysWithValues: other.members.map { ($0.nodeID, $0) })
        let added = theirs.keys.filter { mine[$0] == nil }.sorted()
        let removed = mine.keys.filter { theirs[$0] == nil }.sorted()
        if !added.isEmpty { parts.append("added node(s) \(added)") }
        if !removed.isEmpty { parts.append("removed node(s) \(removed)") }
        for id in mine.keys.sorted() {
            guard let a = mine[id], let b = theirs[id], a != b else { continue }
            parts.append("node \(id) changed from \(a.ip):\(a.port) \(a.role.rawValue) to \(b.ip):\(b.port) \(b.role.rawValue)")
        }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }

    private struct Stored: Codable {
        var format: Int64
        var streamID: UInt64
        var nodeID: NodeID
        var members: [ClusterMember]
        enum CodingKeys: String, CodingKey { case format, streamID = "stream_id", nodeID = "node_id", members }
    }

    func encoded() throws -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try enc.encode(Stored(format: Self.formatVersion, streamID: streamID, nodeID: nodeID, members: members))
        return Array(data) + [0x0A]
    }

    /// Reads and re-validates a persisted `meta.json`.
    public static func load(path: String) throws -> ClusterMeta {
        do {
            let text = String(decoding: try FileIO.readAll(path), as: UTF8.self)
            guard case let .object(o) = try JSONValue.parse(text) else { throw ClusterMetaError.notAnArray(found: "no object") }
            guard o["format"] == .int(formatVersion) else {
                throw ClusterMetaError.malformedJSON("unsupported or missing \"format\" (expected \(formatVersion))")
            }
            guard case let .int(stream)? = o["stream_id"], case let .int(node)? = o["node_id"], stream > 0, node > 0 else {
                throw ClusterMetaError.malformedJSON("missing or invalid \"stream_id\"/\"node_id\"")
            }
            guard case let .array(items)? = o["members"] else { throw ClusterMetaError.malformedJSON("missing \"members\" array") }
            let members = try items.enumerated().map { try ClusterMember(json: $0.element, index: $0.offset) }
            return try ClusterMeta(streamID: UInt64(stream), nodeID: NodeID(node), members: members)
        } catch let e as ClusterMetaError {
            throw ClusterMetaError.storedMetaUnreadable(path: path, reason: e.description)
        } catch {
            throw ClusterMetaError.storedMetaUnreadable(path: path, reason: "\(error)")
        }
    }
}
