import DAgentWire
import NIOCore
import DAgentRouting
import DAgentLink
import Logging

/// Turns received queue messages into deliveries for the node: reassembles
/// frames (`MsgqReassembler`); the routing core reads them on the node's loop.
/// Shared by the receiver thread (`MsgqReceiver`) and the message-queue event
/// loop (`MsgqEventLoop`), which run it on different threads.
package struct MsgqIntake {
    package let senderIsMtype: Bool
    private var reassembler: MsgqReassembler
    private let allocator = ByteBufferAllocator()

    package init(senderIsMtype: Bool, maxFrameBytes: Int) {
        self.senderIsMtype = senderIsMtype
        reassembler = MsgqReassembler(maxFrameBytes: maxFrameBytes)
    }

    package enum Outcome {
        /// Nothing for the node yet (a fragment), or appended to the batch.
        case none
        case appended
        /// A receiver's wake-up (never handed to the node).
        case wake
    }

    /// Takes one queue message (`text`: the bytes after the message type).
    package mutating func take(_ text: UnsafeRawBufferPointer, mtype: Int, into batch: inout [MsgqDelivery]) -> Outcome {
        var buffer = allocator.buffer(capacity: text.count)
        buffer.writeBytes(text)
        guard let inbound = reassembler.receive(buffer, mtype: mtype, senderIsMtype: senderIsMtype) else { return .none }
        if case .wake = inbound { return .wake }
        batch.append(inbound)
        return .appended
    }
}
