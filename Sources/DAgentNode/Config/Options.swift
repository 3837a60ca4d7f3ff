import DAgentRouting
import Foundation

/// What kind of value an option takes; shown in the docs table and `--help`.
public enum OptionType: String, Sendable, Codable {
    case string, int, seconds, number, bool, address, addresses, choice, path, mapping
}

/// One configuration option: the single place that holds its YAML key, CLI flag,
/// type, range, help and (read from the target's default value) default.
///
/// The YAML parser (`ConfigFile`), `dagent run`'s flags and the options table of
/// `docs/config.md` are all driven by `OptionTable`s of these. Numbers are checked
/// against `min...max` (NaN and infinities are refused) both when parsed and by
/// `validate`, so a value set from code is held to the same limits.
public struct ConfigOption<Target>: @unchecked Sendable {
    /// The YAML key inside its table's section (`heartbeat_interval`).
    public let key: String
    /// The CLI long flag without dashes (`heartbeat-interval`), or nil if YAML only.
    public let flag: String?
    public let type: OptionType
    /// The inclusive range of a number (nil for other types).
    public let range: ClosedRange<Double>?
    /// Accepted values of a `.choice`.
    public let choices: [String]
    public let help: String
    /// Other YAML spellings accepted for the same option (`parent` for `parents`).
    public let aliases: [String]
    /// A CLI flag that may be given several times (each adds).
    public let repeatable: Bool
    /// The default, as shown in the docs (`nil` means none; overridden by `defaultText`).
    let current: (Target) -> String?
    let defaultOverride: String?
    let fromYAML: (inout Target, Any, OptionContext) throws -> Void
    let fromFlag: ((inout Target, String?, OptionContext) throws -> Void)?
    let check: (Target, String) -> String?

    /// The default of this option on `base` (what the docs table shows).
    public func defaultText(_ base: Target) -> String { defaultOverride ?? current(base) ?? "none" }

    /// `--flag`, or nil.
    public var cliFlag: String? { flag.map { "--\($0)" } }
}

/// An ordered list of options for one config struct; options apply in this order.
public struct OptionTable<Target>: @unchecked Sendable {
    /// Prefix of the keys in docs and errors (`plugins.` for the plugins section, "" at the top).
    public let section: String
    public let options: [ConfigOption<Target>]
    /// The target's defaults (what a config without this option gets).
    public let defaults: Target

    public init(section: String = "", defaults: Target, _ options: [ConfigOption<Target>]) {
        self.section = section
        self.defaults = defaults
        self.options = options
    }

    public func option(key: String) -> ConfigOption<Target>? {
        options.first { $0.key == key || $0.aliases.contains(key) }
    }

    public func option(flag: String) -> ConfigOption<Target>? {
        options.first { $0.flag == flag }
    }

    /// Every YAML key this table accepts (aliases included).
    public var keys: Set<String> { Set(options.flatMap { [$0.key] + $0.aliases }) }

    /// Applies a YAML mapping in table order. Unknown keys are errors unless in `ignoring`.
    /// Relative paths in the values are taken from `baseDir` (the config file's directory).
    public func apply(yaml map: [String: Any], to target: inout Target, source: String, baseDir: String? = nil,
                      ignoring: Set<String> = []) throws {
        for key in map.keys.sorted() where option(key: key) == nil && !ignoring.contains(key) {
            throw ConfigError("\(source): unknown option '\(section)\(key)' (docs/config.md lists the options)")
        }
        for o in options {
            for k in [o.key] + o.aliases {
                if let v = map[k] { try o.fromYAML(&target, v, OptionContext(label: "\(source): \(section)\(k)", baseDir: baseDir ?? cwd())) }
            }
        }
    }

    /// Applies CLI flags (`--key value`, `--key=value`, `--bool-flag`) in table order.
    /// Returns the arguments that are not this table's flags.
    public func apply(flags arguments: [String], to target: inout Target) throws -> [String] {
        var given: [(ConfigOption<Target>, String?)] = []
        var rest: [String] = []
        var i = 0
        while i < arguments.count {
            let arg = arguments[i]
            i += 1
            guard arg.hasPrefix("--") else { rest.append(arg); continue }
            var name = String(arg.dropFirst(2))
            var inline: String?
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            guard let o = option(flag: name), o.fromFlag != nil else { rest.append(arg); continue }
            if o.type == .bool {
                given.append((o, inline))
            } else if let inline {
                given.append((o, inline))
            } else {
                guard i < arguments.count else { throw ConfigError("--\(name) needs a value (\(o.type.rawValue))") }
                given.append((o, arguments[i]))
                i += 1
            }
        }
        for o in options {
            let values = given.filter { $0.0.key == o.key }
            if values.count > 1 && !o.repeatable {
                throw ConfigError("--\(o.flag!) was given \(values.count) times; it takes one value")
            }
            for (_, v) in values { try o.fromFlag!(&target, v, OptionContext(label: "--\(o.flag!)", baseDir: cwd())) }
        }
        return rest
    }

    /// The first option whose current value is out of range, as an error that names it.
    public func validate(_ target: Target) throws {
        for o in options {
            if let problem = o.check(target, "\(section)\(o.key)") { throw ConfigError(problem) }
        }
    }
}

/// Where a value came from: its label for errors (`node.yaml: heartbeat_interval`, `--parent`)
/// and the directory relative paths are taken from.
public struct OptionContext: CustomStringConvertible, Sendable {
    public let label: String
    public let baseDir: String
    /// True for a command-line flag (flags add to list options; YAML sets them).
    public var isFlag: Bool { label.hasPrefix("--") }
    public var description: String { label }
    /// `path` made absolute against `baseDir` (`~` expanded).
    public func absolute(_ path: String) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        let url = expanded.hasPrefix("/") ? URL(fileURLWithPath: expanded) : URL(fileURLWithPath: baseDir).appendingPathComponent(expanded)
        return url.standardizedFileURL.path
    }
}

func cwd() -> String { FileManager.default.currentDirectoryPath }

// MARK: - Building options (one line per option)

extension ConfigOption {
    static func derivedFlag(_ key: String) -> String { key.replacingOccurrences(of: "_", with: "-") }

    /// The flag to use: `flag` if given ("" means YAML only), else derived from the key.
    static func pick(_ flag: String?, _ key: String) -> String? {
        guard let flag else { return derivedFlag(key) }
        return flag.isEmpty ? nil : flag
    }

    /// An integer in `min...max`.
    public static func int(_ key: String, _ path: WritableKeyPath<Target, Int>, min: Int, max: Int,
                           flag: String? = nil, help: String) -> Self {
        let range = Double(min)...Double(max)
        func set(_ t: inout Target, _ v: Int, _ src: OptionContext) throws {
            guard v >= min && v <= max else { throw ConfigError(outOfRange(src.label, "\(v)", min: "\(min)", max: "\(max)")) }
            t[keyPath: path] = v
        }
        return Self(key: key, flag: pick(flag, key), type: .int, range: range, choices: [], help: help, aliases: [], repeatable: false,
                    current: { "\($0[keyPath: path])" }, defaultOverride: nil,
                    fromYAML: { t, v, src in
                        guard let i = v as? Int else { throw ConfigError("\(src) must be an integer (got \(v))") }
                        try set(&t, i, src)
                    },
                    fromFlag: { t, s, src in
                        guard let s, let i = Int(s.replacingOccurrences(of: "_", with: "")) else {
                            throw ConfigError("\(src) must be an integer (got '\(s ?? "")')")
                        }
                        try set(&t, i, src)
                    },
                    check: { t, name in
                        let v = t[keyPath: path]
                        return v >= min && v <= max ? nil : outOfRange(name, "\(v)", min: "\(min)", max: "\(max)")
                    })
    }

    /// A finite number in `min...max` (`seconds: true` documents it as a duration).
    public static func double(_ key: String, _ path: WritableKeyPath<Target, Double>, min: Double, max: Double,
                              seconds: Bool = true, flag: String? = nil, help: String) -> Self {
        optionalDouble(key, path.appending(path: \Double.asOptional), min: min, max: max, seconds: seconds, flag: flag, help: help)
    }

    /// Like `double`, for a value that may stay unset (`nil`: the default applies elsewhere).
    public static func optionalDouble(_ key: String, _ path: WritableKeyPath<Target, Double?>, min: Double, max: Double,
                                      seconds: Bool = true, flag: String? = nil, default dflt: String? = nil, help: String) -> Self {
        let unit = seconds ? " seconds" : ""
        func set(_ t: inout Target, _ v: Double, _ src: OptionContext) throws {
            guard v.isFinite && v >= min && v <= max else {
                throw ConfigError(outOfRange(src.label, "\(v)", min: format(min), max: format(max), unit: unit))
            }
            t[keyPath: path] = v
        }
        return Self(key: key, flag: pick(flag, key), type: seconds ? .seconds : .number, range: min...max, choices: [], help: help,
                    aliases: [], repeatable: false,
                    current: { $0[keyPath: path].map(format) }, defaultOverride: dflt,
                    fromYAML: { t, v, src in
                        if v is Bool { throw ConfigError("\(src) must be a number\(unit) (got \(v))") }
                        guard let d = (v as? Double) ?? (v as? Int).map(Double.init) else {
                            throw ConfigError("\(src) must be a number\(unit) (got \(v))")
                        }
                        try set(&t, d, src)
                    },
                    fromFlag: { t, s, src in
                        guard let s, let d = Double(s) else { throw ConfigError("\(src) must be a number\(unit) (got '\(s ?? "")')") }
                        try set(&t, d, src)
                    },
                    check: { t, name in
                        guard let v = t[keyPath: path] else { return nil }
                        return v.isFinite && v >= min && v <= max ? nil : outOfRange(name, "\(v)", min: format(min), max: format(max), unit: unit)
                    })
    }

    /// true or false; on the command line a bare `--flag` (or `--flag=false`).
    public static func bool(_ key: String, _ path: WritableKeyPath<Target, Bool>, flag: String? = nil, help: String) -> Self {
        Self(key: key, flag: pick(flag, key), type: .bool, range: nil, choices: [], help: help, aliases: [], repeatable: false,
             current: { "\($0[keyPath: path])" }, defaultOverride: nil,
             fromYAML: { t, v, src in
                 guard let b = v as? Bool else { throw ConfigError("\(src) must be true or false (got \(v))") }
                 t[keyPath: path] = b
             },
             fromFlag: { t, s, src in
                 switch s?.lowercased() {
                 case nil, "true", "yes", "1": t[keyPath: path] = true
                 case "false", "no", "0": t[keyPath: path] = false
                 default: throw ConfigError("\(src) takes no value, or =true / =false (got '\(s!)')")
                 }
             },
             check: { _, _ in nil })
    }

    /// A string; `nonEmpty` refuses "".
    public static func string(_ key: String, _ path: WritableKeyPath<Target, String>, flag: String? = nil,
                              default dflt: String? = nil, help: String) -> Self {
        custom(key, type: .string, flag: flag, default: dflt, current: { t in
            let v = t[keyPath: path]
            return v.isEmpty ? nil : v
        }, help: help) { t, s, _ in t[keyPath: path] = s }
    }

    /// A string that may stay unset.
    public static func optionalString(_ key: String, _ path: WritableKeyPath<Target, String?>, type: OptionType = .string,
                                      flag: String? = nil, help: String) -> Self {
        custom(key, type: type, flag: flag, current: { $0[keyPath: path] }, help: help) { t, s, _ in t[keyPath: path] = s }
    }

    /// One of `choices` (compared lowercased).
    public static func choice(_ key: String, _ choices: [String], flag: String? = nil, default dflt: String? = nil,
                              current: @escaping (Target) -> String?, help: String,
                              apply: @escaping (inout Target, String) throws -> Void) -> Self {
        let base = custom(key, type: .choice, flag: flag, default: dflt, current: current, help: help) { t, s, src in
            let v = s.lowercased()
            guard choices.contains(v) else {
                throw ConfigError("\(src) must be one of \(choices.joined(separator: ", ")) (got '\(s)')")
            }
            try apply(&t, v)
        }
        return Self(key: base.key, flag: base.flag, type: .choice, range: nil, choices: choices, help: help, aliases: [],
                    repeatable: false, current: base.current, defaultOverride: base.defaultOverride,
                    fromYAML: base.fromYAML, fromFlag: base.fromFlag, check: base.check)
    }

    /// A YAML-only option with its own way of reading the YAML value (a mapping, say).
    public static func yamlOnly(_ key: String, type: OptionType, default dflt: String? = nil, help: String,
                                apply: @escaping (inout Target, Any, OptionContext) throws -> Void) -> Self {
        Self(key: key, flag: nil, type: type, range: nil, choices: [], help: help, aliases: [], repeatable: false,
             current: { _ in nil }, defaultOverride: dflt, fromYAML: apply, fromFlag: nil, check: { _, _ in nil })
    }

    /// A string-valued option with its own way of applying (addresses, shorthand, paths).
    /// In YAML a list of strings applies each in turn; `repeatable` allows the flag several times.
    public static func custom(_ key: String, type: OptionType, flag: String? = nil, aliases: [String] = [],
                              repeatable: Bool = false, acceptsList: Bool = false, default dflt: String? = nil,
                              current: @escaping (Target) -> String? = { _ in nil }, help: String,
                              apply: @escaping (inout Target, String, OptionContext) throws -> Void) -> Self {
        Self(key: key, flag: pick(flag, key), type: type, range: nil, choices: [], help: help, aliases: aliases, repeatable: repeatable,
             current: current, defaultOverride: dflt,
             fromYAML: { t, v, src in
                 if let s = v as? String { return try apply(&t, s, src) }
                 if let i = v as? Int, type == .string { return try apply(&t, String(i), src) }
                 if acceptsList, let list = v as? [Any] {
                     let items = try list.map { item -> String in
                         guard let s = item as? String else { throw ConfigError("\(src) entries must be strings (got \(item))") }
                         return s
                     }
                     return try apply(&t, items.joined(separator: ","), src)
                 }
                 throw ConfigError("\(src) must be \(acceptsList ? "a string or a list of strings" : "a string") (got \(v))")
             },
             fromFlag: { t, s, src in
                 guard let s else { throw ConfigError("\(src) needs a value") }
                 try apply(&t, s, src)
             },
             check: { _, _ in nil })
    }
}

extension Double {
    /// Lets a `Double` key path be used where a `Double?` one is expected.
    var asOptional: Double? {
        get { self }
        set { if let newValue { self = newValue } }
    }
}

func format(_ d: Double) -> String {
    if d == d.rounded() && abs(d) < 1e15 { return String(Int64(d)) }
    return "\(d)"
}

func outOfRange(_ name: String, _ value: String, min: String, max: String, unit: String = "") -> String {
    "\(name) must be in \(min)...\(max)\(unit) (got \(value))"
}
