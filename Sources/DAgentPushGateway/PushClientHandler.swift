import DAgentPush
import NIOCore
import NIOWebSocket

/// The channel handler of one browser client, after the WebSocket upgrade.
/// Thin: text frames go to the gateway; binary frames close with 1003,
/// oversized ones with 1009, protocol errors with 1002; pings are answered.
final class PushClientHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let gateway: PushGateway
    let token: String?
    let remote: String
    let maxFrameBytes: Int
    var id: PushClientID?
    var closeCode: UInt16 = 1006
    var closing = false

    let deflate: PushDeflateParams?
    /// The context of the channel's `WebSocketFrameEncoder` (see `PushConn`).
    let encoder: ChannelHandlerContext?

    init(gateway: PushGateway, token: String?, remote: String, maxFrameBytes: Int, deflate: PushDeflateParams? = nil,
         encoder: ChannelHandlerContext? = nil) {
        self.gateway = gateway
        self.encoder = encoder
        self.token = token
        self.remote = remote
        self.maxFrameBytes = maxFrameBytes
        self.deflate = deflate
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        gateway.onLoop { [self] in
            id = gateway.accepted(channel, token: token, remote: remote, deflate: deflate, encoder: encoder)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            var data = frame.unmaskedData
            let bytes = data.readBytes(length: data.readableBytes) ?? []
            gateway.onLoop { [self] in
                if let id { gateway.received(id, bytes) }
            }
        case .binary:
            fail(context, PushCodes.unsupportedData, "binary frames are not accepted: the push protocol is JSON text frames")
        case .ping:
            var pong = frame.unmaskedData
            let reply = WebSocketFrame(fin: true, opcode: .pong, data: pong.readSlice(length: pong.readableBytes) ?? pong)
            context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
        case .connectionClose:
            var data = frame.unmaskedData
            closeCode = data.readInteger(as: UInt16.self) ?? 1005
            if !closing {
                closing = true
                var echo = context.channel.allocator.buffer(capacity: 2)
                echo.writeInteger(closeCode == 1005 ? 1000 : closeCode)
                context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: echo))).whenComplete { _ in
                    context.close(promise: nil)
                }
            }
        default:
            break
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        gateway.onLoop { [self] in
            if let id { gateway.writability(id, writable) }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let code = closeCode
        gateway.onLoop { [self] in
            if let id { gateway.gone(id, code: code) }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        switch error {
        case NIOWebSocketError.invalidFrameLength:
            fail(context, PushCodes.tooBig, "a frame is over max_frame_bytes=\(maxFrameBytes)")
        case NIOWebSocketFrameAggregator.Error.accumulatedFrameSizeIsTooLarge:
            fail(context, PushCodes.tooBig, "a fragmented message is over max_frame_bytes=\(maxFrameBytes)")
        case NIOWebSocketFrameAggregator.Error.tooManyFragments:
            fail(context, PushCodes.tooBig, "a message has more than 256 fragments")
        case PushDeflateError.tooLarge:
            fail(context, PushCodes.tooBig, "\(error)")
        case PushDeflateError.corrupt:
            fail(context, PushCodes.invalidData, "\(error)")
        case PushDeflateError.reservedBits(let why):
            fail(context, PushCodes.protocolError, "WebSocket protocol error: \(why)")
        case is NIOWebSocketError, is NIOWebSocketFrameAggregator.Error:
            fail(context, 1002, "WebSocket protocol error: \(error)")
        default:
            context.close(promise: nil)
        }
    }

    /// Closes the connection from here with a code and a reason.
    func fail(_ context: ChannelHandlerContext, _ code: UInt16, _ reason: String) {
        guard !closing else { return }
        closing = true
        closeCode = code
        let channel = context.channel
        gateway.onLoop { [self] in
            if let id {
                gateway.disconnect(id, code: code, reason: reason)
            } else {
                gateway.sendClose(channel, code: code, reason: reason)
            }
        }
    }
}
