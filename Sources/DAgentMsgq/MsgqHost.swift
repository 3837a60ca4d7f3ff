import DAgentLink
import DAgentRouting
import DAgentWire
import Logging
import NIOCore

/// The node options a message-queue link reads (taken from the node's config once).
package struct MsgqOptions: Sendable {
    package var maxFrameBytes: Int
    package var slowConsumerBytes: Int
    package var heartbeatInterval: Double
    package var maxChildren: Int
    package var msgqQueueBytes: Int
    package var msgqSendTimeout: Double
    package var msgqSendTimeoutOverride: Double?

    package init(maxFrameBytes: Int, slowConsumerBytes: Int, heartbeatInterval: Double, maxChildren: Int,
                msgqQueueBytes: Int, msgqSendTimeout: Double, msgqSendTimeoutOverride: Double?) {
        self.maxFrameBytes = maxFrameBytes
        self.slowConsumerBytes = slowConsumerBytes
        self.heartbeatInterval = heartbeatInterval
        self.maxChildren = maxChildren
        self.msgqQueueBytes = msgqQueueBytes
        self.msgqSendTimeout = msgqSendTimeout
        self.msgqSendTimeoutOverride = msgqSendTimeoutOverride
    }
}

/// What a message-queue link needs from the node that drives it: its event
/// loop and clock, its routing core, and the calls that report frames and
/// link changes. The node (`DAgentNode.Node`) conforms; this module never
/// sees the node's type, so the dependency points one way only.
package protocol MsgqHost: AnyObject {
    var eventLoop: EventLoop { get }
    var logger: Logger { get }
    var nowNs: UInt64 { get }
    var core: NodeCore { get }
    var msgqOptions: MsgqOptions { get }
    /// The leaf link this node joined its agent with, if any.
    var msgqLeaf: MsgqParentLinkIO? { get set }
    func allocateLinkID() -> LinkID
    func linkUp(_ id: LinkID, io: any LinkIO, address: String, isParent: Bool, parentIndex: Int?)
    func linkDown(_ id: LinkID, reason: String)
    func received(frameBody: ByteBuffer, from id: LinkID)
    func badFrame(_ id: LinkID, _ error: FrameError)
    /// Performs the core's pending actions.
    func perform()
    /// Flushes the links written to since the last flush.
    func flushDirty()
    func scheduleFlush()
    /// A leaf link was released; the node keeps it until its receiver thread ends.
    func msgqLeafReleased(_ io: MsgqParentLinkIO)
}
