import DAgentMetrics
import XCTest

/// The byte renderer (MetricsRegistry-render.swift): exact lines for escaped label values, extra
/// labels, labelled and bare histograms, odd numbers, and the same text from `render` and `renderBytes`.
final class MetricsTextTests: XCTestCase {
    func testExactLinesEscapesAndNumbers() throws {
        let r = MetricsRegistry()
        try r.set("g", 1.5, labels: [("path", #"a\b "q" "# + "x\ny ü")])
        try r.set("g", -3, labels: [("path", "")])
        try r.set("big", 1e21)
        try r.set("tiny", 1e-7)
        try r.set("neg_inf", -.infinity)
        try r.add("n_total", 12_345_678_901, labels: [("k", "v")])
        try r.observe("h_seconds", 0.05, labels: [("op", "get")], buckets: [0.1, 2.5])
        try r.observe("h_seconds", 7, labels: [("op", "get")], buckets: [0.1, 2.5])
        try r.observe("b_seconds", 1, buckets: [0.5])
        let text = r.render(extraLabels: [("node", #"n"1"#)])
        for line in [
            #"g{node="n\"1",path="a\\b \"q\" x\ny ü"} 1.5"#,
            #"g{node="n\"1",path=""} -3"#,
            #"big{node="n\"1"} 1e+21"#,
            #"tiny{node="n\"1"} 1e-07"#,
            #"neg_inf{node="n\"1"} -Inf"#,
            #"n_total{node="n\"1",k="v"} 12345678901"#,
            #"h_seconds_bucket{node="n\"1",op="get",le="0.1"} 1"#,
            #"h_seconds_bucket{node="n\"1",op="get",le="2.5"} 1"#,
            #"h_seconds_bucket{node="n\"1",op="get",le="+Inf"} 2"#,
            #"h_seconds_sum{node="n\"1",op="get"} 7.05"#,
            #"h_seconds_count{node="n\"1",op="get"} 2"#,
            #"b_seconds_bucket{node="n\"1",le="0.5"} 0"#,
        ] {
            XCTAssertTrue(text.contains("\n" + line + "\n"), "missing \(line) in\n\(text)")
        }
        let bare = r.render()
        for line in [#"b_seconds_bucket{le="0.5"} 0"#, #"b_seconds_bucket{le="+Inf"} 1"#, "b_seconds_sum 1", "b_seconds_count 1", "big 1e+21"] {
            XCTAssertTrue(bare.contains("\n" + line + "\n"), "missing \(line) in\n\(bare)")
        }
        XCTAssertEqual(Array(bare.utf8), r.renderBytes())
        XCTAssertEqual(Array(r.render(.openMetrics).utf8), r.renderBytes(.openMetrics))
    }

    func testManySeriesInLabelOrder() throws {
        let r = MetricsRegistry(options: { var o = MetricsRegistry.Options(); o.maxSeriesPerMetric = 10_000; return o }())
        for i in 0..<10_000 { try r.add("s_total", Double(i), labels: [("id", "\(i)")]) }
        let lines = r.render().split(separator: "\n").filter { !$0.hasPrefix("#") }
        XCTAssertEqual(lines.count, 10_000)
        XCTAssertEqual(lines.first, #"s_total{id="0"} 0"#)
        XCTAssertEqual(lines.map { String($0) }, lines.map { String($0) }.sorted { a, b in
            func id(_ s: String) -> String { String(s.split(separator: "\"")[1]) }
            return id(a) < id(b)
        })
    }
}
