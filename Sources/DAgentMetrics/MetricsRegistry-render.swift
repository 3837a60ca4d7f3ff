import Foundation

/// Prometheus text exposition (0.0.4) and OpenMetrics 1.0 of a registry.
public enum MetricsFormat: Sendable {
    case prometheusText
    case openMetrics

    public var contentType: String {
        switch self {
        case .prometheusText: return "text/plain; version=0.0.4; charset=utf-8"
        case .openMetrics: return "application/openmetrics-text; version=1.0.0; charset=utf-8"
        }
    }

    /// OpenMetrics when the `Accept` header asks for it, else text 0.0.4.
    public static func negotiate(accept: String?) -> MetricsFormat {
        guard let accept, accept.contains("application/openmetrics-text") else { return .prometheusText }
        return .openMetrics
    }
}

extension MetricsRegistry {
    /// Renders every family; `extraLabels` (e.g. `node`) go first on every series.
    public func render(_ format: MetricsFormat = .prometheusText, extraLabels: [(String, String)] = []) -> String {
        MetricsText.render(snapshot(), format, extraLabels: extraLabels)
    }
}

/// The renderer, usable on any list of families.
public enum MetricsText {
    public static func render(_ families: [MetricFamily], _ format: MetricsFormat, extraLabels: [(String, String)] = []) -> String {
        var out = ""
        out.reserveCapacity(families.reduce(0) { $0 + 64 + $1.series.count * 64 })
        for f in families {
            let familyName = format == .openMetrics && f.kind == .counter && f.name.hasSuffix("_total")
                ? String(f.name.dropLast(6)) : f.name
            if !f.help.isEmpty || format == .prometheusText {
                out += "# HELP \(familyName) \(escapeHelp(f.help.isEmpty ? f.name : f.help))\n"
            }
            out += "# TYPE \(familyName) \(f.kind.rawValue)\n"
            let keys = f.series.keys.sorted { $0.lexicographicallyPrecedes($1) }
            for key in keys {
                let v = f.series[key]!
                var pairs = extraLabels
                for (i, name) in f.labelNames.enumerated() { pairs.append((name, key[i])) }
                switch f.kind {
                case .counter, .gauge:
                    out += f.name + labelText(pairs) + " " + number(v.value) + "\n"
                case .histogram:
                    var cumulative: UInt64 = 0
                    for (i, c) in v.buckets.enumerated() {
                        cumulative &+= c
                        let le = i < f.buckets.count ? number(f.buckets[i]) : "+Inf"
                        out += f.name + "_bucket" + labelText(pairs + [("le", le)]) + " \(cumulative)\n"
                    }
                    out += f.name + "_sum" + labelText(pairs) + " " + number(v.sum) + "\n"
                    out += f.name + "_count" + labelText(pairs) + " \(v.count)\n"
                }
            }
        }
        if format == .openMetrics { out += "# EOF\n" }
        return out
    }

    static func labelText(_ pairs: [(String, String)]) -> String {
        guard !pairs.isEmpty else { return "" }
        return "{" + pairs.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
    }

    static func escapeLabel(_ s: String) -> String {
        guard s.contains(where: { $0 == "\\" || $0 == "\"" || $0 == "\n" }) else { return s }
        return s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    static func escapeHelp(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// Integral values without a fraction, others in Swift's shortest form, and +Inf/-Inf/NaN.
    public static func number(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }
}
