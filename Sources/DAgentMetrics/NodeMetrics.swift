import CoreMetrics
import DAgentHTTP
import DAgentNode
import DAgentWire
import Foundation
import Logging
import NIOCore

/// The metrics of one node: its registry, the core's own figures (kept as
/// swift-metrics counters and gauges, brought up to date from the node's
/// tree snapshot before each scrape and each report), `/metrics` on the
/// node's HTTP listener, and the `report_to` reporter.
public final class NodeMetrics: @unchecked Sendable {
    /// Envelope type of a report (a request; the collector answers "ok" or an error).
    public static let reportType: UInt32 = 0xFFFE_0050

    public let registry: MetricsRegistry
    public let settings: MetricsSettings
    let node: Node
    let factory: DAgentMetricsFactory
    let logger: Logger
    /// Guarded by `syncLock`: previous absolute values of core counters, for deltas.
    let syncLock = NSLock()
    var last: [String: UInt64] = [:]
    var counters: [String: CoreMetrics.Counter] = [:]
    var gauges: [String: CoreMetrics.Gauge] = [:]
    var reporter: MetricsReporter?
    /// Guarded by `syncLock`: the supervised processes of the last snapshot (NodeMetrics-processes.swift).
    var processNames: Set<String> = []

    public init(node: Node, settings: MetricsSettings = MetricsSettings()) {
        self.node = node
        self.settings = settings
        registry = MetricsRegistry(options: settings.registryOptions)
        factory = DAgentMetricsFactory(registry: registry)
        var log = node.logger
        log[metadataKey: "component"] = "metrics"
        logger = log
        for (name, help) in Self.help + Self.processHelp { registry.document(name, help: help) }
        registry.document("dagent_rpc_duration_seconds", help: "Time from sending a request to its answer, by outcome",
                          buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
        let timers = ["ok", "error", "timeout"].map { ($0, CoreMetrics.Timer(label: "dagent_rpc_duration_seconds", dimensions: [("outcome", $0)], factory: factory)) }
        let byOutcome = Dictionary(uniqueKeysWithValues: timers)
        node.onRPCDone = { seconds, outcome in
            byOutcome[outcome]?.recordNanoseconds(Int64(seconds * 1e9))
        }
    }

    static let help: [(String, String)] = [
        ("dagent_messages_routed_total", "Envelopes this node forwarded"),
        ("dagent_messages_delivered_total", "Envelopes delivered to this node's handlers"),
        ("dagent_link_frames_in_total", "Frames received per link"),
        ("dagent_link_frames_out_total", "Frames sent per link"),
        ("dagent_link_pending_bytes", "Bytes queued in a link's outbound buffer"),
        ("dagent_send_queue_messages", "Messages waiting in send queues for a route"),
        ("dagent_send_queues", "Destinations with a non-empty send queue"),
        ("dagent_names", "Names registered in this node's subtree"),
        ("dagent_links", "Links up"),
        ("dagent_plugin_handled_total", "Messages handed to a Python plugin's handlers"),
        ("dagent_plugin_errors_total", "Exceptions raised by a Python plugin"),
        ("dagent_plugin_queue_messages", "Messages waiting for the plugin thread"),
        ("dagent_plugin_dropped_total", "Messages refused because plugin_queue_length was reached"),
        ("dagent_msgq_queue_bytes", "Bytes in this agent's System V message queue"),
        ("dagent_msgq_queue_messages", "Messages in this agent's System V message queue"),
        ("dagent_msgq_leaves", "Leaves attached through message queues"),
        ("dagent_metrics_refused_total", "Metric operations refused (bad name, kind conflict, series limit)"),
        ("dagent_metrics_series", "Series in this node's registry"),
        ("dagent_http_requests_total", "HTTP requests served"),
        ("dagent_http_connections", "HTTP connections open"),
        ("dagent_report_flushes_total", "Reports the collector took"),
        ("dagent_report_failures_total", "Reports that failed (the changes stay for the next flush)"),
    ]

    /// Adds `/metrics` to the HTTP listener and starts the reporter. Call after `node.start()`.
    public func install() throws {
        if let http = node.http {
            try http.router.add("/metrics", methods: ["GET"], owner: "metrics") { [weak self] request, loop in
                guard let self else { return loop.makeSucceededFuture(.error(.serviceUnavailable, "metrics stopped")) }
                let format = MetricsFormat.negotiate(accept: request.headers.first(name: "accept"))
                return self.refresh().hop(to: loop).map {
                    HTTPResponse.text(self.registry.render(format), contentType: format.contentType)
                }
            }
        }
        installPresence()
        if let to = settings.reportTo {
            let r = MetricsReporter(metrics: self, to: to)
            reporter = r
            r.start()
        }
    }

    /// Stops the reporter after one last flush (marked final, so the collector sees the node go at once).
    public func stop(timeout: Double = 2) {
        reporter?.stop(timeout: timeout)
    }

    // MARK: the core's figures

    func counter(_ name: String, _ labels: [(String, String)] = []) -> CoreMetrics.Counter {
        let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
        if let c = counters[key] { return c }
        let c = CoreMetrics.Counter(label: name, dimensions: labels, factory: factory)
        counters[key] = c
        return c
    }

    func gauge(_ name: String, _ labels: [(String, String)] = []) -> CoreMetrics.Gauge {
        let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
        if let g = gauges[key] { return g }
        let g = CoreMetrics.Gauge(label: name, dimensions: labels, factory: factory)
        gauges[key] = g
        return g
    }

    /// Increments a core counter to the absolute value `now` (a restarted source starts over).
    func advance(_ name: String, _ labels: [(String, String)] = [], to now: UInt64) {
        let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
        let before = last[key] ?? 0
        last[key] = now
        let c = counter(name, labels)
        if now > before { c.increment(by: Int64(now - before)) }
    }

    /// Brings the core's figures up to date from the node's tree snapshot.
    public func refresh() -> EventLoopFuture<Void> {
        node.treeSnapshot().map { reply in
            self.syncLock.lock()
            defer { self.syncLock.unlock() }
            self.apply(reply)
        }
    }

    func apply(_ t: Dagent_TreeReply) {
        advance("dagent_messages_routed_total", to: t.messagesRouted)
        advance("dagent_messages_delivered_total", to: t.messagesDelivered)
        gauge("dagent_names").record(t.names.count)
        gauge("dagent_links").record(t.links.count)
        for link in t.links {
            let peer = link.peer.isEmpty ? link.address : link.peer
            let labels = [("peer", peer), ("direction", link.isParent ? "up" : "down")]
            advance("dagent_link_frames_in_total", labels, to: link.framesIn)
            advance("dagent_link_frames_out_total", labels, to: link.framesOut)
            gauge("dagent_link_pending_bytes", labels).record(Int64(link.bytesPending))
        }
        gauge("dagent_send_queue_messages").record(t.queues.reduce(0) { $0 + Int($1.depth) })
        gauge("dagent_send_queues").record(t.queues.count)
        if t.hasPluginHost {
            let h = t.pluginHost
            gauge("dagent_plugin_queue_messages").record(Int64(h.queued))
            advance("dagent_plugin_dropped_total", to: h.dropped)
            for p in h.plugins {
                advance("dagent_plugin_handled_total", [("plugin", p.name)], to: p.handled)
                advance("dagent_plugin_errors_total", [("plugin", p.name)], to: p.errors)
            }
        }
        for q in t.msgq {
            gauge("dagent_msgq_leaves", [("path", q.path)]).record(Int64(q.leaves))
            gauge("dagent_msgq_queue_bytes", [("path", q.path), ("queue", "up")]).record(Int64(q.up.bytes))
            gauge("dagent_msgq_queue_bytes", [("path", q.path), ("queue", "down")]).record(Int64(q.down.bytes))
            gauge("dagent_msgq_queue_messages", [("path", q.path), ("queue", "up")]).record(Int64(q.up.messages))
            gauge("dagent_msgq_queue_messages", [("path", q.path), ("queue", "down")]).record(Int64(q.down.messages))
        }
        if let http = node.http {
            advance("dagent_http_requests_total", to: UInt64(max(0, http.stats.requests.now)))
            gauge("dagent_http_connections").record(http.stats.connections.now)
        }
        applyProcesses(t)
        advance("dagent_metrics_refused_total", to: registry.refused)
        gauge("dagent_metrics_series").record(registry.seriesCount)
    }
}
