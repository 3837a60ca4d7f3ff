import DAgentRouting
import Foundation
import Yams

/// The `metrics:` section of a node's config:
///
/// ```yaml
/// metrics:
///   report_to: collector     # node whose collector plugin takes this node's reports
///   report_interval: 1.0     # seconds between flushes
///   report_timeout: 5.0      # seconds a flush may wait for the collector's answer
///   max_series: 1000         # label combinations per metric (metrics_max_series)
///   max_families: 10000
/// ```
public struct MetricsSettings: Sendable, Equatable {
    public var reportTo: String?
    public var reportInterval: Double = 1.0
    public var reportTimeout: Double = 5.0
    public var maxSeries = 1000
    public var maxFamilies = 10_000

    public init() {}

    public var registryOptions: MetricsRegistry.Options {
        var o = MetricsRegistry.Options()
        o.maxSeriesPerMetric = maxSeries
        o.maxFamilies = maxFamilies
        return o
    }

    static let keys: Set<String> = ["report_to", "report_interval", "report_timeout", "max_series", "max_families"]

    /// The section from a YAML config file (nil if it has none).
    public static func load(configFile path: String) throws -> MetricsSettings? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ConfigError("cannot read config file '\(path)'") }
        guard let top = (try? Yams.load(yaml: text)) as? [String: Any], let raw = top["metrics"] else { return nil }
        return try parse(raw, source: path)
    }

    public static func parse(_ raw: Any, source: String = "config") throws -> MetricsSettings {
        guard let map = raw as? [String: Any] else { throw ConfigError("\(source): metrics must be a mapping of options") }
        for k in map.keys where !keys.contains(k) {
            throw ConfigError("\(source): unknown option 'metrics.\(k)' (known: \(keys.sorted().joined(separator: ", ")))")
        }
        var s = MetricsSettings()
        if let v = map["report_to"] {
            guard let name = v as? String else { throw ConfigError("\(source): metrics.report_to must be a node name") }
            s.reportTo = name
        }
        func num(_ k: String) throws -> Double? {
            guard let v = map[k] else { return nil }
            if let d = v as? Double { return d }
            if let i = v as? Int { return Double(i) }
            throw ConfigError("\(source): metrics.\(k) must be a number (got \(v))")
        }
        func int(_ k: String) throws -> Int? {
            guard let v = map[k] else { return nil }
            if let i = v as? Int { return i }
            throw ConfigError("\(source): metrics.\(k) must be an integer (got \(v))")
        }
        if let v = try num("report_interval") { s.reportInterval = v }
        if let v = try num("report_timeout") { s.reportTimeout = v }
        if let v = try int("max_series") { s.maxSeries = v }
        if let v = try int("max_families") { s.maxFamilies = v }
        try s.validate()
        return s
    }

    /// Checks each option; the message names it.
    public func validate() throws(ConfigError) {
        if let n = reportTo, let p = NameRules.problem(with: n) { throw ConfigError("metrics.report_to: \(p)") }
        if !(reportInterval >= 0.05) { throw ConfigError("metrics.report_interval must be >= 0.05 s (got \(reportInterval))") }
        if !(reportTimeout > 0) { throw ConfigError("metrics.report_timeout must be > 0 (got \(reportTimeout))") }
        if maxSeries < 1 { throw ConfigError("metrics.max_series must be >= 1 (got \(maxSeries))") }
        if maxFamilies < 1 { throw ConfigError("metrics.max_families must be >= 1 (got \(maxFamilies))") }
    }
}

extension MetricsSettings {
    /// The flags of `dagent run` that this section reads (each takes a value).
    public static let flags: Set<String> = ["--report-to", "--report-interval"]

    /// `args` without the metrics flags and their values (`--report-to X`, `--report-to=X`).
    public static func withoutFlags(_ args: [String]) -> [String] {
        var out: [String] = []
        var i = 0
        while i < args.count {
            let a = args[i]
            if flags.contains(a) { i += 2; continue }
            if flags.contains(where: { a.hasPrefix($0 + "=") }) { i += 1; continue }
            out.append(a)
            i += 1
        }
        return out
    }
}
