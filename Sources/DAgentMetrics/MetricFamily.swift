/// One series' value. Counters and gauges use `value`; histograms use
/// `buckets` (non-cumulative counts per bound, then +Inf), `sum` and `count`.
public struct SeriesValue: Sendable, Equatable {
    public var value: Double = 0
    public var buckets: [UInt64] = []
    public var sum: Double = 0
    public var count: UInt64 = 0
}

/// A metric family: its kind, help, label names, buckets and series.
/// Series are keyed by their label values in `labelNames` order.
public struct MetricFamily: Sendable {
    public let name: String
    public let kind: MetricKind
    public let help: String
    public let labelNames: [String]
    public let buckets: [Double]
    public internal(set) var series: [[String]: SeriesValue] = [:]

    init(name: String, kind: MetricKind, help: String, labelNames: [String], buckets: [Double]) {
        self.name = name
        self.kind = kind
        self.help = help
        self.labelNames = labelNames
        self.buckets = buckets
    }

    func emptyValue() -> SeriesValue {
        kind == .histogram ? SeriesValue(buckets: Array(repeating: 0, count: buckets.count + 1)) : SeriesValue()
    }

    /// Index of the bucket `v` falls in (the last one is +Inf).
    func bucketIndex(_ v: Double) -> Int {
        var lo = 0, hi = buckets.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if v <= buckets[mid] { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }
}
