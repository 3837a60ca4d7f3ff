import DAgentWire
import NIOCore

/// The outbound side of one link, whatever carries it (a TCP connection, a
/// leaf's message-queue channel). The node appends what the core asks it to
/// send, then flushes once per burst; consecutive messages to one destination
/// travel as one batch (`FrameWriter`). All calls happen on the node's event loop.
public protocol LinkIO: AnyObject {
    /// Set once the link is being closed; nothing more is appended.
    var closing: Bool { get set }
    /// An envelope that starts at this node.
    func append(_ envelope: Dagent_Envelope)
    /// A message that starts at this node, encoded from the caller's bytes.
    func append(_ header: MessageHeader, payload: UnsafeRawBufferPointer)
    /// A relayed envelope with its routing header (may join a batch).
    func appendRelayed(_ raw: ByteBuffer, header: EnvelopeHeader, hopLimit: UInt32)
    /// A relayed envelope (raw bytes, hop limit patched).
    func appendRaw(_ raw: ByteBuffer, hopLimitOffset: Int, hopLimit: UInt32)
    /// A relayed batch (raw bytes, hop limit patched).
    func appendRawBatch(_ raw: ByteBuffer, hopLimitOffset: Int, hopLimit: UInt32)
    /// A control frame.
    func append(_ frame: Dagent_Frame) throws
    /// Writes what was appended since the last flush; a future that completes
    /// once those bytes (and everything before them) are written out, where the
    /// transport can tell (a TCP link), else nil.
    @discardableResult
    func flush() -> EventLoopFuture<Void>?
    /// Flushes, then closes the link. The node hears `linkDown` when it is gone.
    func close(reason: String)
    /// Bytes appended or written but not yet taken by the peer's transport.
    var bytesPending: Int { get }
    /// The node is stopping: close now; a future if closing completes later.
    func closeForShutdown() -> EventLoopFuture<Void>?
    /// The node has taken the link down (any cause): release what it holds.
    func didGoDown()
}
