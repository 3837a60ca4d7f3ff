import CoreMetrics

/// swift-metrics on a `MetricsRegistry`: `Counter`, `Gauge`/`Recorder`,
/// `Meter` and `Timer` (a histogram in seconds) made with this factory land in
/// the node's registry. Names are the metric names (`dagent_..._total` for
/// counters); `registry.document(name, help:, buckets:)` gives help and buckets.
/// A handler that the registry refuses (bad name, kind conflict, series limit)
/// does nothing and counts in `dagent_metrics_refused_total`: swift-metrics
/// handlers cannot throw.
public struct DAgentMetricsFactory: MetricsFactory {
    public let registry: MetricsRegistry

    public init(registry: MetricsRegistry) { self.registry = registry }

    final class CounterBox: CounterHandler, FloatingPointCounterHandler, @unchecked Sendable {
        let registry: MetricsRegistry, name: String, labels: [(String, String)]
        init(_ r: MetricsRegistry, _ n: String, _ l: [(String, String)]) { registry = r; name = n; labels = l; try? r.touch(n, kind: .counter, labels: l) }
        func increment(by amount: Int64) { try? registry.add(name, Double(amount), labels: labels) }
        func increment(by amount: Double) { try? registry.add(name, amount, labels: labels) }
        func reset() {}
    }

    final class GaugeBox: RecorderHandler, MeterHandler, @unchecked Sendable {
        let registry: MetricsRegistry, name: String, labels: [(String, String)]
        init(_ r: MetricsRegistry, _ n: String, _ l: [(String, String)]) { registry = r; name = n; labels = l; try? r.touch(n, kind: .gauge, labels: l) }
        func record(_ value: Int64) { try? registry.set(name, Double(value), labels: labels) }
        func record(_ value: Double) { try? registry.set(name, value, labels: labels) }
        func set(_ value: Int64) { record(value) }
        func set(_ value: Double) { record(value) }
        func increment(by amount: Double) { try? registry.add(name, amount, labels: labels, kind: .gauge) }
        func decrement(by amount: Double) { try? registry.add(name, -amount, labels: labels, kind: .gauge) }
    }

    final class HistogramBox: RecorderHandler, TimerHandler, @unchecked Sendable {
        let registry: MetricsRegistry, name: String, labels: [(String, String)], scale: Double
        init(_ r: MetricsRegistry, _ n: String, _ l: [(String, String)], scale: Double) {
            registry = r; name = n; labels = l; self.scale = scale
            try? r.touch(n, kind: .histogram, labels: l)
        }
        func record(_ value: Int64) { try? registry.observe(name, Double(value) * scale, labels: labels) }
        func record(_ value: Double) { try? registry.observe(name, value * scale, labels: labels) }
        func recordNanoseconds(_ duration: Int64) { try? registry.observe(name, Double(duration) / 1e9, labels: labels) }
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> CounterHandler {
        CounterBox(registry, label, dimensions)
    }
    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> FloatingPointCounterHandler {
        CounterBox(registry, label, dimensions)
    }
    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> RecorderHandler {
        aggregate ? HistogramBox(registry, label, dimensions, scale: 1) : GaugeBox(registry, label, dimensions)
    }
    public func makeMeter(label: String, dimensions: [(String, String)]) -> MeterHandler {
        GaugeBox(registry, label, dimensions)
    }
    public func makeTimer(label: String, dimensions: [(String, String)]) -> TimerHandler {
        HistogramBox(registry, label, dimensions, scale: 1e-9)
    }
    public func destroyCounter(_ handler: CounterHandler) {}
    public func destroyFloatingPointCounter(_ handler: FloatingPointCounterHandler) {}
    public func destroyRecorder(_ handler: RecorderHandler) {}
    public func destroyMeter(_ handler: MeterHandler) {}
    public func destroyTimer(_ handler: TimerHandler) {}
}
