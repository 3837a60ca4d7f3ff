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

    static let keys: Set<String> = ["dirs", "config", "handler_budget", "interrupt_handlers", "queue_length", "python_path"]

    /// Reads the `plugins` section of a node config file (nil if it has none).
    public static func load(configFile path: String) throws -> PluginSettings? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError("cannot read config file '\(path)'")
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try parse(yaml: text, source: path, baseDir: base)
    }

    /// Parses the `plugins` key of a YAML document; relative dirs are taken from `baseDir`.
    public static func parse(yaml text: String, source: String, baseDir: String) throws -> PluginSettings? {
        let loaded: Any?
        do { loaded = try Yams.load(yaml: text) } catch {
            throw ConfigError("\(source): not valid YAML: \(error)")
        }
        guard let top = loaded as? [String: Any], let section = top["plugins"] else { return nil }
        return try parse(section: section, source: "\(source): plugins", baseDir: baseDir)
    }

    static func parse(section: Any, source: String, baseDir: String) throws -> PluginSettings {
        var s = PluginSettings()
        func dirList(_ v: Any, _ what: String) throws -> [String] {
            if let one = v as? String { return [absolute(one, baseDir)] }
            if let list = v as? [Any] {
                return try list.map { item in
                    guard let d = item as? String else { throw ConfigError("\(source)\(what): entries must be directory paths (got \(item))") }
                    return absolute(d, baseDir)
                }
            }
            throw ConfigError("\(source)\(what): expected a directory or a list of directories (got \(v))")
        }
        if section is String || section is [Any] {
            s.dirs = try dirList(section, "")
            return s
        }
        guard let map = section as? [String: Any] else {
            throw ConfigError("\(source): expected a mapping (dirs, config, handler_budget, ...) or a list of directories")
        }
        for key in map.keys where !keys.contains(key) {
            throw ConfigError("\(source): unknown option '\(key)' (known: \(keys.sorted().joined(separator: ", ")))")
        }
        if let v = map["dirs"] { s.dirs = try dirList(v, ".dirs") }
        if let v = map["handler_budget"] {
            guard let d = (v as? Double) ?? (v as? Int).map(Double.init) else {
                throw ConfigError("\(source).handler_budget must be a number of seconds (got \(v))")
            }
            s.handlerBudget = d
        }
        if let v = map["interrupt_handlers"] {
            guard let b = v as? Bool else { throw ConfigError("\(source).interrupt_handlers must be true or false (got \(v))") }
            s.interruptHandlers = b
        }
        if let v = map["queue_length"] {
            guard let i = v as? Int else { throw ConfigError("\(source).queue_length must be an integer (got \(v))") }
            s.queueLength = i
        }
        if let v = map["python_path"] {
            guard let p = v as? String else { throw ConfigError("\(source).python_path must be a directory (got \(v))") }
            s.pythonPath = absolute(p, baseDir)
        }
        if let v = map["config"] {
            guard let sections = v as? [String: Any] else {
                throw ConfigError("\(source).config must map plugin names to their sections (got \(v))")
            }
            let clean = sections.mapValues(jsonSafe)
            guard JSONSerialization.isValidJSONObject(clean),
                  let data = try? JSONSerialization.data(withJSONObject: clean, options: [.sortedKeys]) else {
                throw ConfigError("\(source).config: cannot represent the plugin sections as JSON")
            }
            s.configJSON = String(decoding: data, as: UTF8.self)
        }
        return s
    }

    /// Checks the values; the message names the option.
    public func validate() throws {
        if !(handlerBudget > 0) { throw ConfigError("plugins.handler_budget must be > 0 seconds (got \(handlerBudget))") }
        if queueLength < 1 { throw ConfigError("plugins.queue_length must be >= 1 (got \(queueLength))") }
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

func absolute(_ path: String, _ base: String) -> String {
    let expanded = (path as NSString).expandingTildeInPath
    let url = expanded.hasPrefix("/") ? URL(fileURLWithPath: expanded) : URL(fileURLWithPath: base).appendingPathComponent(expanded)
    return url.standardizedFileURL.path
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
