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
    var closing = false {
        didSet { if closing { shared.closeDirect() } }
    }
    /// Bytes handed to the channel whose writes have not completed.
    /// (Read on the loop, which alone changes it: no lock.)
    var unsent: Int { shared.unsent }
    /// The write side shared with other threads: the writes in flight, and the
    /// direct writes of plaintext links (`LinkWriteState`).
    let shared: LinkWriteState
    /// Called as each write completes (stored: no closure is allocated per flush).
    /// It holds `shared`, not the link: a weak reference to the link would give the
    /// link a side table, and every retain and release of it the slow path.
    private let written: (Result<Void, Error>) -> Void

    /// `direct`: allow writes from other threads straight to the socket (plaintext links only).
    init(channel: Channel, maxBatchBytes: Int, direct: Bool = false) {
        self.channel = channel
        writer = FrameWriter(allocator: channel.allocator, maxBatchBytes: maxBatchBytes, forwardThreshold: Self.forwardThreshold)
        let shared = LinkWriteState(descriptor: direct ? LinkWriteState.duplicateDescriptor(of: channel) : -1, channel: channel)
        self.shared = shared
        written = { _ in shared.completed() }
        if direct {
            channel.closeFuture.whenComplete { _ in shared.closeDirect() }
        }
    }

    /// Marks the link busy for direct writers when the loop starts a burst.
    @inline(__always)
    private func willAppend() {
        if writer.isEmpty { shared.markBusy() }
    }

    func append(_ envelope: Dagent_Envelope) {
        willAppend()
        writer.append(envelope)
    }

    func append(_ header: MessageHeader, payload: UnsafeRawBufferPointer) {
        willAppend()
        writer.append(header, payload: payload)
    }

    func appendRelayed(_ raw: ByteBuffer, header: EnvelopeHeader, hopLimit: UInt32) {
        willAppend()
        writer.appendRelayed(raw, header: header, hopLimit: hopLimit)
    }

    func appendRaw(_ raw: ByteBuffer, hopLimitOffset: Int, hopLimit: UInt32) {
        willAppend()
        writer.appendRaw(raw, hopLimitOffset: hopLimitOffset, hopLimit: hopLimit)
    }

    func appendRawBatch(_ raw: ByteBuffer, hopLimitOffset: Int, hopLimit: UInt32) {
        willAppend()
        writer.appendRawBatch(raw, hopLimitOffset: hopLimitOffset, hopLimit: hopLimit)
    }

    func append(_ frame: Dagent_Frame) throws {
        willAppend()
        try writer.append(frame)
    }

    @discardableResult
    func flush() -> EventLoopFuture<Void>? { write() }

    /// Writes and flushes what is buffered (a direct write's tail first, then
    /// its parts in order, then one flush), under the shared lock so that no
    /// direct write starts inside it; returns the last write's future.
    @discardableResult
    func write() -> EventLoopFuture<Void>? {
        shared.onLoopLocked { writeLocked() }
    }

    private func writeLocked() -> EventLoopFuture<Void>? {
        let shared = self.shared
        defer { shared.busy = !writer.isEmpty }   // bytes the write's callbacks appended are still here
        let remainder = shared.takeRemainder()
        guard !writer.isEmpty || remainder != nil else { return nil }
        let channel = self.channel
        var forwarded = 0
        let done: EventLoopFuture<Void>
        var size = 0
        if writer.isEmpty {
            size = remainder!.readableBytes
            done = channel.writeAndFlush(remainder!)
        } else {
            if let remainder {
                forwarded += remainder.readableBytes
                channel.write(remainder, promise: nil)
            }
            writer.takeSegments { forwarded += $0.readableBytes; channel.write($0, promise: nil) }
            let bytes = writer.bytesForWrite()
            size = bytes.readableBytes
            done = channel.writeAndFlush(consume bytes)   // no copy left here: the writer's buffer is unique again once written
            writer.clearAfterWrite(handedOver: size, allocator: channel.allocator)
        }
        shared.unsent += size + forwarded
        shared.inFlight.append(size + forwarded)   // the earlier parts' writes complete before this one
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

    /// (On the loop; a direct write's unwritten tail, at most one frame, is left out: no lock per publish copy.)
    var bytesPending: Int { shared.unsent + writer.bufferedBytes }

    func closeForShutdown() -> EventLoopFuture<Void>? {
        shared.closeDirect()
        return channel.close().recover { _ in }
    }

    func didGoDown() { shared.closeDirect() }
}
