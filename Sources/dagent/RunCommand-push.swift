import DAgentNode
import DAgentPushGateway

/// The push gateway of a `dagent run` node: with an HTTP listener (`http:`)
/// and a plugin host, `/ws` is served by a gateway that the `push` plugin
/// attaches to (until it does, WebSocket clients are closed with 1013).
enum PushWiring {
    nonisolated(unsafe) static var service: PushNodeService?

    /// Call after the plugin host's `install()` and before `node.start()`.
    static func attach(_ node: Node) {
        guard let http = node.http else { return }
        let gateway = PushGateway(loop: node.eventLoop, nodeName: node.config.name,
                                  broker: NodePushBroker(node: node), logger: node.logger)
        let service = PushNodeService(node: node, gateway: gateway)
        service.install()
        http.addUpgrader(owner: "push") { channel in gateway.makeUpgrader(channel) }
        Self.service = service
    }

    /// Closes the WebSocket clients with 1001 before the node stops.
    static func shutdown() {
        service?.gateway.shutdown()
    }
}
