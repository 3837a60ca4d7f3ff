import Foundation
import DAgentRaftStorage
import DAgentState
import DAgentRaft

/// Why a DCF cluster JSON (or a stored `meta.json`) was rejected. Field errors name the
/// member (0-based position in the array) and the field.
public enum ClusterMetaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not parseable as JSON at all.
    case malformedJSON(String)
    /// The top level is not an array of members (found: the JSON type).
    case notAnArray(found: String)
    /// The array has no members (for the selected stream).
    case emptyMemberList
    /// `member[index]` is not a JSON object.
    case memberNotAnObject(index: Int, found: String)
    /// `member[index]` lacks `field`.
    case missingField(index: Int, field: String)
    /// `member[index].field` has a wrong type or value.
    case invalidField(index: Int, field: String, reason: String)
    /// Two members of the stream share a node id.
    case duplicateNodeID(NodeID)
    /// This node's id is not among the members of the stream.
    case ownNodeMissing(nodeID: NodeID, streamID: UInt64)
    /// The JSON describes several streams; the caller must say which one.
    case multipleStreams([UInt64])
    /// The requested stream has no members in the JSON.
    case unknownStream(UInt64)
    /// A node has different addresses in different streams (one process serves them all).
    case inconsistentAddress(nodeID: NodeID, String)
    /// A node serves another stream but is not a member of stream 1, which holds the name directory.
    case notInDirectoryStream(nodeID: NodeID, streams: [UInt64])
    /// The stored `meta.json` cannot be read or is invalid.
    case storedMetaUnreadable(path: String, reason: String)
    /// The stored `meta.json` belongs to another node/stream than the one starting.
    case storedMetaMismatch(String)

    public var description: String {
        switch self {
        case let .malformedJSON(why): return "cluster JSON is not valid JSON: \(why)"
        case let .notAnArray(found): return "cluster JSON must be an array of members, found \(found)"
        case .emptyMemberList: return "cluster JSON has no members"
        case let .memberNotAnObject(i, found): return "member[\(i)] must be an object, found \(found)"
        case let .missingField(i, field): return "member[\(i)] is missing field \"\(field)\""
        case let .invalidField(i, field, reason): return "member[\(i)].\(field): \(reason)"
        case let .duplicateNodeID(id): return "node_id \(id) appears more than once"
        case let .ownNodeMissing(id, stream): return "own node_id \(id) is not a member of stream \(stream)"
        case let .multipleStreams(ids): return "cluster JSON has several streams \(ids); select one"
        case let .unknownStream(id): return "cluster JSON has no members in stream \(id)"
        case let .inconsistentAddress(id, why): return "node_id \(id) has different addresses in different streams (\(why)); one process serves all its streams on one ip:port"
        case let .notInDirectoryStream(id, streams): return "node_id \(id) is in stream(s) \(streams) but not in stream 1; with several streams every process must be a member of stream 1, which holds the name directory"
        case let .storedMetaUnreadable(path, why): return "cannot use \(path): \(why)"
        case let .storedMetaMismatch(why): return "stored cluster metadata does not match: \(why)"
        }
    }
}

/// A parsed JSON value (via `JSONDecoder`, so numbers and booleans stay distinct).
enum JSONValue: Decodable, Equatable {
    case null, bool(Bool), int(Int64), double(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    static func parse(_ text: String) throws -> JSONValue {
        do {
            return try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        } catch let DecodingError.dataCorrupted(ctx) {
            // JSONSerialization says where the syntax breaks; JSONDecoder does not.
            var detail = ctx.debugDescription
            do { _ = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) } catch {
                if let d = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String { detail = d }
            }
            throw ClusterMetaError.malformedJSON(detail)
        } catch {
            throw ClusterMetaError.malformedJSON("\(error)")
        }
    }

    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    var shortText: String {
        switch self {
        case .null: return "null"
        case let .bool(b): return "\(b)"
        case let .int(i): return "\(i)"
        case let .double(d): return "\(d)"
        case let .string(s): return "\"\(s)\""
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

extension ClusterMember {
    /// Validates one element of the DCF member array.
    init(json v: JSONValue, index i: Int) throws {
        guard case let .object(o) = v else { throw ClusterMetaError.memberNotAnObject(index: i, found: v.typeName) }
        func field(_ name: String) throws -> JSONValue {
            guard let f = o[name] else { throw ClusterMetaError.missingField(index: i, field: name) }
            return f
        }
        func positiveInt(_ name: String, max: Int64 = .max) throws -> Int64 {
            let f = try field(name)
            guard case let .int(n) = f, n >= 1, n <= max else {
                throw ClusterMetaError.invalidField(index: i, field: name,
                                                    reason: "must be an integer in 1...\(max), got \(f.shortText)")
            }
            return n
        }
        let stream = try positiveInt("stream_id")
        let node = try positiveInt("node_id")
        let ipValue = try field("ip")
        guard case let .string(ip) = ipValue, !ip.isEmpty, !ip.contains(where: { $0.isWhitespace }) else {
            throw ClusterMetaError.invalidField(index: i, field: "ip",
                                                reason: "must be a non-empty address string, got \(ipValue.shortText)")
        }
        let port = try positiveInt("port", max: 65535)
        let roleValue = try field("role")
        guard case let .string(r) = roleValue, let role = ClusterRole(rawValue: r) else {
            let known = ClusterRole.allCases.map(\.rawValue).joined(separator: ", ")
            throw ClusterMetaError.invalidField(index: i, field: "role", reason: "must be one of \(known), got \(roleValue.shortText)")
        }
        self.init(streamID: UInt64(stream), nodeID: NodeID(node), ip: ip, port: UInt16(port), role: role)
    }
}

extension ClusterMeta {
    /// Parses and validates a DCF member array for node `nodeID`. `streamID` selects the
    /// stream when the JSON lists several (otherwise the single stream in it is used).
    public static func parse(json: String, nodeID: NodeID, streamID: UInt64? = nil) throws -> ClusterMeta {
        let root = try JSONValue.parse(json)
        guard case let .array(items) = root else { throw ClusterMetaError.notAnArray(found: root.typeName) }
        guard !items.isEmpty else { throw ClusterMetaError.emptyMemberList }
        let all = try items.enumerated().map { try ClusterMember(json: $0.element, index: $0.offset) }
        let streams = Array(Set(all.map(\.streamID))).sorted()
        let stream: UInt64
        if let s = streamID {
            guard streams.contains(s) else { throw ClusterMetaError.unknownStream(s) }
            stream = s
        } else {
            guard streams.count == 1 else { throw ClusterMetaError.multipleStreams(streams) }
            stream = streams[0]
        }
        return try ClusterMeta(streamID: stream, nodeID: nodeID, members: all.filter { $0.streamID == stream })
    }

    /// The streams of a DCF JSON that node `nodeID` is a member of (sorted). With several
    /// streams in the JSON, every node must be in stream 1 (the name directory) and have the
    /// same `ip:port` in each of its streams. Throws `ClusterMetaError`.
    public static func streams(json: String, nodeID: NodeID) throws -> [UInt64] {
        let root = try JSONValue.parse(json)
        guard case let .array(items) = root else { throw ClusterMetaError.notAnArray(found: root.typeName) }
        guard !items.isEmpty else { throw ClusterMetaError.emptyMemberList }
        let all = try items.enumerated().map { try ClusterMember(json: $0.element, index: $0.offset) }
        let streams = Set(all.map(\.streamID))
        if streams.count > 1 {
            var address: [NodeID: (String, UInt64)] = [:]
            for m in all {
                let here = "\(m.ip):\(m.port)"
                if let (there, s) = address[m.nodeID], there != here {
                    throw ClusterMetaError.inconsistentAddress(nodeID: m.nodeID, "\(there) in stream \(s), \(here) in stream \(m.streamID)")
                }
                address[m.nodeID] = (here, m.streamID)
            }
            let directory = Set(all.filter { $0.streamID == 1 }.map(\.nodeID))
            for id in Set(all.map(\.nodeID)).sorted() where !directory.contains(id) {
                throw ClusterMetaError.notInDirectoryStream(nodeID: id, streams: Array(Set(all.filter { $0.nodeID == id }.map(\.streamID))).sorted())
            }
        }
        let mine = Array(Set(all.filter { $0.nodeID == nodeID }.map(\.streamID))).sorted()
        guard !mine.isEmpty else { throw ClusterMetaError.ownNodeMissing(nodeID: nodeID, streamID: streams.sorted().first ?? 1) }
        return mine
    }

    /// Stream id → its members' node ids, as the JSON lists them.
    public static func streamMembers(json: String) throws -> [UInt64: [UInt64]] {
        guard case let .array(items) = try JSONValue.parse(json) else { return [:] }
        let all = try items.enumerated().map { try ClusterMember(json: $0.element, index: $0.offset) }
        return Dictionary(grouping: all, by: \.streamID).mapValues { $0.map(\.nodeID).sorted() }
    }
}
