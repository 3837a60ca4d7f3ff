import DAgentWire
import Foundation
import Yams
import DAgentRouting
import DAgentLink
import DAgentMsgq

/// Loads a node's YAML config file. Unknown keys are errors (a typo must not
/// silently fall back to a default). Example:
///
/// ```yaml
/// name: agent1
/// listen: tcp://127.0.0.1:7001            # or a list
/// parents: [tcp://127.0.0.1:7000, tcp://127.0.0.1:7100]
/// addr: proxy:tcp://0.0.0.0:7001->tcp://10.0.0.1:7000   # shorthand, instead of listen/parents
/// msgq: /run/dagent/agent1                 # serve local leaves on message queues
/// heartbeat_interval: 1.0
/// heartbeat_misses: 3
/// durable: true
/// data: /var/lib/dagent/agent1
/// ```
public enum ConfigFile {
    /// Keys this version understands; sections owned by other layers are
    /// accepted and ignored here (`plugins` is read by DAgentPython's
    /// `PluginSettings`; `raft` and `metrics` by later layers).
    static let scalarKeys: Set<String> = ([
        "name", "role", "listen", "parents", "parent", "addr", "heartbeat_interval", "heartbeat_misses",
        "register_timeout", "max_message_bytes", "max_frame_bytes", "send_queue_length",
        "max_queued_destinations", "queue_timeout", "hop_limit", "max_children", "slow_consumer_bytes",
        "reconnect_initial_backoff", "reconnect_max_backoff", "connect_timeout", "durable", "data",
        "secret", "echo", "log_level", "msgq", "msgq_queue_bytes", "msgq_send_timeout",
    ] as Set<String>).union(securityKeys)
    static let sectionKeys: Set<String> = ["plugins", "raft", "metrics"]

    public static func load(path: String, into base: NodeConfig? = nil) throws -> NodeConfig {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError("cannot read config file '\(path)'")
        }
        return try parse(yaml: text, source: path, into: base)
    }

    public static func parse(yaml text: String, source: String = "config", into base: NodeConfig? = nil) throws -> NodeConfig {
        let loaded: Any?
        do { loaded = try Yams.load(yaml: text) } catch {
            throw ConfigError("\(source): not valid YAML: \(error)")
        }
        guard let map = loaded as? [String: Any] else {
            throw ConfigError("\(source): expected a mapping of options at the top level")
        }
        for key in map.keys where !scalarKeys.contains(key) && !sectionKeys.contains(key) && !PubSubOptions.keys.contains(key) {
            throw ConfigError("\(source): unknown option '\(key)' (see the README's options table)")
        }
        var c = base ?? NodeConfig(name: "")
        func str(_ k: String) throws -> String? {
            guard let v = map[k] else { return nil }
            if let s = v as? String { return s }
            if let i = v as? Int { return String(i) }
            throw ConfigError("\(source): \(k) must be a string")
        }
        func num(_ k: String) throws -> Double? {
            guard let v = map[k] else { return nil }
            if let d = v as? Double { return d }
            if let i = v as? Int { return Double(i) }
            throw ConfigError("\(source): \(k) must be a number (got \(v))")
        }
        func int(_ k: String) throws -> Int? {
            guard let v = map[k] else { return nil }
            if let i = v as? Int { return i }
            throw ConfigError("\(source): \(k) must be an integer (got \(v))")
        }
        func bool(_ k: String) throws -> Bool? {
            guard let v = map[k] else { return nil }
            if let b = v as? Bool { return b }
            throw ConfigError("\(source): \(k) must be true or false (got \(v))")
        }
        func endpoints(_ k: String) throws -> [Endpoint]? {
            guard let v = map[k] else { return nil }
            if let s = v as? String { return try Shorthand.parseList(s) }
            if let list = v as? [Any] {
                return try list.map { item in
                    guard let s = item as? String else { throw ConfigError("\(source): \(k) entries must be strings") }
                    return try Endpoint.parse(s)
                }
            }
            throw ConfigError("\(source): \(k) must be an address or a list of addresses")
        }
        if let v = try str("name") { c.name = v }
        if let v = try str("role") {
            switch v.lowercased() {
            case "leaf": c.role = .leaf
            case "agent": c.role = .agent
            case "proxy": c.role = .proxy
            case "root": c.role = .root
            default: throw ConfigError("\(source): role must be leaf, agent, proxy or root (got '\(v)')")
            }
        }
        if let v = try str("addr") {
            let sh = try Shorthand.parse(v)
            c.listen += sh.listen
            c.parents += sh.parents
        }
        if let v = try endpoints("listen") { c.listen = v }
        if let v = try endpoints("parents") ?? endpoints("parent") { c.parents = v }
        if let v = try num("heartbeat_interval") { c.heartbeatInterval = v }
        if let v = try int("heartbeat_misses") { c.heartbeatMisses = v }
        if let v = try num("register_timeout") { c.registerTimeout = v }
        if let v = try int("max_message_bytes") { c.maxMessageBytes = v }
        if let v = try int("max_frame_bytes") { c.maxFrameBytes = v }
        if let v = try int("send_queue_length") { c.sendQueueLength = v }
        if let v = try int("max_queued_destinations") { c.maxQueuedDestinations = v }
        if let v = try num("queue_timeout") { c.queueTimeout = v }
        if let v = try int("hop_limit") { c.hopLimit = v }
        if let v = try int("max_children") { c.maxChildren = v }
        if let v = try int("slow_consumer_bytes") { c.slowConsumerBytes = v }
        if let v = try num("reconnect_initial_backoff") { c.reconnectInitialBackoff = v }
        if let v = try num("reconnect_max_backoff") { c.reconnectMaxBackoff = v }
        if let v = try num("connect_timeout") { c.connectTimeout = v }
        if let v = try bool("durable") { c.durable = v }
        if let v = try str("data") { c.dataDir = v }
        if let v = try str("secret") { c.secret = v }
        if let v = try bool("echo") { c.echo = v }
        if let v = try str("log_level") { c.logLevel = v }
        if let v = try str("msgq") { c.listen.append(.msgq(path: v.hasPrefix("msgq://") ? String(v.dropFirst(7)) : v)) }
        if let v = try int("msgq_queue_bytes") { c.msgqQueueBytes = v }
        if let v = try num("msgq_send_timeout") { c.msgqSendTimeoutOverride = v }
        try parseSecurity(map, source: source, into: &c, int: int, num: num, str: str)
        try PubSubOptions.apply(map, source: source, to: &c)
        return c
    }
}
