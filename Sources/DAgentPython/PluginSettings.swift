import Foundation
import Yams
import DAgentNode
import DAgentRouting

/// What the plugin host needs: where plugins live, their config sections and
/// the host's limits. Built from the `plugins:` section of the node's YAML
/// config and from `dagent run --plugins DIR` (flags add to the file).
///
/// ```yaml
/// plugins:
///   dirs: [plugins, /opt/dagent/plugins]   # or `plugins: DIR` / `plugins: [DIR, ...]`
///   handler_budget: 2.0                    # seconds a handler may run; then logged and interrupted
///   interrupt_handlers: true               # raise dagent.HandlerTimeout in a handler over budget
///   queue_length: 100000                   # messages waiting for the plugin thread; then `queue full`
///   python_path: /usr/share/dagent/python  # where the `dagent` package is (found automatically)
///   config:                                # one section per plugin, by plugin name
///     counter: {start: 10}
/// ```
public struct PluginSettings: Sendable, Equatable {
    /// Absolute plugin directories, searched in order.
    public var dirs: [String] = []
    /// Per-plugin config sections, as JSON text (`{"counter": {"start": 10}}`).
    public var configJSON: String = "{}"
    /// `handler_budget`: seconds a handler, timer or task step may run.
    public var handlerBudget: Double = 2.0
    /// `interrupt_handlers`: interrupt code over budget (else only log it).
    public var interruptHandlers: Bool = true
    /// `queue_length`: messages that may wait for the plugin thread.
    public var queueLength: Int = 100_000
    /// `python_path`: directory holding the `dagent` package.
    public var pythonPath: String?

    public init() {}

    /// True if there is anything to host.
    public var isEnabled: Bool { !dirs.isEmpty }

    /// Reads the `plugins` section of a node config file (nil if it has none).
    public static func load(configFile path: String) throws -> PluginSettings? {
        try PluginSettings(document: try ConfigDocument.load(path: path))
    }

    /// The `plugins` section of an already parsed config file (nil if it has none).
    public init?(document: ConfigDocument) throws {
        guard let section = document.section("plugins") else { return nil }
        self = try Self.parse(section: section, source: document.path, baseDir: document.baseDir)
    }

    /// Parses the `plugins` key of a YAML document; relative dirs are taken from `baseDir`.
    public static func parse(yaml text: String, source: String, baseDir: String) throws -> PluginSettings? {
        let loaded: Any?
        do { loaded = try ConfigYAML.load(yaml: text, source: source) } catch let e as ConfigError { throw e } catch {
            throw ConfigError("\(source): not valid YAML: \(error)")
        }
        guard let top = loaded as? [String: Any], let section = top["plugins"] else { return nil }
        return try parse(section: section, source: source, baseDir: baseDir)
    }

    static func parse(section: Any, source: String, baseDir: String) throws -> PluginSettings {
        var s = PluginSettings()
        if section is String || section is [Any] {
            try PluginOptions.table.apply(yaml: ["dirs": section], to: &s, source: source, baseDir: baseDir)
            return s
        }
        guard let map = section as? [String: Any] else {
            throw ConfigError("\(source): expected a mapping (dirs, config, handler_budget, ...) or a list of directories")
        }
        try PluginOptions.table.apply(yaml: map, to: &s, source: source, baseDir: baseDir)
        return s
    }

    /// Checks the values; the message names the option.
    public func validate() throws {
        try PluginOptions.table.validate(self)
        var isDir: ObjCBool = false
        for d in dirs where !(FileManager.default.fileExists(atPath: d, isDirectory: &isDir) && isDir.boolValue) {
            throw ConfigError("plugin directory '\(d)' does not exist (--plugins / plugins.dirs)")
        }
    }

    /// The settings as the Python host reads them (`dagent/_host.py`).
    func pythonJSON(logLevel: String) -> String {
        let config = (try? JSONSerialization.jsonObject(with: Data(configJSON.utf8))) ?? [String: Any]()
        let obj: [String: Any] = [
            "dirs": dirs, "config": config, "handler_budget": handlerBudget,
            "interrupt_handlers": interruptHandlers, "log_level": logLevel,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

/// YAML values as JSON-compatible values (dates and other scalars become strings).
func jsonSafe(_ v: Any) -> Any {
    switch v {
    case let s as String: return s
    case let b as Bool: return b
    case let i as Int: return i
    case let d as Double: return d
    case let list as [Any]: return list.map(jsonSafe)
    case let map as [String: Any]: return map.mapValues(jsonSafe)
    case let map as [AnyHashable: Any]:
        return Dictionary(map.map { ("\($0.key)", jsonSafe($0.value)) }, uniquingKeysWith: { a, _ in a })
    case is NSNull: return NSNull()
    default: return "\(v)"
    }
}
