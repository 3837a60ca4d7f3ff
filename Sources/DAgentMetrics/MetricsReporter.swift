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
            let budget = max(4096, self.metrics.node.config.maxMessageBytes / 2)
            var chunks = MetricsDiff.chunks(self.diff.changes(snapshot), maxBytes: budget)
            if chunks.isEmpty { chunks = [[]] }   // an empty report still says "alive" (and carries `final`)
            self.send(chunks[...], snapshot: snapshot, final: final, completion: completion)
        }
    }

    /// Sends the chunks one after the other; each one the collector takes is acknowledged on its own.
    func send(_ chunks: ArraySlice<[MetricFamily]>, snapshot: [MetricFamily], final: Bool, completion: (() -> Void)?) {
        guard let chunk = chunks.first else {
            inFlight = false
            flushes += 1
            metrics.counter("dagent_report_flushes_total").increment()
            if !lastError.isEmpty {
                metrics.logger.notice("metrics: collector '\(to)' takes reports again")
                lastError = ""
            }
            completion?()
            return
        }
        var report = MetricsReport()
        report.node = metrics.node.config.name
        report.incarnation = incarnation
        seq += 1
        report.seq = seq
        report.final = final && chunks.count == 1
        report.families = chunk
        metrics.node.request(to: to, type: NodeMetrics.reportType, payload: report.json(),
                             timeout: metrics.settings.reportTimeout).hop(to: loop).whenComplete { result in
            switch result {
            case .success:
                self.diff.acknowledge(chunk, of: snapshot)
                self.send(chunks.dropFirst(), snapshot: snapshot, final: final, completion: completion)
            case .failure(let error):
                self.inFlight = false
                self.failures += 1
                self.metrics.counter("dagent_report_failures_total").increment()
                let text = "\(error)"
                if text != self.lastError {
                    self.metrics.logger.warning("metrics: report to collector '\(self.to)' failed: \(text); the changes stay for the next flush (report_interval=\(self.metrics.settings.reportInterval)s)")
                    self.lastError = text
                }
                completion?()
            }
        }
    }
}
