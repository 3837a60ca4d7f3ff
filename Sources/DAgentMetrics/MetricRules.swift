/// The kinds of metric the registry holds (Prometheus types).
public enum MetricKind: String, Sendable, Codable {
    case counter, gauge, histogram
}

/// A refused metric operation; the text names the metric, the value and the limit.
public struct MetricsError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Prometheus naming rules, checked before anything is registered.
public enum MetricRules {
    /// Labels the collector adds or histograms use: reserved.
    public static let reservedLabels: Set<String> = ["node", "le", "quantile"]

    /// nil if `name` is a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`, at most 200 bytes).
    public static func problem(withName name: String) -> String? {
        if name.isEmpty { return "is empty" }
        if name.utf8.count > 200 { return "is longer than 200 bytes" }
        for (i, c) in name.utf8.enumerated() {
            let ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c == 0x5f || c == 0x3a || (i > 0 && c >= 0x30 && c <= 0x39)
            if !ok { return "has '\(Character(Unicode.Scalar(c)))' at \(i); metric names match [a-zA-Z_:][a-zA-Z0-9_:]*" }
        }
        return nil
    }

    /// nil if `label` is a valid, unreserved label name.
    public static func problem(withLabel label: String) -> String? {
        if label.isEmpty { return "is empty" }
        if label.utf8.count > 100 { return "is longer than 100 bytes" }
        if label.hasPrefix("__") { return "starts with '__' (reserved by Prometheus)" }
        if reservedLabels.contains(label) { return "is reserved (node, le and quantile are added by dagent or Prometheus)" }
        for (i, c) in label.utf8.enumerated() {
            let ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c == 0x5f || (i > 0 && c >= 0x30 && c <= 0x39)
            if !ok { return "has '\(Character(Unicode.Scalar(c)))' at \(i); label names match [a-zA-Z_][a-zA-Z0-9_]*" }
        }
        return nil
    }

    /// Default histogram buckets (seconds-like, as prometheus_client's).
    public static let defaultBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]

    /// Checks bucket bounds: finite, strictly increasing, at most 64.
    public static func problem(withBuckets b: [Double]) -> String? {
        if b.isEmpty { return "has no buckets" }
        if b.count > 64 { return "has \(b.count) buckets, over 64" }
        if b.contains(where: { !$0.isFinite }) { return "has a bucket bound that is not finite (+Inf is added by itself)" }
        for i in 1..<b.count where b[i] <= b[i - 1] { return "has buckets that are not strictly increasing (\(b[i - 1]) then \(b[i]))" }
        return nil
    }
}
