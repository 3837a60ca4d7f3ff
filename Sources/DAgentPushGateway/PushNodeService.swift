import DAgentNode
import DAgentPush
import DAgentRouting
import DAgentWire
import Foundation
import NIOCore

/// The reserved message types between a gateway and the push plugin of its node.
public enum PushTypes {
    /// Plugin → gateway requests (JSON): `configure`, `publish`, `close`, `detach`, `stats`.
    public static let control: UInt32 = 0xFFFF_0400
    /// Gateway → plugin requests (JSON): `connect`, `subscribe`, `publish`; and the
    /// one-way `disconnect`.
    public static let event: UInt32 = 0xFFFF_0401
}

/// Binds a gateway to its node: answers the plugin's control requests and
/// asks the plugin (with requests to this node, which its plugin host
/// handles) for every decision. The plugin attaches itself with `configure`;
/// until then, and after `detach`, clients are refused with 1013.
public final class PushNodeService: PushService, @unchecked Sendable {
    public let node: Node
    public let gateway: PushGateway
    /// `on_publish` hooks the plugin has (it says so at `configure` and with `hooks`).
    /// Without any, client publishes are decided here against the token's `pub`
    /// claims: no Python per published message. Node loop only.
    var publishHooks = 1
    /// The `pub` claims of each connected client, from the plugin's connect answer. Node loop only.
    var pubClaims: [PushClientID: [String]] = [:]

    public init(node: Node, gateway: PushGateway) {
        self.node = node
        self.gateway = gateway
    }

    /// Takes the control type (requests and one-way messages) before the node's
    /// application handlers and adds the gateway to `dagent tree`.
    public func install() {
        node.handleMessages(ofType: PushTypes.control) { [unowned self] envelope in self.control(envelope) }
        let previousTree = node.treeExtension
        node.treeExtension = { [unowned self] reply in
            previousTree?(&reply)
            reply.pushGateway = self.info()
        }
    }

    /// The gateway's figures for `dagent tree` (on the node's loop).
    public func info() -> Dagent_PushGatewayInfo {
        let hub = gateway.hub
        var i = Dagent_PushGatewayInfo()
        i.clients = UInt64(hub.stats.clients)
        i.queueBytes = UInt64(max(0, hub.stats.queueBytes))
        i.messages = hub.stats.messages
        i.deliveries = hub.stats.deliveries
        i.conflated = hub.stats.conflated
        for (code, n) in hub.stats.closes { i.closes[PushStats.closeName(code), default: 0] += n }
        for (code, n) in hub.stats.errors { i.errors[String(code)] = n }
        i.epoch = hub.streams.epoch
        i.topics = UInt64(hub.streams.topicCount)
        i.accepted = hub.stats.accepted
        i.service = gateway.service != nil
        i.patterns = hub.interestPatterns
        i.historyFrames = UInt64(hub.streams.historyFrames)
        return i
    }

    // MARK: plugin → gateway

    func control(_ e: Dagent_Envelope) {
        func answer(_ obj: [String: Any]) {
            if e.kind == .request { node.reply(to: e, payload: (try? JSONSerialization.data(withJSONObject: obj)) ?? Data()) }
        }
        func refuse(_ reason: String) {
            if e.kind == .request { node.replyError(to: e, reason: reason) }
        }
        guard e.src == node.config.name else {
            refuse("push control requests are taken only from the node itself (got one from '\(e.src)')")
            return
        }
        guard let obj = (try? JSONSerialization.jsonObject(with: e.payload)) as? [String: Any], let op = obj["op"] as? String else {
            refuse("a push control request is a JSON object with an \"op\"")
            return
        }
        switch op {
        case "configure":
            do {
                try configure(obj)
                gateway.service = self
                publishHooks = (obj["publish_hooks"] as? NSNumber)?.intValue ?? 1
                answer(["ok": true, "epoch": gateway.hub.streams.epoch, "path": PushGateway.path])
            } catch {
                refuse("\(error)")
            }
        case "detach":
            gateway.service = nil
            gateway.closeAll(code: 1012, reason: "the push service on node '\(node.config.name)' is restarting")
            answer(["ok": true])
        case "publish":
            guard let topic = obj["topic"] as? String, let data = Self.data(obj) else {
                refuse("publish needs \"topic\" and \"data\" (string) or \"data_b64\"")
                return
            }
            if let problem = gateway.publish(topic: topic, payload: Data(data)) { refuse(problem) } else { answer(["ok": true]) }
        case "close":
            guard let id = (obj["client"] as? NSNumber)?.uint64Value else { refuse("close needs \"client\""); return }
            let code = (obj["code"] as? NSNumber)?.uint16Value ?? 1000
            gateway.disconnect(id, code: code, reason: obj["reason"] as? String ?? "closed by the push service")
            answer(["ok": true])
        case "hooks":
            guard let n = (obj["publish"] as? NSNumber)?.intValue, n >= 0 else { refuse("hooks needs \"publish\": the number of on_publish hooks"); return }
            publishHooks = n
            answer(["ok": true])
        case "stats":
            let s = gateway.hub.stats
            answer(["clients": s.clients, "queue_bytes": s.queueBytes, "messages": s.messages, "deliveries": s.deliveries,
                    "conflated": s.conflated, "epoch": gateway.hub.streams.epoch,
                    "closes": Dictionary(s.closes.map { (PushStats.closeName($0.key), $0.value) }, uniquingKeysWith: +)])
        default:
            refuse("unknown push control op '\(op)' (configure, detach, publish, close, stats, hooks)")
        }
    }

    static func data(_ obj: [String: Any]) -> [UInt8]? {
        if let s = obj["data_b64"] as? String { return Data(base64Encoded: s).map { [UInt8]($0) } }
        if let s = obj["data"] as? String { return Array(s.utf8) }
        return nil
    }

    func configure(_ obj: [String: Any]) throws {
        var history: [PushHistoryPolicy] = []
        for item in obj["history"] as? [[String: Any]] ?? [] {
            guard let p = item["pattern"] as? String else { throw ConfigError("push history: each entry needs a \"pattern\"") }
            if let problem = PushTopic.problem(pattern: p, maxBytes: gateway.hub.limits.maxTopicBytes) { throw ConfigError("push history: \(problem)") }
            let size = (item["size"] as? NSNumber)?.intValue ?? 0
            let ttl = (item["ttl"] as? NSNumber)?.doubleValue ?? 0
            history.append(PushHistoryPolicy(pattern: p, size: size, ttl: ttl))
        }
        if let on = obj["deflate"] as? Bool { gateway.hub.limits.deflate = on }
        let conflate = obj["conflate"] as? [String] ?? []
        for p in conflate {
            if let problem = PushTopic.problem(pattern: p, maxBytes: gateway.hub.limits.maxTopicBytes) { throw ConfigError("push conflate: \(problem)") }
        }
        if let l = obj["limits"] as? [String: Any] {
            var limits = gateway.hub.limits
            func int(_ k: String, _ v: inout Int) { if let n = l[k] as? NSNumber { v = n.intValue } }
            int("send_queue_bytes", &limits.sendQueueBytes)
            int("max_frame_bytes", &limits.maxFrameBytes)
            int("max_subscriptions", &limits.maxSubscriptions)
            int("max_pending_ops", &limits.maxPendingOps)
            int("max_topic_bytes", &limits.maxTopicBytes)
            int("max_clients", &limits.maxClients)
            if let n = l["plugin_timeout"] as? NSNumber { limits.pluginTimeout = n.doubleValue }
            if let n = l["close_timeout"] as? NSNumber { limits.closeTimeout = n.doubleValue }
            int("deflate_min_bytes", &limits.deflateMinBytes)
            gateway.hub.limits = limits
        }
        gateway.hub.configure(history: history, conflate: conflate)
    }

    // MARK: gateway → plugin

    func ask(_ obj: [String: Any], completion: @escaping @Sendable (Result<[String: Any], PushServiceFailure>) -> Void) {
        let payload = (try? JSONSerialization.data(withJSONObject: obj)) ?? Data()
        node.request(to: node.config.name, type: PushTypes.event, payload: payload, timeout: gateway.hub.limits.pluginTimeout)
            .whenComplete { result in
                switch result {
                case .success(let e):
                    if let reply = (try? JSONSerialization.jsonObject(with: e.payload)) as? [String: Any] {
                        completion(.success(reply))
                    } else {
                        completion(.failure(PushServiceFailure(reason: "the push plugin answered with something that is not a JSON object")))
                    }
                case .failure(let error):
                    completion(.failure(PushServiceFailure(reason: "the push service failed: \(error)")))
                }
            }
    }

    static func decision(_ r: Result<[String: Any], PushServiceFailure>, denyCode: Int) -> PushDecision {
        switch r {
        case .success(let obj):
            if obj["ok"] as? Bool == true { return .allow(user: obj["user"] as? String ?? "") }
            return .deny(code: (obj["code"] as? NSNumber)?.intValue ?? denyCode, reason: obj["reason"] as? String ?? "denied by the push service")
        case .failure(let f):
            let why = f.reason
            return .deny(code: denyCode == Int(PushCodes.unauthorized) ? Int(PushCodes.tryAgainLater) : PushCodes.unavailable, reason: why)
        }
    }

    public func connect(client: PushClientID, token: String?, remote: String, completion: @escaping @Sendable (PushDecision) -> Void) {
        var obj: [String: Any] = ["op": "connect", "client": client, "remote": remote]
        if let token { obj["token"] = token }
        ask(obj) { [self] r in
            // On the node's loop (the request's future): keep the claims for publishClaims.
            if case .success(let o) = r, o["ok"] as? Bool == true, let pub = o["pub"] as? [String] { pubClaims[client] = pub }
            completion(Self.decision(r, denyCode: Int(PushCodes.unauthorized)))
        }
    }

    public func subscribe(client: PushClientID, user: String, pattern: String, completion: @escaping @Sendable (PushDecision) -> Void) {
        ask(["op": "subscribe", "client": client, "user": user, "topic": pattern]) { completion(Self.decision($0, denyCode: PushCodes.forbidden)) }
    }

    public func publish(client: PushClientID, user: String, topic: String, data: [UInt8], completion: @escaping @Sendable (PushPublishDecision) -> Void) {
        ask(["op": "publish", "client": client, "user": user, "topic": topic, "data_b64": Data(data).base64EncodedString()]) { r in
            switch r {
            case .success(let obj) where obj["ok"] as? Bool == true:
                let finalTopic = obj["topic"] as? String ?? topic
                let finalData = Self.data(obj) ?? data
                completion(.allow(topic: finalTopic, data: finalData))
            case .success(let obj):
                completion(.deny(code: (obj["code"] as? NSNumber)?.intValue ?? PushCodes.forbidden, reason: obj["reason"] as? String ?? "denied by the push service"))
            case .failure(let f):
                completion(.deny(code: PushCodes.unavailable, reason: f.reason))
            }
        }
    }

    public func disconnected(client: PushClientID, user: String?) {
        pubClaims[client] = nil
        let payload = (try? JSONSerialization.data(withJSONObject: ["op": "disconnect", "client": client])) ?? Data()
        _ = node.send(to: node.config.name, type: PushTypes.event, payload: payload)
    }
}

extension PushNodeService {
    public func publishClaims(client: PushClientID) -> [String]? {
        publishHooks == 0 ? pubClaims[client] : nil
    }
}

/// Why the push plugin gave no usable answer.
public struct PushServiceFailure: Error, Sendable {
    public var reason: String
}
