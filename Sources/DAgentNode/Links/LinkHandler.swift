import DAgentWire
import NIOCore
import DAgentRouting
import DAgentLink
import DAgentMsgq

/// The per-connection handler of a TCP link. It frames the byte stream
/// itself (`FrameReader`) and hands each frame body to the node, with no
/// per-frame pipeline traversal. It reports the link up and down, flushes once
/// per read burst (so forwarded messages batch into few syscalls; a publish
/// fan-out in the read's last frame is flushed link by link as it is copied,
/// `Node.writeRelays`) and cuts off slow consumers.
final class LinkHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let node: Node
    let linkID: LinkID
    let isParent: Bool
    let parentIndex: Int?
    private var reader: FrameReader
    private var announced = false
    private var failed = false
    /// Set on links this node dials to a peer replica.
    let peerHello: Dagent_PeerHello?

    init(node: Node, linkID: LinkID, isParent: Bool, parentIndex: Int?, maxFrameBytes: Int,
         peerHello: Dagent_PeerHello? = nil) {
        self.node = node
        self.linkID = linkID
        self.isParent = isParent
        self.parentIndex = parentIndex
        self.reader = FrameReader(maxFrameBytes: maxFrameBytes)
        self.peerHello = peerHello
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
        let io = TCPLinkIO(channel: context.channel, maxBatchBytes: node.tcpMaxBatchBytes, direct: node.allowsDirectWrites)
        let address = context.channel.remoteAddress.map(node.describe) ?? "?"
        if let peerHello {
            node.peerLinkUp(linkID, io: io, address: address, hello: peerHello)
        } else {
            node.linkUp(linkID, io: io, address: address, isParent: isParent, parentIndex: parentIndex)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        reader.append(unwrapInboundIn(data))
        do {
            while let body = try reader.next() {
                node.received(frameBody: body, from: linkID, endOfRead: reader.pendingBytes == 0)
            }
        } catch {
            failed = true
            node.badFrame(linkID, error)
        }
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
        node.linkError(linkID, error: error)
        context.close(promise: nil)
    }
}

