import DAgentLink
import DAgentWire
import NIOCore
import DAgentRouting
import DAgentMsgq

/// A TCP link: one NIO channel, one outbound buffer written once per burst.
/// Large relayed frames are not copied into it: they are written as the
/// slices they arrived in, before the buffer's bytes (`FrameWriter.forwardThreshold`).
/// It keeps its own count of the bytes handed to the channel and not yet
/// written (`unsent`), so the slow-subscriber check that runs for every
/// publish copy (`bytesPending`) does not ask the channel (a generic
/// `getOption`, about 6% of a fan-out node's CPU).
final class TCPLinkIO: LinkIO {
    /// Relayed frames from this size on are forwarded as slices: below it a copy is
    /// cheaper than a separate write (and, with TLS, a record of its own).
    static let forwardThreshold = 4096

    let channel: Channel
    var writer: FrameWriter
    var closing = false
    /// Bytes handed to the channel whose writes have not completed.
    var unsent: Int { tally.unsent }
    /// Counts the writes in flight. A class of its own, so that the completion callback
    /// can hold it strongly: a weak reference to the link would give the link a side
    /// table, and every retain and release of it (one per message sent) the slow path.
    private final class WriteTally {
        var unsent = 0
        /// The sizes of the writes in flight, oldest first (a channel completes its writes in order).
        var inFlight = CircularBuffer<Int>(initialCapacity: 4)
    }
    private let tally = WriteTally()
    /// Called as each write completes (stored: no closure is allocated per flush).
    private let written: (Result<Void, Error>) -> Void

    init(channel: Channel, maxBatchBytes: Int) {
        self.channel = channel
        writer = FrameWriter(allocator: channel.allocator, maxBatchBytes: maxBatchBytes, forwardThreshold: Self.forwardThreshold)
        let tally = self.tally
        written = { _ in
            guard !tally.inFlight.isEmpty else { return }
            tally.unsent -= tally.inFlight.removeFirst()
        }
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

    /// Writes and flushes what is buffered (its parts in order, then one flush);
    /// returns the last write's future.
    @discardableResult
    func write() -> EventLoopFuture<Void>? {
        guard !writer.isEmpty else { return nil }
        let channel = self.channel
        var forwarded = 0
        writer.takeSegments { forwarded += $0.readableBytes; channel.write($0, promise: nil) }
        let bytes = writer.bytesForWrite()
        let size = bytes.readableBytes
        let done = channel.writeAndFlush(consume bytes)   // no copy left here: the writer's buffer is unique again once written
        writer.clearAfterWrite(handedOver: size, allocator: channel.allocator)
        tally.unsent += size + forwarded
        tally.inFlight.append(size + forwarded)   // the segments' writes complete before this one
        done.whenComplete(written)   // runs at once if the socket took it all (the common case)
        return done
    }

    func close(reason: String) {
        let channel = self.channel
        if let written = write() {
            written.whenComplete { _ in channel.close(promise: nil) }
        } else {
            channel.close(promise: nil)
        }
    }

    var bytesPending: Int { unsent + writer.bufferedBytes }

    func closeForShutdown() -> EventLoopFuture<Void>? { channel.close().recover { _ in } }

    func didGoDown() {}
}
