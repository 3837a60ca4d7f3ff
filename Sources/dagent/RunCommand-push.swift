import DAgentHTTP
import DAgentNode
import DAgentPushGateway
import Foundation

/// The push gateway of a `dagent run` node: with an HTTP listener and a
/// plugin host, `/ws` is served by a gateway that the `push` plugin attaches
/// to (until it does, WebSocket clients are closed with 1013).
enum PushWiring {
    nonisolated(unsafe) static var service: PushNodeService?
    nonisolated(unsafe) static var interimServer: HTTPServer?

    /// Call after the plugin host's `install()` and before `node.start()`.
    static func attach(_ node: Node) {
        // INTERIM until the node's own listener (`http:`) lands: DAGENT_PUSH_HTTP=tcp://HOST:PORT.
        guard let spec = ProcessInfo.processInfo.environment["DAGENT_PUSH_HTTP"], spec.hasPrefix("tcp://") else { return }
        let hostPort = spec.dropFirst(6).split(separator: ":")
        guard hostPort.count == 2, let port = Int(hostPort[1]) else { return }
        let http = HTTPServer(logger: node.logger)
        let gateway = PushGateway(loop: node.eventLoop, nodeName: node.config.name,
                                  broker: NodePushBroker(node: node), logger: node.logger)
        let service = PushNodeService(node: node, gateway: gateway)
        service.install()
        http.addUpgrader(owner: "push") { channel in gateway.makeUpgrader(channel) }
        Self.service = service
        Self.interimServer = http
        do {
            try http.start(host: String(hostPort[0]), port: port, group: node.eventLoop).wait()
        } catch {
            node.logger.error("push: \(error)")
        }
    }

    /// Closes the WebSocket clients with 1001 before the node stops.
    static func shutdown() {
        service?.gateway.shutdown()
    }
}
