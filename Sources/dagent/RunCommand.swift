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
        plugins in DIR (see the README's "Python plugins"); SIGHUP reloads changed plugins.
        """
    )

    @Option(help: "Unique name of this node in the tree.") var name: String?
    @Option(help: "YAML config file (see the README's options table).") var config: String?
    @Option(help: "Listen for children on tcp://HOST:PORT.") var listen: String?
    @Option(help: "Parent address(es): tcp://HOST:PORT[,tcp://HOST:PORT...], or msgq://PATH (the local agent).") var parent: String?
    @Option(help: "Address shorthand (pull:/push:/proxy:); repeatable.") var addr: [String] = []
    @Option(help: "Serve local leaves on System V message queues keyed from PATH (created if missing).") var msgq: String?
    @Option(help: "Role shown by `dagent tree` (leaf, agent, proxy, root); derived from the addresses by default.") var role: String?
    @Flag(help: "Answer every request with its own payload.") var echo = false
    @Option(help: "Data directory: session file, durable queue dump.") var data: String?
    @Flag(help: "Dump send queues to DATA/queue.dump on shutdown and reload them on start.") var durable = false
    @Option(help: "Seconds between heartbeats (heartbeat_interval).") var heartbeatInterval: Double?
    @Option(help: "Missed heartbeats before a peer expires (heartbeat_misses).") var heartbeatMisses: Int?
    @Option(help: "Largest payload accepted, in bytes (max_message_bytes).") var maxMessageBytes: Int?
    @Option(help: "Cluster secret children must present.") var secret: String?
    @Option(help: "trace, debug, info, notice, warning, error.") var logLevel: String?
    @Option(help: "Root-group cluster JSON (DCF style): run as a Raft replica serving @state.") var raft: String?
    @Option(help: "This replica's node_id in the --raft cluster JSON.") var nodeId: UInt64?
    @Option(name: .customLong("plugins"), help: "Python plugin directory (repeatable; adds to plugins.dirs).") var pluginDirs: [String] = []
    @Option(help: "Seconds a plugin handler may run before it is logged and interrupted (plugins.handler_budget).") var handlerBudget: Double?
    @Option(help: "Directory holding the dagent Python package (plugins.python_path; found automatically).") var pythonPath: String?
    @Option(help: "Topology file (see docs/deploy.md): configure this node as its --agent NAME or --root ID.") var topology: String?
    @Option(help: "With --topology: run as this agent, supervising its processes.") var agent: String?
    @Option(help: "With --topology: run as the root replica with this id.") var root: UInt64?

    func buildConfig(defaultName: String = "", listen replicaListen: Endpoint? = nil) throws -> NodeConfig {
        var c = NodeConfig(name: defaultName)
        if let replicaListen { c.listen = [replicaListen] }
        if let path = config { c = try ConfigFile.load(path: path) }
        if let name { c.name = name }
        for a in addr {
            let sh = try Shorthand.parse(a)
            c.listen += sh.listen
            c.parents += sh.parents
        }
        if let listen { c.listen = try Shorthand.parseList(listen) }
        if let parent { c.parents = try Shorthand.parseList(parent) }
        if let msgq { c.listen.append(.msgq(path: msgq.hasPrefix("msgq://") ? String(msgq.dropFirst(7)) : msgq)) }
        if let role {
            let parsed = try ConfigFile.parse(yaml: "role: \(role)", source: "--role")
            c.role = parsed.role
        }
        if echo { c.echo = true }
        if let data { c.dataDir = data }
        if durable { c.durable = true }
        if let heartbeatInterval { c.heartbeatInterval = heartbeatInterval }
        if let heartbeatMisses { c.heartbeatMisses = heartbeatMisses }
        if let maxMessageBytes { c.maxMessageBytes = maxMessageBytes }
        if let secret { c.secret = secret }
        if let logLevel { c.logLevel = logLevel }
        if c.name.isEmpty { throw ConfigError("a node needs a name: --name NAME or name: in the config file") }
        try c.validate()
        return c
    }

    /// The `plugins:` section of the config file plus the plugin flags.
    func buildPluginSettings() throws -> PluginSettings {
        var s = PluginSettings()
        if let path = config, let fromFile = try PluginSettings.load(configFile: path) { s = fromFile }
        let cwd = FileManager.default.currentDirectoryPath
        for d in pluginDirs {
            let url = d.hasPrefix("/") ? URL(fileURLWithPath: d) : URL(fileURLWithPath: cwd).appendingPathComponent(d)
            let path = url.standardizedFileURL.path
            if !s.dirs.contains(path) { s.dirs.append(path) }
        }
        if let handlerBudget { s.handlerBudget = handlerBudget }
        if let pythonPath { s.pythonPath = URL(fileURLWithPath: pythonPath, relativeTo: URL(fileURLWithPath: cwd + "/")).standardizedFileURL.path }
        try s.validate()
        return s
    }

    func run() throws {
        if let resolved = resolvedFromTopology() { return try resolved.run() }
        var config: NodeConfig
        var group: RaftGroupSetup?
        let pluginSettings: PluginSettings
        do {
            if let raft {
                guard let nodeId else { throw ConfigError("--raft needs --node-id N") }
                group = try RaftGroupSetup.load(jsonPath: raft, nodeID: nodeId, dataDir: data)
                config = try buildConfig(defaultName: "r\(nodeId)", listen: group!.listen)
            } else {
                config = try buildConfig()
            }
            pluginSettings = try buildPluginSettings()
        } catch { fail("\(error)", code: 2) }
        bootstrapLogging(level: config.logLevel)
        let node: Node
        var replica: RootReplica?
        var host: PluginHost?
        do {
            node = try Node(config: config)
            if let group {
                replica = try group.makeReplica(node: node)
                replica!.attach()
            }
            if pluginSettings.isEnabled {
                let h = try PluginHost(node: node, settings: pluginSettings)
                h.reloadSettings = { try self.buildPluginSettings() }
                h.install()
                host = h
            }
            try node.start().wait()
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
        let done = DispatchSemaphore(value: 0)
        var exitCode: Int32 = 0
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
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                node.logger.notice("received \(sig == SIGINT ? "SIGINT" : "SIGTERM"); stopping")
                done.signal()
            }
            source.resume()
            sources.append(source)
        }
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
        if let replica {
            do {
                try replica.start().wait()
            } catch {
                fail("cannot start the raft replica: \(error)", code: 2)
            }
        }
        node.logger.notice("node '\(config.name)' started (role \(TreeRender.roleName(config.effectiveRole)))")
        DeployRunHooks.nodeStarted(node)
        done.wait()
        DeployRunHooks.stopping()
        replica?.stop()
        host?.stop()
        try? node.shutdown()
        node.logger.notice("node '\(config.name)' stopped")
        _ = sources
        Foundation.exit(exitCode)
    }
}
