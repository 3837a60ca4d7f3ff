import DAgentNode
import Foundation
import NIOCore

/// Sends the registry's changes to the collector every `report_interval`,
/// as one request over the tree's links. Only what the collector
/// acknowledged is taken off: a failed or lost flush leaves its changes to
/// the next one, which carries the sum. Memory stays one value per series
/// whatever the collector does. One flush is in flight at a time.
public final class MetricsReporter: @unchecked Sendable {
    let metrics: NodeMetrics
    let to: String
    let incarnation = UUID().uuidString
    var diff = MetricsDiff()
    var seq: UInt64 = 0
    var inFlight = false
    var task: RepeatedTask?
    var lastError = ""
    var stopped = false
    /// Reports taken and failed so far (event loop).
    public private(set) var flushes: UInt64 = 0
    public private(set) var failures: UInt64 = 0

    init(metrics: NodeMetrics, to: String) {
        self.metrics = metrics
        self.to = to
    }

    var loop: EventLoop { metrics.node.eventLoop }

    func start() {
        let ns = Int64(metrics.settings.reportInterval * 1e9)
        loop.execute {
            self.task = self.loop.scheduleRepeatedTask(initialDelay: .nanoseconds(ns), delay: .nanoseconds(ns)) { _ in
                self.flush(final: false)
            }
        }
    }

    /// One last flush marked final, then no more.
    func stop(timeout: Double) {
        let done = DispatchSemaphore(value: 0)
        loop.execute {
            self.task?.cancel()
            self.stopped = true
            self.inFlight = false
            self.flush(final: true) { done.signal() }
        }
        _ = done.wait(timeout: .now() + timeout)
    }

    func flush(final: Bool, completion: (() -> Void)? = nil) {
        guard !inFlight else { completion?(); return }
        inFlight = true
        metrics.refresh().whenComplete { _ in
            let snapshot = self.metrics.registry.snapshot()
            var report = MetricsReport()
            report.node = self.metrics.node.config.name
            report.incarnation = self.incarnation
            self.seq += 1
            report.seq = self.seq
            report.final = final
            report.families = self.diff.changes(snapshot)
            let payload = report.json()
            self.metrics.node.request(to: self.to, type: NodeMetrics.reportType, payload: payload,
                                      timeout: self.metrics.settings.reportTimeout).hop(to: self.loop).whenComplete { result in
                self.inFlight = false
                switch result {
                case .success:
                    self.diff.acknowledge(snapshot)
                    self.flushes += 1
                    self.metrics.counter("dagent_report_flushes_total").increment()
                    if !self.lastError.isEmpty {
                        self.metrics.logger.notice("metrics: collector '\(self.to)' takes reports again")
                        self.lastError = ""
                    }
                case .failure(let error):
                    self.failures += 1
                    self.metrics.counter("dagent_report_failures_total").increment()
                    let text = "\(error)"
                    if text != self.lastError {
                        self.metrics.logger.warning("metrics: report to collector '\(self.to)' failed: \(text); the changes stay for the next flush (report_interval=\(self.metrics.settings.reportInterval)s)")
                        self.lastError = text
                    }
                }
                completion?()
            }
        }
    }
}
