import DAgentLink
import DAgentWire
import NIOCore
import DAgentRouting
import DAgentMsgq

/// A TCP link: one NIO channel, one outbound buffer written once per burst.
final class TCPLinkIO: LinkIO {
    let channel: Channel
    var writer: FrameWriter
    var closing = false

    init(channel: Channel, maxBatchBytes: Int) {
        self.channel = channel
        writer = FrameWriter(allocator: channel.allocator, maxBatchBytes: maxBatchBytes)
    }

    func append(_ envelope: Dagent_Envelope) { writer.append(envelope) }

    func append(_ header: MessageHeader, payload: UnsafeRawBufferPointer) { writer.append(header, payload: payload) }

    func appendRelayed(_ raw: ByteBuffer, header: EnvelopeHeader, hopLimit: UInt32) {
        writer.appendRelayed(raw, header: header, hopLimit: hopLimit)
    }

    func appendRaw(_ raw: ByteBuffer, hopLimitOffset: Int, hopLimit: UInt32) {
        writer.appendRaw(raw, hopLimitOffset: hopLimitOffset, hopLimit: hopLimit)
    }

    func appendRawBatch(_ raw: ByteBuffer, hopLimitOffset: Int, hopLimit: UInt32) {
        writer.appendRawBatch(raw, hopLimitOffset: hopLimitOffset, hopLimit: hopLimit)
    }

    func append(_ frame: Dagent_Frame) throws { try writer.append(frame) }

    @discardableResult
    func flush() -> EventLoopFuture<Void>? { write() }

    /// Writes and flushes what is buffered; returns the write's future.
    @discardableResult
    func write() -> EventLoopFuture<Void>? {
        guard !writer.isEmpty else { return nil }
        return channel.writeAndFlush(writer.take(allocator: channel.allocator))
    }

    func close(reason: String) {
        let channel = self.channel
        if let written = write() {
            written.whenComplete { _ in channel.close(promise: nil) }
        } else {
            channel.close(promise: nil)
        }
    }

    var bytesPending: Int {
        ((try? channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0) + writer.bufferedBytes
    }

    func closeForShutdown() -> EventLoopFuture<Void>? { channel.close().recover { _ in } }

    func didGoDown() {}
}
