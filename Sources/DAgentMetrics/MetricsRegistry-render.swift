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

    /// The same text as UTF-8 bytes (what `/metrics` sends, without a String in between).
    public func renderBytes(_ format: MetricsFormat = .prometheusText, extraLabels: [(String, String)] = []) -> [UInt8] {
        var out: [UInt8] = []
        MetricsText.write(snapshot(), format, extraLabels: extraLabels, into: &out)
        return out
    }
}

/// The renderer, usable on any list of families. It writes UTF-8 bytes straight into one array:
/// each family's name and label names are encoded once, each series' label values are escaped
/// byte by byte (`\\`, `\"`, `\n` are ASCII, so never inside a multi-byte character).
public enum MetricsText {
    public static func render(_ families: [MetricFamily], _ format: MetricsFormat, extraLabels: [(String, String)] = []) -> String {
        var out: [UInt8] = []
        write(families, format, extraLabels: extraLabels, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    public static func write(_ families: [MetricFamily], _ format: MetricsFormat, extraLabels: [(String, String)] = [],
                             into out: inout [UInt8]) {
        out.reserveCapacity(out.count + families.reduce(0) { $0 + 64 + $1.series.count * 64 })
        // `name="value",` of the extra labels, the same on every series
        var extra: [UInt8] = []
        for (name, value) in extraLabels {
            extra.append(contentsOf: name.utf8)
            extra.append(contentsOf: #"=""#.utf8)
            appendEscaped(value, to: &extra)
            extra.append(contentsOf: #"","#.utf8)
        }
        for f in families {
            let familyName = format == .openMetrics && f.kind == .counter && f.name.hasSuffix("_total")
                ? String(f.name.dropLast(6)) : f.name
            if !f.help.isEmpty || format == .prometheusText {
                out.append(contentsOf: "# HELP \(familyName) \(escapeHelp(f.help.isEmpty ? f.name : f.help))\n".utf8)
            }
            out.append(contentsOf: "# TYPE \(familyName) \(f.kind.rawValue)\n".utf8)
            let labelNames = f.labelNames.map { Array($0.utf8) + Array(#"=""#.utf8) }
            // (key, value) pairs sorted by label values: no dictionary lookup per series
            let series = f.series.sorted { labelOrder($0.key, $1.key) }
            var labels: [UInt8] = []   // `{...` without the closing brace: the series' labels
            for (key, v) in series {
                labels.removeAll(keepingCapacity: true)
                labels.append(UInt8(ascii: "{"))
                labels.append(contentsOf: extra)
                for (i, name) in labelNames.enumerated() {
                    labels.append(contentsOf: name)
                    appendEscaped(key[i], to: &labels)
                    labels.append(contentsOf: #"","#.utf8)
                }
                let bare = labels.count == 1
                if !bare { labels.removeLast() }   // the last comma
                switch f.kind {
                case .counter, .gauge:
                    out.append(contentsOf: f.name.utf8)
                    if !bare { out.append(contentsOf: labels); out.append(UInt8(ascii: "}")) }
                    out.append(UInt8(ascii: " "))
                    appendNumber(v.value, to: &out)
                    out.append(UInt8(ascii: "\n"))
                case .histogram:
                    var cumulative: UInt64 = 0
                    for (i, c) in v.buckets.enumerated() {
                        cumulative &+= c
                        out.append(contentsOf: f.name.utf8)
                        out.append(contentsOf: "_bucket".utf8)
                        out.append(contentsOf: labels)
                        out.append(contentsOf: (bare ? #"le=""# : #",le=""#).utf8)
                        if i < f.buckets.count { appendNumber(f.buckets[i], to: &out) } else { out.append(contentsOf: "+Inf".utf8) }
                        out.append(contentsOf: #""} "#.utf8)
                        appendInteger(cumulative, to: &out)
                        out.append(UInt8(ascii: "\n"))
                    }
                    out.append(contentsOf: f.name.utf8)
                    out.append(contentsOf: "_sum".utf8)
                    if !bare { out.append(contentsOf: labels); out.append(UInt8(ascii: "}")) }
                    out.append(UInt8(ascii: " "))
                    appendNumber(v.sum, to: &out)
                    out.append(UInt8(ascii: "\n"))
                    out.append(contentsOf: f.name.utf8)
                    out.append(contentsOf: "_count".utf8)
                    if !bare { out.append(contentsOf: labels); out.append(UInt8(ascii: "}")) }
                    out.append(UInt8(ascii: " "))
                    appendInteger(v.count, to: &out)
                    out.append(UInt8(ascii: "\n"))
                }
            }
        }
        if format == .openMetrics { out.append(contentsOf: "# EOF\n".utf8) }
    }

    /// Label values in order, element by element (what `lexicographicallyPrecedes` gives, without its
    /// generic overhead: one String comparison per element in the usual case).
    @inline(__always)
    static func labelOrder(_ a: [String], _ b: [String]) -> Bool {
        let n = Swift.min(a.count, b.count)
        var i = 0
        while i < n {
            if a[i] != b[i] { return a[i] < b[i] }
            i += 1
        }
        return a.count < b.count
    }

    /// A label value with `\\`, `"` and newline escaped.
    static func appendEscaped(_ s: String, to out: inout [UInt8]) {
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
            case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\n"): out.append(contentsOf: #"\n"#.utf8)
            default: out.append(b)
            }
        }
    }

    static func escapeLabel(_ s: String) -> String {
        var out: [UInt8] = []
        appendEscaped(s, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func escapeHelp(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func appendInteger(_ v: UInt64, to out: inout [UInt8]) {
        if v == 0 { out.append(UInt8(ascii: "0")); return }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0, x = v
        withUnsafeMutableBytes(of: &digits) { d in
            while x > 0 { d[n] = UInt8(ascii: "0") + UInt8(x % 10); x /= 10; n += 1 }
            for i in stride(from: n - 1, through: 0, by: -1) { out.append(d[i]) }
        }
    }

    /// `number(v)`'s bytes; integral values (the usual case) without a String.
    static func appendNumber(_ v: Double, to out: inout [UInt8]) {
        if v == v.rounded(), abs(v) < 1e15 {
            if v < 0 { out.append(UInt8(ascii: "-")) }
            appendInteger(UInt64(abs(v)), to: &out)
            return
        }
        out.append(contentsOf: number(v).utf8)
    }

    /// Integral values without a fraction, others in Swift's shortest form, and +Inf/-Inf/NaN.
    public static func number(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }
}
