import DAgentLink
import DAgentWire
import NIOCore
import DAgentRouting
import DAgentMsgq

/// A TCP link: one NIO channel, one outbound buffer written once per burst.
/// Large relayed frames are not copied into it: they are written as the
/// slices they arrived in, between the buffer's parts (`FrameWriter.forwardThreshold`).
final class TCPLinkIO: LinkIO {
    /// Relayed frames from this size on are forwarded as slices: below it a copy is
    /// cheaper than a separate write (and, with TLS, a record of its own).
    static let forwardThreshold = 4096

    let channel: Channel
    var writer: FrameWriter
    var closing = false

    init(channel: Channel, maxBatchBytes: Int) {
        self.channel = channel
        writer = FrameWriter(allocator: channel.allocator, maxBatchBytes: maxBatchBytes, forwardThreshold: Self.forwardThreshold)
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

    func flush() { _ = write() }

    /// Writes and flushes what is buffered (its parts in order, then one flush);
    /// returns the last write's future.
    @discardableResult
    func write() -> EventLoopFuture<Void>? {
        guard !writer.isEmpty else { return nil }
        let channel = self.channel
        var last: EventLoopFuture<Void>?
        writer.take(allocator: channel.allocator) { last = channel.write($0) }
        channel.flush()
        return last
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
