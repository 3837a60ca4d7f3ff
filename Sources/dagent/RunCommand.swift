import ArgumentParser
import DAgentPython
import DAgentWire
import DAgentRoot
import Dispatch
import Foundation
import Logging
import DAgentNode
import DAgentRouting
import DAgentCLI
import DAgentMetrics

/// `dagent run`: one node in the foreground until SIGINT/SIGTERM.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run one node in the foreground (logs to stderr; SIGINT/SIGTERM stop it cleanly).",
        discussion: """
        Addresses: --listen makes the node accept children, --parent makes it join a parent
        (a comma-separated list fails over in order). Both make a proxy. The original shorthand
        works too: --addr pull:tcp://H:P | push:tcp://H:P | proxy:tcp://LISTEN->tcp://PARENT.
        Local leaves: --msgq PATH (or --addr pull:msgq://PATH) makes this node the agent that
        serves leaves on System V message queues keyed from PATH; a leaf joins with
        --parent msgq://PATH (or --addr push:msgq://PATH).
        Flags override the YAML --config file. --plugins DIR (repeatable) loads the Python
        plugins in DIR (see docs/plugins.md); SIGHUP reloads changed plugins.

        Every option of docs/config.md is also a flag (YAML key with - for _):
        \(OptionDocs.helpText(NodeOptions.table.docs + PluginOptions.table.docs + MetricsOptions.table.docs))
        """
    )

    @Option(help: "YAML config file (docs/config.md lists its options).") var config: String?
    @Option(help: "Root-group cluster JSON (DCF style): run as a Raft replica serving @state.") var raft: String?
    @Option(help: "This replica's node_id in the --raft cluster JSON.") var nodeId: UInt64?
    @Option(help: "With --raft: compact the raft log into a snapshot after this many applied entries (snapshot_entries).") var snapshotEntries: Int?
    @Option(help: "With --raft: most bytes of watch history a snapshot or backup carries, newest whole revisions first; a watch from an older revision on a replica restored from it gets `compacted` (snapshot_history_bytes, default 16 MiB).") var snapshotHistoryBytes: Int?
    @Flag(help: "With --raft: a new member of a running group (do not bootstrap; wait for `dagent state member add`).") var join = false
    @Option(help: "Topology file (see docs/deploy.md): configure this node as its --agent NAME or --root ID.") var topology: String?
    @Option(help: "With --topology: run as this agent, supervising its processes.") var agent: String?
    @Option(help: "With --topology: run as the root replica with this id.") var root: UInt64?
    @Argument(parsing: .allUnrecognized, help: ArgumentHelp("The node and plugin options as flags (listed below).", valueName: "options"))
    var options: [String] = []

    // The registry flags that `dagent run` itself reads or fills in (--raft, --topology).
    var name: String? { get { flag("name") } set { setFlag("name", newValue) } }
    var data: String? { get { flag("data") } set { setFlag("data", newValue) } }
    var secret: String? { get { flag("secret") } set { setFlag("secret", newValue) } }
    var logLevel: String? { get { flag("log-level") } set { setFlag("log-level", newValue) } }

    /// The last value given for `--NAME` (`--NAME V` or `--NAME=V`).
    func flag(_ name: String) -> String? {
        var value: String?
        var i = 0
        while i < options.count {
            if options[i] == "--\(name)", i + 1 < options.count { value = options[i + 1]; i += 1 }
            else if options[i].hasPrefix("--\(name)=") { value = String(options[i].dropFirst(name.count + 3)) }
            i += 1
        }
        return value
    }

    /// Sets `--NAME V` unless nil (a value given before is replaced).
    mutating func setFlag(_ name: String, _ value: String?) {
        guard let value else { return }
        var kept: [String] = []
        var i = 0
        while i < options.count {
            if options[i] == "--\(name)", i + 1 < options.count { i += 2; continue }
            if options[i].hasPrefix("--\(name)=") { i += 1; continue }
            kept.append(options[i])
            i += 1
        }
        options = kept + ["--\(name)", value]
    }

    /// The config file, read and parsed once for the node, its plugins and its metrics (nil without `--config`).
    func loadDocument() throws -> ConfigDocument? {
        try config.map { try ConfigDocument.load(path: $0) }
    }

    func buildConfig(document: ConfigDocument?, defaultName: String = "", listen replicaListen: Endpoint? = nil) throws -> NodeConfig {
        var c = NodeConfig(name: defaultName)
        if let replicaListen { c.listen = [replicaListen] }
        if let document { c = try ConfigFile.load(document: document, into: c) }
        var plugins = PluginSettings()   // the plugin flags are applied by buildPluginSettings
        let rest = try PluginOptions.table.apply(flags: try NodeOptions.table.apply(flags: options, to: &c), to: &plugins)
        var metrics = MetricsSettings()   // applied by buildMetricsSettings
        if let unknown = try MetricsOptions.table.apply(flags: rest, to: &metrics).first {
            throw ConfigError("unknown option '\(unknown)' (dagent run --help lists the flags; docs/config.md the options)")
        }
        if c.name.isEmpty { throw ConfigError("a node needs a name: --name NAME or name: in the config file") }
        try c.validate()
        return c
    }

    /// The `plugins:` section of the config file plus the plugin flags.
    /// The `metrics:` section of the config file plus --report-to / --report-interval.
    func buildMetricsSettings(document: ConfigDocument?) throws -> MetricsSettings {
        var s = MetricsSettings()
        if let document, let fromFile = try MetricsSettings(document: document) { s = fromFile }
        _ = try MetricsOptions.table.apply(flags: options, to: &s)
        try s.validate()
        return s
    }

    func buildPluginSettings(document: ConfigDocument?) throws -> PluginSettings {
        var s = PluginSettings()
        if let document, let fromFile = try PluginSettings(document: document) { s = fromFile }
        _ = try PluginOptions.table.apply(flags: options, to: &s)
        try s.validate()
        return s
    }

    func run() throws {
        if let resolved = resolvedFromTopology() { return try resolved.run() }
        var config: NodeConfig
        var group: RaftGroupSetup?
        var otherGroups: [RaftGroupSetup] = []   // streams other than the first (docs/state.md: several streams)
        var streamMembers: [UInt64: [UInt64]] = [:]
        let pluginSettings: PluginSettings
        let metricsSettings: MetricsSettings
        do {
            let document = try loadDocument()   // one read of --config for every layer
            if let raft {
                guard let nodeId else { throw ConfigError("--raft needs --node-id N") }
                let loaded = try RaftGroupSetup.loadStreams(jsonPath: raft, nodeID: nodeId, dataDir: data)
                group = loaded.groups[0]
                otherGroups = Array(loaded.groups.dropFirst())
                streamMembers = loaded.members
                config = try buildConfig(document: document, defaultName: "r\(nodeId)", listen: group!.listen)
            } else {
                config = try buildConfig(document: document)
            }
            pluginSettings = try buildPluginSettings(document: document)
            metricsSettings = try buildMetricsSettings(document: document)
        } catch { fail("\(error)", code: 2) }
        bootstrapLogging(level: config.logLevel)
        let stopSignals = StopSignals()
        let done = stopSignals.done
        let node: Node
        var replica: RootReplica?
        var replicas: [RootReplica] = []
        var streams: RootStreams?
        var host: PluginHost?
        let metrics: NodeMetrics
        do {
            node = try Node(config: config)
            stopSignals.logger = node.logger
            metrics = NodeMetrics(node: node, settings: metricsSettings)
            if let group {
                replicas = try ([group] + otherGroups).map { try $0.makeReplica(node: node, join: join) }
                replica = replicas[0]
                for m in RootReplica.metricsHelp { metrics.registry.document(m.name, help: m.help, buckets: m.buckets) }
                for r in replicas {
                    r.installMetrics(factory: DAgentMetricsFactory(registry: metrics.registry))   // series labelled by stream
                    if let snapshotEntries {
                        guard snapshotEntries >= 1 else { throw ConfigError("--snapshot-entries must be >= 1 (got \(snapshotEntries))") }
                        r.snapshotEvery = snapshotEntries
                    }
                    if let snapshotHistoryBytes {
                        guard snapshotHistoryBytes >= 0 else { throw ConfigError("--snapshot-history-bytes must be >= 0 (got \(snapshotHistoryBytes))") }
                        r.stateConfig.snapshotHistoryBytes = snapshotHistoryBytes
                    }
                }
                if streamMembers.count > 1 || !config.streams.isEmpty {
                    streams = try RootStreams(node: node, replicas: replicas, members: streamMembers, prefixes: config.streams)
                    streams!.attach()
                } else {
                    replica!.attach()
                }
            } else if !config.streams.isEmpty {
                throw ConfigError("streams: maps key prefixes to the streams of a root group; it needs --raft CLUSTER.json")
            }
            if pluginSettings.isEnabled {
                let h = try PluginHost(node: node, settings: pluginSettings)
                h.reloadSettings = { try self.buildPluginSettings(document: try self.loadDocument()) }   // re-read once per reload
                let registry = metrics.registry
                h.onReport = { json in MetricsReport.apply(json: json, to: registry) }
                PluginMetricsWiring.attach(h, to: registry)
                h.install()
                host = h
                PushWiring.attach(node)
            }
            try node.start().wait()
            try metrics.install()
        } catch {
            fail("\(error)", code: 2)
        }
        if let host {
            do {
                let summary = try host.start()
                node.logger.notice("plugins: \(summary.replacingOccurrences(of: "\n", with: "; "))")
            } catch {
                fail("cannot start the Python plugin host: \(error)", code: 2)
            }
        }
        var exitCode: Int32 = 0
        for r in replicas {
            r.onFatal = { reason in
                node.logger.error("stopping: the raft replica of stream \(r.streamID) stopped: \(reason)")
                exitCode = 3
                done.signal()
            }
        }
        node.onEvent = { event in
            if case .registered = event { DeployRunHooks.registered() }
            if case .registrationFailed(let error) = event {
                node.logger.error("stopping: \(error)")
                exitCode = 2
                done.signal()
            }
        }
        if host == nil {
            node.onMessage = { envelope in
                if envelope.kind == .request && envelope.type == WireConstants.pluginAdminType {
                    node.replyError(to: envelope, reason: "node '\(config.name)' runs no Python plugins (start it with --plugins DIR)")
                } else if envelope.kind == .request && !config.echo {
                    node.replyError(to: envelope, reason: "node '\(config.name)' has no handler for type \(envelope.type)")
                } else {
                    node.logger.debug("message from '\(envelope.src)' type \(envelope.type): \(envelope.payload.count) bytes")
                }
            }
        }
        var sources: [DispatchSourceSignal] = []
        signal(SIGHUP, SIG_IGN)
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        hup.setEventHandler {
            guard let host else {
                node.logger.notice("received SIGHUP: no Python plugins to reload")
                return
            }
            node.logger.notice("received SIGHUP: reloading changed plugins")
            host.reload(plugin: nil, force: false) { result in
                switch result {
                case .success(let text): node.logger.notice("plugins reloaded: \(text.replacingOccurrences(of: "\n", with: "; "))")
                case .failure(let error): node.logger.error("plugin reload: \(error.reason.replacingOccurrences(of: "\n", with: "; "))")
                }
            }
        }
        hup.resume()
        sources.append(hup)
        for r in replicas {
            do {
                try r.start().wait()
            } catch {
                fail("cannot start the raft replica\(replicas.count > 1 ? " of stream \(r.streamID)" : ""): \(error)", code: 2)
            }
        }
        if replicas.count > 1 { node.logger.notice("serving streams \(replicas.map(\.streamID)) on one port") }
        _ = streams
        node.logger.notice("node '\(config.name)' started (role \(TreeRender.roleName(config.effectiveRole)))")
        DeployRunHooks.nodeStarted(node, replica: replica)
        done.wait()
        DeployRunHooks.stopping()
        PushWiring.shutdown()
        for r in replicas { r.stop() }
        metrics.stop()
        host?.stop()
        try? node.shutdown()
        node.logger.notice("node '\(config.name)' stopped")
        _ = sources
        _ = stopSignals
        Foundation.exit(exitCode)
    }
}
