import Foundation

/// The changes one node sends its collector (and the Python side sends its
/// node's registry), aggregated statsd-style: counters as the sum of their
/// increments, gauges as their last value, histograms as merged bucket
/// counts. JSON:
///
/// ```json
/// {"v":1,"node":"a1","incarnation":"8f..","seq":7,
///  "families":[{"name":"jobs_total","type":"counter","help":"..","labels":["kind"],
///               "series":[{"l":["x"],"d":5}]},
///              {"name":"temp","type":"gauge","labels":[],"series":[{"l":[],"v":21.5}]},
///              {"name":"lat_seconds","type":"histogram","labels":[],"buckets":[0.1,1],
///               "series":[{"l":[],"b":[3,1,0],"s":0.9,"c":4}]}]}
/// ```
public struct MetricsReport: Sendable {
    public var node = ""
    /// Changes with each process start: a collector can tell a restart from a repeat.
    public var incarnation = ""
    public var seq: UInt64 = 0
    public var families: [MetricFamily] = []
    /// Sent by a node that stops cleanly: the collector marks it down at once.
    public var final = false

    public init() {}

    public var isEmpty: Bool { families.allSatisfy { $0.series.isEmpty } }

    public func json() -> Data {
        var fams: [[String: Any]] = []
        for f in families where !f.series.isEmpty {
            var series: [[String: Any]] = []
            for (key, v) in f.series {
                switch f.kind {
                case .counter: series.append(["l": key, "d": v.value])
                case .gauge: series.append(["l": key, "v": v.value])
                case .histogram: series.append(["l": key, "b": v.buckets, "s": v.sum, "c": v.count])
                }
            }
            var obj: [String: Any] = ["name": f.name, "type": f.kind.rawValue, "labels": f.labelNames, "series": series]
            if !f.help.isEmpty { obj["help"] = f.help }
            if f.kind == .histogram { obj["buckets"] = f.buckets }
            fams.append(obj)
        }
        var top: [String: Any] = ["v": 1, "node": node, "incarnation": incarnation, "seq": seq, "families": fams]
        if final { top["final"] = true }
        return (try? JSONSerialization.data(withJSONObject: top)) ?? Data("{}".utf8)
    }

    /// Applies a JSON report to `registry`; returns one line per refused family or series (empty: all applied).
    @discardableResult
    public static func apply(json data: Data, to registry: MetricsRegistry) -> [String] {
        guard let top = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            return ["not a JSON object"]
        }
        guard let fams = top["families"] as? [[String: Any]] else { return ["no families list"] }
        var problems: [String] = []
        for f in fams {
            guard let name = f["name"] as? String, let type = (f["type"] as? String).flatMap(MetricKind.init(rawValue:)) else {
                problems.append("a family without a name or a known type")
                continue
            }
            let labelNames = f["labels"] as? [String] ?? []
            let help = f["help"] as? String ?? ""
            let buckets = (f["buckets"] as? [NSNumber])?.map(\.doubleValue)
            do {
                try registry.declare(name, kind: type, help: help, labelNames: labelNames.sorted(), buckets: buckets)
            } catch {
                problems.append(error.description)
                continue
            }
            for s in f["series"] as? [[String: Any]] ?? [] {
                let values = s["l"] as? [String] ?? []
                guard values.count == labelNames.count else {
                    problems.append("metric '\(name)': a series has \(values.count) label values for \(labelNames.count) labels")
                    continue
                }
                let labels = Array(zip(labelNames, values))
                do {
                    switch type {
                    case .counter: try registry.add(name, (s["d"] as? NSNumber)?.doubleValue ?? 0, labels: labels)
                    case .gauge: try registry.set(name, (s["v"] as? NSNumber)?.doubleValue ?? 0, labels: labels)
                    case .histogram:
                        try registry.merge(name, buckets: ((s["b"] as? [NSNumber]) ?? []).map(\.uint64Value),
                                           sum: (s["s"] as? NSNumber)?.doubleValue ?? 0,
                                           count: (s["c"] as? NSNumber)?.uint64Value ?? 0, labels: labels)
                    }
                } catch {
                    problems.append(error.description)
                }
            }
        }
        return problems
    }
}

/// What changed in a registry since the last report the collector took.
/// Holds one value per series (the last acknowledged one), so its memory is
/// bounded by the registry's own, however long the collector is away.
public struct MetricsDiff: Sendable {
    var acked: [String: [[String]: SeriesValue]] = [:]

    public init() {}

    /// The changes from the acknowledged state to `snapshot`.
    public func changes(_ snapshot: [MetricFamily]) -> [MetricFamily] {
        var out: [MetricFamily] = []
        for f in snapshot {
            var d = f
            d.series = [:]
            let before = acked[f.name] ?? [:]
            for (key, v) in f.series {
                let old = before[key]
                switch f.kind {
                case .counter:
                    let delta = v.value - (old?.value ?? 0)
                    if delta > 0 { d.series[key] = SeriesValue(value: delta) }
                case .gauge:
                    if old == nil || old!.value != v.value { d.series[key] = v }
                case .histogram:
                    guard v.count != (old?.count ?? 0) else { continue }
                    var c = v
                    if let old, old.buckets.count == v.buckets.count {
                        c.buckets = zip(v.buckets, old.buckets).map { $0 &- $1 }
                        c.sum = v.sum - old.sum
                        c.count = v.count &- old.count
                    }
                    d.series[key] = c
                }
            }
            if !d.series.isEmpty { out.append(d) }
        }
        return out
    }

    /// Marks the series of `chunk` (a part of `changes(snapshot)`) as taken, at their values in `snapshot`.
    public mutating func acknowledge(_ chunk: [MetricFamily], of snapshot: [MetricFamily]) {
        let byName = Dictionary(snapshot.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for f in chunk {
            guard let full = byName[f.name] else { continue }
            for key in f.series.keys { acked[f.name, default: [:]][key] = full.series[key] }
        }
    }

    /// Splits changes into chunks whose JSON stays under about `maxBytes`.
    public static func chunks(_ changes: [MetricFamily], maxBytes: Int) -> [[MetricFamily]] {
        var out: [[MetricFamily]] = []
        var current: [MetricFamily] = []
        var size = 200
        for f in changes {
            var part = f
            part.series = [:]
            let base = 120 + f.name.utf8.count + f.help.utf8.count + f.labelNames.reduce(0) { $0 + $1.utf8.count + 3 } + f.buckets.count * 24
            size += base
            for (key, v) in f.series {
                let cost = 48 + key.reduce(0) { $0 + $1.utf8.count + 3 } + v.buckets.count * 21
                if size + cost > maxBytes && (!part.series.isEmpty || !current.isEmpty) {
                    if !part.series.isEmpty { current.append(part) }
                    out.append(current)
                    current = []
                    part.series = [:]
                    size = 200 + base
                }
                part.series[key] = v
                size += cost
            }
            if !part.series.isEmpty { current.append(part) }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// Marks `snapshot` as taken by the collector.
    public mutating func acknowledge(_ snapshot: [MetricFamily]) {
        acked = [:]
        for f in snapshot { acked[f.name] = f.series }
    }
}
