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
    /// Sections owned by other layers, accepted and ignored here (`plugins` is
    /// read by DAgentPython's `PluginSettings`; `raft` and `metrics` by later layers).
    /// A layer that owns a section adds its name here.
    public static let sectionKeys: Set<String> = ["plugins", "raft", "metrics"]

    public static func load(path: String, into base: NodeConfig? = nil) throws -> NodeConfig {
        try load(document: try ConfigDocument.load(path: path), into: base)
    }

    /// Parses a YAML document of node options (`NodeOptions.table`); unknown keys are errors.
    public static func parse(yaml text: String, source: String = "config", into base: NodeConfig? = nil) throws -> NodeConfig {
        let map = try mapping(yaml: text, source: source)
        var c = base ?? NodeConfig(name: "")
        let dir = source == "config" ? nil : (source as NSString).deletingLastPathComponent
        try NodeOptions.table.apply(yaml: map, to: &c, source: source, baseDir: dir.flatMap { $0.isEmpty ? nil : $0 },
                                    ignoring: sectionKeys)
        return c
    }

    /// The top-level mapping of a YAML config document.
    public static func mapping(yaml text: String, source: String) throws -> [String: Any] {
        let loaded: Any?
        do { loaded = try ConfigYAML.load(yaml: text, source: source) } catch let e as ConfigError { throw e } catch {
            throw ConfigError("\(source): not valid YAML: \(error)")
        }
        if loaded == nil { return [:] }
        guard let map = loaded as? [String: Any] else {
            throw ConfigError("\(source): expected a mapping of options at the top level")
        }
        return map
    }
}
