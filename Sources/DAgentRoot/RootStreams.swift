import DAgentNode
import DAgentRouting
import DAgentWire
import Foundation
import NIOCore

/// Several streams in one root process, as DCF serves them: one `RootReplica` (one Raft
/// group, its own data directory) per stream this node is a member of, behind one node,
/// one port and one `@state` service.
///
/// - `@state` requests go to the stream named by their `stream` field, else to the stream
///   the `streams:` prefix map gives for their key (prefix, lock name; all keys of a
///   transaction must map to one stream), else to stream 1. A stream this process is not a
///   member of is answered with `bad_request` naming its members.
/// - Peer links: each stream's replicas dial their own links (the hello and every service
///   frame carry the stream id); only stream 1's links carry pub/sub interest.
/// - Stream 1 holds the name directory: it is the node's `TopOfTreeAuthority`.
public final class RootStreams: TopOfTreeAuthority {
    public let node: Node
    /// Replicas by stream id.
    public let replicas: [UInt64: RootReplica]
    /// Every stream of the cluster JSON with its members (for error messages).
    public let members: [UInt64: [UInt64]]
    public let prefixes: [StreamPrefix]
    let directory: RootReplica

    /// Throws if stream 1 is not among `replicas`, or `prefixes` name a stream the JSON lacks.
    public init(node: Node, replicas: [RootReplica], members: [UInt64: [UInt64]], prefixes: [StreamPrefix]) throws {
        self.node = node
        self.replicas = Dictionary(uniqueKeysWithValues: replicas.map { ($0.streamID, $0) })
        self.members = members
        self.prefixes = prefixes
        for p in prefixes where members[p.stream] == nil {
            throw ConfigError("streams: prefix '\(p.prefix)' maps to stream \(p.stream), which the cluster JSON does not have (its streams: \(members.keys.sorted().map(String.init).joined(separator: ", ")))")
        }
        guard let d = self.replicas[1] else {
            throw ConfigError("this replica is not a member of stream 1, which holds the name directory")
        }
        directory = d
    }

    /// Installs `@state` and the authority. Call instead of each replica's `attach()`.
    public func attach() {
        node.addService(StateTypes.serviceName) { [unowned self] envelope in self.dispatch(envelope) }
        node.plugIn(authority: self)
    }

    public func start() -> EventLoopFuture<Void> {
        let futures = replicas.keys.sorted().map { replicas[$0]!.start() }
        return EventLoopFuture.andAllSucceed(futures, on: node.eventLoop)
    }

    public func stop() {
        for r in replicas.values { r.stop() }
    }

    // MARK: requests

    struct StreamRefusal: Error { var reason: String }

    /// The fields that decide a request's stream.
    struct Peek: Decodable {
        struct Keyed: Decodable { var key: String? }
        var op: String?
        var id: UInt64?
        var stream: UInt64?
        var key: String?
        var prefix: String?
        var name: String?
        var backup: UInt64?
        var compare: [Keyed]?
        var success: [Keyed]?
        var failure: [Keyed]?
    }

    /// The stream of a body in the common shapes (`CommonRequestScanner`: members `op`, `key`,
    /// `value`, `lease`, `stream` only), read without Foundation: its `stream`, else the
    /// stream its key maps to, else 1, as `Peek` decides for the same body. Nil for every other body.
    static func commonStream(_ payload: Data, prefixes: [StreamPrefix]) -> UInt64? {
        payload.withUnsafeBytes { raw -> UInt64? in
            var scan = CommonRequestScanner(raw.bindMemory(to: UInt8.self))
            guard let m = scan.members() else { return nil }
            if let s = m.stream { return s }
            guard let key = m.key else { return 1 }
            return StreamPrefix.stream(of: String(decoding: key, as: UTF8.self), in: prefixes) ?? 1
        }
    }

    /// The stream a request goes to, or the reason it cannot be served here.
    func stream(for payload: Data, from client: String) -> Result<UInt64, StreamRefusal> {
        if let s = Self.commonStream(payload, prefixes: prefixes) { return .success(s) }
        guard let p = try? JSONDecoder().decode(Peek.self, from: payload) else { return .success(1) }   // the replica names the problem
        if let s = p.stream { return .success(s) }
        if p.op == "unwatch", let id = p.id {   // to the stream that holds the client's watch
            let holder = replicas.first { $0.value.watchClients.values.contains { $0.client == client && $0.clientID == id } }
            return .success(holder?.key ?? 1)
        }
        if let id = p.backup {
            return .success(replicas.first { $0.value.backups[id] != nil }?.key ?? 1)
        }
        let keys = [p.key, p.prefix, p.name].compactMap { $0 }
            + [p.compare, p.success, p.failure].compactMap { $0 }.flatMap { $0.compactMap(\.key) }
        let streams = Set(keys.map { StreamPrefix.stream(of: $0, in: prefixes) ?? 1 })
        guard streams.count <= 1 else {
            return .failure(StreamRefusal(reason: "the keys of one request map to several streams \(streams.sorted()) (streams: \(prefixes.map { "\($0.prefix)=\($0.stream)" }.joined(separator: ","))); a transaction is served by one stream"))
        }
        return .success(streams.first ?? 1)
    }

    func dispatch(_ envelope: Dagent_Envelope) {
        guard envelope.kind == .request else { directory.handleRequest(envelope); return }
        switch stream(for: envelope.payload, from: envelope.src) {
        case .failure(let why):
            directory.reply(envelope, .failure("bad request: \(why.reason)", code: "bad_request"))
        case .success(let s):
            if let r = replicas[s] {
                r.handleRequest(envelope)
            } else if let m = members[s] {
                directory.reply(envelope, .failure("bad request: stream \(s) is not served by node \(directory.selfID) (members of stream \(s): \(m.map(String.init).joined(separator: ", "))); send the request via one of them", code: "bad_request"))
            } else {
                directory.reply(envelope, .failure("bad request: there is no stream \(s) (streams: \(members.keys.sorted().map(String.init).joined(separator: ", ")))", code: "bad_request"))
            }
        }
    }

    // MARK: TopOfTreeAuthority

    public func confirmNames(requestID: UInt64, agent: String, _ records: [Dagent_NameRecord]) {
        directory.confirmNames(requestID: requestID, agent: agent, records)
    }

    public func releaseNames(_ names: [String]) { directory.releaseNames(names) }

    public func peerLink(holding name: String) -> LinkID? { directory.peerLink(holding: name) }

    public func peerUp(_ link: LinkID, hello: Dagent_PeerHello) {
        guard let r = replicas[hello.streamID] else {
            directory.logger.warning("refusing peer hello from node \(hello.nodeID) for stream \(hello.streamID): this process serves streams \(replicas.keys.sorted())")
            node.closeLink(link)
            return
        }
        r.peerUp(link, hello: hello)
    }

    public func peerDown(_ link: LinkID) {
        for r in replicas.values { r.peerDown(link) }
    }

    /// Only stream 1's peer links carry pub/sub interest (one interest link per replica pair).
    public func peerCarriesInterest(_ hello: Dagent_PeerHello) -> Bool { hello.streamID == 1 }

    public func serviceFrame(_ frame: Dagent_ServiceFrame, on link: LinkID) {
        replicas[frame.streamID]?.serviceFrame(frame, on: link)
    }
}
