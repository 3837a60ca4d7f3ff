import NIOConcurrencyHelpers

/// One node's metrics: counters, gauges and histograms with labels, shared
/// by the core's own figures (through swift-metrics, see
/// `MetricsRegistry-factory.swift`) and what Python reports (`dagent.report`).
///
/// Every operation checks Prometheus naming, the kind and label names a
/// family was declared with, and `maxSeriesPerMetric`; a refusal is a
/// `MetricsError` naming the metric and the limit, never a trap, and leaves
/// the registry as it was. Safe from any thread (one lock).
public final class MetricsRegistry: @unchecked Sendable {
    /// The registry's named limits.
    public struct Options: Sendable {
        /// `metrics_max_series`: label combinations per metric; a new series past it is refused.
        public var maxSeriesPerMetric = 1000
        /// `metrics_max_families`: metric names per node.
        public var maxFamilies = 10_000
        public init() {}
    }

    public let options: Options
    let lock = NIOLock()
    var families: [String: MetricFamily] = [:]
    /// Help and buckets for families made through swift-metrics (which has no help text).
    var documented: [String: (help: String, buckets: [Double]?)] = [:]
    /// Refusals so far (also exported as `dagent_metrics_refused_total`).
    public private(set) var refused: UInt64 = 0

    public init(options: Options = Options()) {
        self.options = options
    }

    func locked<T>(_ body: () throws(MetricsError) -> T) throws(MetricsError) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Gives the help text (and histogram buckets) of a metric that swift-metrics code will create.
    public func document(_ name: String, help: String, buckets: [Double]? = nil) {
        lock.withLock { documented[name] = (help, buckets) }
    }

    /// Declares a family (or checks an existing one agrees). `help` and
    /// `buckets` of the first declaration win.
    @discardableResult
    public func declare(_ name: String, kind: MetricKind, help: String = "", labelNames: [String] = [],
                        buckets: [Double]? = nil) throws(MetricsError) -> MetricFamily {
        try locked { () throws(MetricsError) -> MetricFamily in try declareLocked(name, kind, help, labelNames, buckets) }
    }

    func declareLocked(_ name: String, _ kind: MetricKind, _ help: String, _ labelNames: [String],
                       _ buckets: [Double]?) throws(MetricsError) -> MetricFamily {
        if let f = families[name] {
            if f.kind != kind {
                refused += 1
                throw MetricsError("metric '\(name)' is a \(f.kind.rawValue); it cannot be used as a \(kind.rawValue)")
            }
            if f.labelNames != labelNames {
                refused += 1
                throw MetricsError("metric '\(name)' has labels [\(f.labelNames.joined(separator: ", "))]; got [\(labelNames.joined(separator: ", "))]")
            }
            return f
        }
        if let p = MetricRules.problem(withName: name) { refused += 1; throw MetricsError("metric name '\(name)' \(p)") }
        if kind == .counter && !name.hasSuffix("_total") {
            refused += 1
            throw MetricsError("counter '\(name)' must end in _total (Prometheus convention)")
        }
        if kind != .counter && name.hasSuffix("_total") {
            refused += 1
            throw MetricsError("\(kind.rawValue) '\(name)' must not end in _total (that suffix is for counters)")
        }
        for l in labelNames {
            if let p = MetricRules.problem(withLabel: l) { refused += 1; throw MetricsError("label '\(l)' of metric '\(name)' \(p)") }
        }
        if Set(labelNames).count != labelNames.count { refused += 1; throw MetricsError("metric '\(name)' repeats a label name") }
        let b = buckets ?? documented[name]?.buckets ?? (kind == .histogram ? MetricRules.defaultBuckets : [])
        if kind == .histogram, let p = MetricRules.problem(withBuckets: b) { refused += 1; throw MetricsError("histogram '\(name)' \(p)") }
        if families.count >= options.maxFamilies {
            refused += 1
            throw MetricsError("metric '\(name)' would be family \(families.count + 1), over metrics_max_families=\(options.maxFamilies)")
        }
        let doc = documented[name]
        let f = MetricFamily(name: name, kind: kind, help: help.isEmpty ? (doc?.help ?? "") : help, labelNames: labelNames,
                             buckets: kind == .histogram ? (doc?.buckets ?? b) : b)
        families[name] = f
        return f
    }

    /// Splits `labels` into the family's order (declaring the family on first use).
    func seriesKey(_ name: String, _ kind: MetricKind, _ labels: [(String, String)], help: String = "",
                   buckets: [Double]? = nil) throws(MetricsError) -> [String] {
        let sorted = labels.sorted { $0.0 < $1.0 }
        let values = sorted.map(\.1)
        // Fast path: an existing series (no copy of the family is held while it is changed).
        if families[name]?.series[values] != nil, families[name]!.kind == kind, families[name]!.labelNames.count == values.count,
           families[name]!.labelNames == sorted.map(\.0) {
            return values
        }
        let empty = try declareLocked(name, kind, help, sorted.map(\.0), buckets).emptyValue()
        let count = families[name]!.series.count
        if families[name]!.series[values] == nil {
            if count >= options.maxSeriesPerMetric {
                refused += 1
                throw MetricsError("metric '\(name)' already has \(count) series (metrics_max_series=\(options.maxSeriesPerMetric)); refused the new one \(Self.describe(sorted))")
            }
            families[name]!.series[values] = empty
        }
        return values
    }

    static func describe(_ labels: [(String, String)]) -> String {
        "{" + labels.map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",") + "}"
    }

    /// Adds `delta` to a counter (delta >= 0) or a gauge (any sign).
    public func add(_ name: String, _ delta: Double, labels: [(String, String)] = [], kind: MetricKind = .counter,
                    help: String = "") throws(MetricsError) {
        try locked { () throws(MetricsError) in
            if kind == .counter && !(delta >= 0) {
                refused += 1
                throw MetricsError("counter '\(name)' can only go up (got \(delta)); use a gauge")
            }
            if !delta.isFinite { refused += 1; throw MetricsError("metric '\(name)': \(delta) is not a finite number") }
            let key = try seriesKey(name, kind, labels, help: help)
            families[name]!.series[key]!.value += delta
        }
    }

    /// Creates the series (at zero) if it does not exist yet.
    public func touch(_ name: String, kind: MetricKind, labels: [(String, String)] = [], help: String = "") throws(MetricsError) {
        try locked { () throws(MetricsError) in _ = try seriesKey(name, kind, labels, help: help) }
    }

    /// Sets a gauge.
    public func set(_ name: String, _ value: Double, labels: [(String, String)] = [], help: String = "") throws(MetricsError) {
        try locked { () throws(MetricsError) in
            if value.isNaN { refused += 1; throw MetricsError("gauge '\(name)': NaN is not a value") }
            let key = try seriesKey(name, .gauge, labels, help: help)
            families[name]!.series[key]!.value = value
        }
    }

    /// Records one observation in a histogram.
    public func observe(_ name: String, _ value: Double, labels: [(String, String)] = [], help: String = "",
                        buckets: [Double]? = nil) throws(MetricsError) {
        try locked { () throws(MetricsError) in
            if !value.isFinite { refused += 1; throw MetricsError("histogram '\(name)': \(value) is not a finite number") }
            let key = try seriesKey(name, .histogram, labels, help: help, buckets: buckets)
            let i = families[name]!.bucketIndex(value)
            families[name]!.series[key]!.buckets[i] += 1
            families[name]!.series[key]!.sum += value
            families[name]!.series[key]!.count += 1
        }
    }

    /// Merges histogram counts (per bucket, non-cumulative, +Inf last), as a reporter flush carries them.
    public func merge(_ name: String, buckets counts: [UInt64], sum: Double, count: UInt64,
                      labels: [(String, String)] = []) throws(MetricsError) {
        try locked { () throws(MetricsError) in
            let key = try seriesKey(name, .histogram, labels)
            guard families[name]!.series[key]!.buckets.count == counts.count else {
                refused += 1
                throw MetricsError("histogram '\(name)' has \(families[name]!.buckets.count) buckets; a merge brought \(counts.count - 1)")
            }
            for i in counts.indices { families[name]!.series[key]!.buckets[i] &+= counts[i] }
            families[name]!.series[key]!.sum += sum
            families[name]!.series[key]!.count &+= count
        }
    }

    /// A copy of every family, sorted by name.
    public func snapshot() -> [MetricFamily] {
        lock.withLock { families.values.sorted { $0.name < $1.name } }
    }

    /// The value of one counter or gauge series (tests, the reporter).
    public func value(_ name: String, labels: [(String, String)] = []) -> Double? {
        let key = labels.sorted { $0.0 < $1.0 }.map(\.1)
        return lock.withLock { families[name]?.series[key]?.value }
    }

    /// Removes the series for which `predicate(family, labelValues)` is true; empty families stay.
    @discardableResult
    public func removeSeries(where predicate: (MetricFamily, [String]) -> Bool) -> Int {
        lock.withLock {
            var n = 0
            for (name, f) in families {
                for key in f.series.keys where predicate(f, key) {
                    families[name]!.series[key] = nil
                    n += 1
                }
            }
            return n
        }
    }

    /// Number of series over all families.
    public var seriesCount: Int { lock.withLock { families.values.reduce(0) { $0 + $1.series.count } } }
}
