import DAgentWire
import Foundation
import NIOCore
import DAgentRouting

/// How `dagent tree` asks: it registers first, like every one-shot command,
/// but query-only (its name is checked, not added to the tree), after the
/// cluster secret handshake when it has a secret. Tree queries are answered
/// only on registered links.
extension TreeQuery {
    /// The default name of a tree query: `tree-` and 8 random hex digits.
    public static func defaultName() -> String {
        "tree-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
    }

    /// Register (query-only) and TreeRequest, sent together once the link may carry them.
    static func queryFrames(name: String) -> [Dagent_Frame] {
        var register = Dagent_Frame()
        register.register.name = name
        register.register.role = .leaf
        register.register.protocolVersion = WireConstants.protocolVersion
        register.register.queryOnly = true
        var ask = Dagent_Frame()
        ask.treeRequest.requestID = 1
        return [register, ask]
    }

    /// Why the node refused the query, from a frame it sent; nil if none.
    static func refusal(_ frame: Dagent_Frame, endpoint: String) -> DAgentError? {
        switch frame.body {
        case .registerResult(let r)? where r.error != .ok:
            return DAgentError(r.error, "\(endpoint) refused the tree query: \(r.reason)")
        case .linkError(let e)?:
            return DAgentError(e.error, "\(endpoint) refused the tree query: \(e.reason)")
        default:
            return nil
        }
    }

    /// The client side of a tree query on TCP: handshake (secret mode), register, ask, read.
    final class QueryHandler: ChannelInboundHandler {
        typealias InboundIn = Dagent_Frame
        typealias OutboundOut = Dagent_Frame
        let promise: EventLoopPromise<Dagent_TreeReply>
        let name: String
        let endpoint: String
        var handshake: AuthHandshake?

        init(promise: EventLoopPromise<Dagent_TreeReply>, name: String, secret: String, endpoint: String) {
            self.promise = promise
            self.name = name
            self.endpoint = endpoint
            if !secret.isEmpty { handshake = AuthHandshake(role: .dialer, secret: secret, nonce: AuthHandshake.randomNonce()) }
        }

        func channelActive(context: ChannelHandlerContext) {
            if let handshake {
                var hello = Dagent_Frame()
                hello.authHello = handshake.hello()
                context.writeAndFlush(wrapOutboundOut(hello), promise: nil)
            } else {
                ask(context)
            }
            context.fireChannelActive()
        }

        func ask(_ context: ChannelHandlerContext) {
            for frame in TreeQuery.queryFrames(name: name) { context.write(wrapOutboundOut(frame), promise: nil) }
            context.flush()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            if let error = TreeQuery.refusal(frame, endpoint: endpoint) {
                promise.fail(error)
                context.close(promise: nil)
                return
            }
            if var h = handshake, !h.isAuthenticated {
                switch h.receive(frame.body) {
                case .authenticated(let body):
                    handshake = h
                    if let body {
                        var f = Dagent_Frame()
                        f.body = body
                        context.write(wrapOutboundOut(f), promise: nil)
                    }
                    ask(context)
                case .send:
                    handshake = h   // a dialer never has more to say mid-handshake
                case .failed(let why):
                    promise.fail(DAgentError(.unauthenticated, "\(endpoint): \(why)"))
                    context.close(promise: nil)
                }
                return
            }
            if case .treeReply(let reply)? = frame.body { promise.succeed(reply) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(DAgentError(.refused, "connection to \(endpoint) closed before the tree reply arrived"))
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            promise.fail(DAgentError(.badFrame, "\(error)"))
            context.close(promise: nil)
        }
    }
}
