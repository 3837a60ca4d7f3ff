import DAgentNode
import DAgentRouting
import Foundation
import Yams

/// The `metrics:` section of a node's config (its options are `MetricsOptions.table`):
///
/// ```yaml
/// metrics:
///   report_to: collector     # node whose collector plugin takes this node's reports
///   report_interval: 1.0     # seconds between flushes
///   report_timeout: 5.0      # seconds a flush may wait for the collector's answer
///   max_series: 1000         # label combinations per metric
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

    /// The section from a YAML config file (nil if it has none).
    public static func load(configFile path: String) throws -> MetricsSettings? {
        try MetricsSettings(document: try ConfigDocument.load(path: path))
    }

    /// The `metrics` section of an already parsed config file (nil if it has none).
    public init?(document: ConfigDocument) throws {
        guard let raw = document.section("metrics") else { return nil }
        self = try Self.parse(raw, source: document.path)
    }

    public static func parse(_ raw: Any, source: String = "config") throws -> MetricsSettings {
        guard let map = raw as? [String: Any] else { throw ConfigError("\(source): metrics must be a mapping of options") }
        var s = MetricsSettings()
        try MetricsOptions.table.apply(yaml: map, to: &s, source: source)
        try s.validate()
        return s
    }

    /// Checks each option; the message names it.
    public func validate() throws {
        try MetricsOptions.table.validate(self)
        if let n = reportTo, let p = NameRules.problem(with: n) { throw ConfigError("metrics.report_to: \(p)") }
    }
}

/// The `metrics.` options: YAML keys under `metrics:`, flags of `dagent run`, rows of docs/config.md.
public enum MetricsOptions {
    public static let table = OptionTable<MetricsSettings>(section: "metrics.", defaults: MetricsSettings(), [
        .optionalString("report_to", \.reportTo, help: "send this node's metrics to the collector plugin on this node (statsd-style changes over the tree)"),
        .double("report_interval", \.reportInterval, min: 0.05, max: 3600, help: "time between two reports to `report_to`"),
        .double("report_timeout", \.reportTimeout, min: 0.001, max: 3600, help: "a report the collector has not answered within this fails (its changes stay for the next one)"),
        .int("max_series", \.maxSeries, min: 1, max: 10_000_000, flag: "metrics-max-series", help: "label combinations per metric; a new series past it is refused with an error"),
        .int("max_families", \.maxFamilies, min: 1, max: 10_000_000, flag: "metrics-max-families", help: "metric names per node"),
    ])
}
