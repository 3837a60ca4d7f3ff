import DAgentWire
import NIOCore

/// The per-connection handler of a TCP link: it feeds decoded frames to the
/// node, reports the link up and down, flushes once per read burst (so
/// forwarded messages batch into few syscalls) and cuts off slow consumers.
final class LinkHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Dagent_Frame
    typealias OutboundOut = Dagent_Frame

    let node: Node
    let linkID: LinkID
    let isParent: Bool
    let parentIndex: Int?
    private var announced = false

    init(node: Node, linkID: LinkID, isParent: Bool, parentIndex: Int?) {
        self.node = node
        self.linkID = linkID
        self.isParent = isParent
        self.parentIndex = parentIndex
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { announce(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        announce(context)
        context.fireChannelActive()
    }

    private func announce(_ context: ChannelHandlerContext) {
        guard !announced else { return }
        announced = true
        node.linkUp(linkID, channel: context.channel, isParent: isParent, parentIndex: parentIndex)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        node.received(frame, from: linkID)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        node.flushDirty()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if !context.channel.isWritable {
            node.slowConsumer(linkID, channel: context.channel)
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        node.linkDown(linkID, reason: "connection closed")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let frameError = error as? FrameError {
            node.badInput(linkID, error: frameError, channel: context.channel)
        } else if let decodeError = error as? ByteToMessageDecoderError,
                  case .dataReceivedInErrorState = decodeError {
            // The decoder already failed once on this link and is closing it.
        } else {
            node.linkError(linkID, error: error)
            context.close(promise: nil)
        }
    }
}
