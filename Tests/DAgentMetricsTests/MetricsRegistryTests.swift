import CoreMetrics
import DAgentMetrics
import Foundation
import XCTest

final class MetricsRegistryTests: XCTestCase {
    func testCountersGaugesHistogramsRender() throws {
        let r = MetricsRegistry()
        try r.add("jobs_total", 2, labels: [("kind", "a")], help: "Jobs done")
        try r.add("jobs_total", 3, labels: [("kind", "a")])
        try r.set("temp_celsius", 21.5)
        try r.observe("lat_seconds", 0.2, buckets: [0.1, 1])
        try r.observe("lat_seconds", 5, buckets: [0.1, 1])
        XCTAssertEqual(r.value("jobs_total", labels: [("kind", "a")]), 5)
        let text = r.render()
        XCTAssertTrue(text.contains("# HELP jobs_total Jobs done\n# TYPE jobs_total counter\njobs_total{kind=\"a\"} 5\n"), text)
        XCTAssertTrue(text.contains("temp_celsius 21.5\n"), text)
        XCTAssertTrue(text.contains("lat_seconds_bucket{le=\"0.1\"} 0\nlat_seconds_bucket{le=\"1\"} 1\nlat_seconds_bucket{le=\"+Inf\"} 2\nlat_seconds_sum 5.2\nlat_seconds_count 2\n"), text)
        let om = r.render(.openMetrics, extraLabels: [("node", "n1")])
        XCTAssertTrue(om.contains("# TYPE jobs counter\njobs_total{node=\"n1\",kind=\"a\"} 5\n"), om)
        XCTAssertTrue(om.hasSuffix("# EOF\n"), om)
        XCTAssertEqual(MetricsFormat.negotiate(accept: "application/openmetrics-text; version=1.0.0"), .openMetrics)
        XCTAssertEqual(MetricsFormat.negotiate(accept: "text/plain"), .prometheusText)
    }

    func testRefusalsNameTheProblem() throws {
        let r = MetricsRegistry(options: { var o = MetricsRegistry.Options(); o.maxSeriesPerMetric = 3; return o }())
        func refused(_ what: String, _ op: () throws -> Void) {
            XCTAssertThrowsError(try op()) { XCTAssertTrue("\($0)".contains(what), "\($0)") }
        }
        refused("metric name 'bad-name_total'") { try r.add("bad-name_total", 1) }
        refused("must end in _total") { try r.add("jobs", 1) }
        refused("label 'node'") { try r.set("g", 1, labels: [("node", "x")]) }
        refused("label '__x'") { try r.set("g", 1, labels: [("__x", "x")]) }
        try r.add("c_total", 1)
        refused("is a counter; it cannot be used as a gauge") { try r.add("c_total", 1, kind: .gauge) }
        refused("can only go up") { try r.add("c_total", -1) }
        try r.set("g", 1, labels: [("a", "1")])
        refused("has labels [a]; got [b]") { try r.set("g", 1, labels: [("b", "1")]) }
        try r.set("g", 1, labels: [("a", "2")])
        try r.set("g", 1, labels: [("a", "3")])
        refused("metrics_max_series=3") { try r.set("g", 1, labels: [("a", "4")]) }
        try r.set("g", 7, labels: [("a", "1")])  // an existing series still works
        refused("not strictly increasing") { try r.observe("h", 1, buckets: [1, 1]) }
        refused("NaN") { try r.set("g2", .nan) }
        XCTAssertEqual(r.seriesCount, 4)
        XCTAssertGreaterThanOrEqual(r.refused, 10)
    }

    func testLabelFloodKeepsMemoryBounded() throws {
        let r = MetricsRegistry(options: { var o = MetricsRegistry.Options(); o.maxSeriesPerMetric = 100; return o }())
        var refusedCount = 0
        for i in 0..<100_000 {
            do { try r.add("flood_total", 1, labels: [("id", "\(i)")]) } catch { refusedCount += 1 }
        }
        XCTAssertEqual(r.seriesCount, 100)
        XCTAssertEqual(refusedCount, 99_900)
    }

    func testSwiftMetricsFactoryLandsInTheRegistry() throws {
        let r = MetricsRegistry()
        let f = DAgentMetricsFactory(registry: r)
        r.document("dagent_rpc_seconds", help: "RPC latency", buckets: [0.001, 0.01, 0.1])
        CoreMetrics.Counter(label: "dagent_x_total", dimensions: [("link", "up")], factory: f).increment(by: 4)
        CoreMetrics.Gauge(label: "dagent_depth", factory: f).record(9)
        CoreMetrics.Timer(label: "dagent_rpc_seconds", factory: f).recordNanoseconds(5_000_000)
        XCTAssertEqual(r.value("dagent_x_total", labels: [("link", "up")]), 4)
        XCTAssertEqual(r.value("dagent_depth"), 9)
        let text = r.render()
        XCTAssertTrue(text.contains("# HELP dagent_rpc_seconds RPC latency"), text)
        XCTAssertTrue(text.contains("dagent_rpc_seconds_bucket{le=\"0.01\"} 1"), text)
    }

    func testDiffCarriesUnacknowledgedChangesAndReportsApply() throws {
        let r = MetricsRegistry()
        var diff = MetricsDiff()
        try r.add("a_total", 5)
        try r.set("g", 1)
        try r.observe("h", 0.5, buckets: [1])
        let s1 = r.snapshot()
        XCTAssertEqual(diff.changes(s1).count, 3)
        // Not acknowledged (collector down): the next diff carries the sum.
        try r.add("a_total", 2)
        let s2 = r.snapshot()
        var report = MetricsReport()
        report.families = diff.changes(s2)
        let target = MetricsRegistry()
        XCTAssertEqual(MetricsReport.apply(json: report.json(), to: target), [])
        XCTAssertEqual(target.value("a_total"), 7)
        diff.acknowledge(s2)
        try r.add("a_total", 1)
        try r.observe("h", 3, buckets: [1])
        report.families = diff.changes(r.snapshot())
        XCTAssertEqual(report.families.map(\.name), ["a_total", "h"], "the unchanged gauge is not sent again")
        XCTAssertEqual(MetricsReport.apply(json: report.json(), to: target), [])
        XCTAssertEqual(target.value("a_total"), 8)
        XCTAssertTrue(target.render().contains("h_count 2"), target.render())
        XCTAssertEqual(MetricsReport.apply(json: Data("nope".utf8), to: target), ["not a JSON object"])
        let conflict = #"{"families":[{"name":"g","type":"counter","labels":[],"series":[]}]}"#
        XCTAssertTrue(MetricsReport.apply(json: Data(conflict.utf8), to: target).first?.contains("is a gauge") ?? false)
    }
}

final class MetricsChunkTests: XCTestCase {
    func testLargeChangeSetsSplitUnderTheBudgetAndAcknowledgeByPart() throws {
        let r = MetricsRegistry(options: { var o = MetricsRegistry.Options(); o.maxSeriesPerMetric = 100_000; return o }())
        for i in 0..<20_000 { try r.add("many_total", Double(i + 1), labels: [("id", "\(i)")]) }
        try r.set("g", 3)
        var diff = MetricsDiff()
        let snap = r.snapshot()
        let chunks = MetricsDiff.chunks(diff.changes(snap), maxBytes: 64 * 1024)
        XCTAssertGreaterThan(chunks.count, 5)
        var total = 0
        for c in chunks {
            var rep = MetricsReport()
            rep.families = c
            XCTAssertLessThanOrEqual(rep.json().count, 64 * 1024)
            total += c.reduce(0) { $0 + $1.series.count }
        }
        XCTAssertEqual(total, 20_001)
        // Only the first part was taken: the rest is still a change.
        diff.acknowledge(chunks[0], of: snap)
        let left = diff.changes(snap).reduce(0) { $0 + $1.series.count }
        XCTAssertEqual(left, 20_001 - chunks[0].reduce(0) { $0 + $1.series.count })
    }
}
