import DAgentMetrics
import DAgentPython

/// The plugin host's per-plugin handler time, as the histogram
/// `dagent_plugin_handler_seconds{plugin}` in the node's registry (its errors
/// are `dagent_plugin_errors_total{plugin}`, from the tree snapshot).
enum PluginMetricsWiring {
    static let name = "dagent_plugin_handler_seconds"

    static func attach(_ host: PluginHost, to registry: MetricsRegistry) {
        registry.document(name, help: "Time a Python plugin's message handlers took (dispatch and reply included)",
                          buckets: PluginHandlerTimes.bounds)
        host.onHandlerTimes = { t in
            try? registry.merge(name, buckets: t.counts, sum: t.sum, count: t.count,
                                labels: [("plugin", t.plugin.isEmpty ? "_host" : t.plugin)])
        }
    }
}
