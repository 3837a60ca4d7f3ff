import DAgentHTTP
import DAgentWire
import Foundation
import NIOCore
import DAgentRouting

/// The node's HTTP listener (`http: tcp://HOST:PORT`): made in `start()` when
/// configured, with `/healthz`; other layers add to `http.router` (metrics,
/// plugin routes) and upgraders (push's `/ws`).
extension Node {
    /// Makes the listener with `/healthz` and binds it. Called from `start()` on the event loop.
    func startHTTP() -> EventLoopFuture<Void> {
        guard let endpoint = config.http, case let .tcp(host, port) = endpoint, let server = http else {
            return eventLoop.makeSucceededVoidFuture()
        }
        let name = config.name
        do {
            try server.router.add("/healthz", owner: "node") { [weak self] _, loop in
                guard let self else { return loop.makeSucceededFuture(.error(.serviceUnavailable, "node stopped")) }
                return self.eventLoop.submit { () -> HTTPResponse in
                    let ready = self.readyDone && (self.config.parents.isEmpty || self.core.parentReady) && !self.stopping
                    let body = "{\"name\":\(JSONString.quoted(name)),\"ready\":\(ready)}\n"
                    return .text(body, status: ready ? .ok : .serviceUnavailable, contentType: "application/json")
                }
            }
        } catch {
            return eventLoop.makeFailedFuture(ConfigError("\(error)"))
        }
        return server.start(host: host, port: port, group: eventLoop).flatMapErrorThrowing { error in
            throw ConfigError("\(error)")
        }
    }

    func stopHTTP() -> EventLoopFuture<Void> {
        http?.stop() ?? eventLoop.makeSucceededVoidFuture()
    }

    /// The port the HTTP listener bound (with port 0 in the config), or nil.
    public var httpPort: Int? { http?.boundPort }

}
