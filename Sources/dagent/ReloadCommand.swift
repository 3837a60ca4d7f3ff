import ArgumentParser
import DAgentWire
import Foundation
import NIOPosix
import DAgentNode
import DAgentRouting
import DAgentCLI

/// `dagent reload`: reloads the Python plugins of a running node.
struct ReloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Reload the Python plugins of the node at ADDR: the changed ones, or PLUGIN.",
        discussion: """
        Each reloaded plugin is torn down (teardown()), re-imported from its file and set up
        again (setup(config)); the node's links and the other plugins are not touched. New
        plugin files are loaded and removed ones unloaded. With PLUGIN, that plugin is reloaded
        even if unchanged; --all reloads every plugin. The node re-reads the plugins section of
        its config file first. SIGHUP to `dagent run` does the same as `dagent reload` without
        arguments. Prints one line per plugin; exits 1 if a reloaded plugin failed.
        """
    )
    @OptionGroup var join: JoinOptions
    @Option(help: "Name of the node whose plugins to reload (default: the node listening at --via).") var to: String?
    @Flag(help: "Reload every plugin, changed or not.") var all = false
    @Option(help: "Seconds to wait for the reload to finish.") var timeout: Double = 60
    @Argument(help: "Plugin to reload (default: every changed plugin).") var plugin: String?

    func run() throws {
        bootstrapLogging(level: join.logLevel)
        var target = to
        if target == nil {
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            defer { try? group.syncShutdownGracefully() }
            do {
                let first = join.via.split(separator: ",").first.map(String.init) ?? join.via
                let endpoint = try Endpoint.parse(first.replacingOccurrences(of: "push:", with: "").replacingOccurrences(of: "pull:", with: ""))
                target = try TreeQuery.fetch(endpoint, timeout: 5, name: try join.tls.certificateName(), secret: join.resolvedSecret(), group: group,
                                             tls: try join.tls.contexts()).wait().name
            } catch {
                fail("cannot ask \(join.via) for its name (give --to NAME): \(error)")
            }
        }
        var command: [String: Any] = ["op": "reload", "force": all]
        if let plugin { command["plugin"] = plugin }
        let payload = try JSONSerialization.data(withJSONObject: command)
        join.withJoinedNode { node in
            let reply = try node.request(to: target!, type: WireConstants.pluginAdminType, payload: payload, timeout: timeout).wait()
            print(String(decoding: reply.payload, as: UTF8.self))
        }
    }
}
