import DAgentWire
import NIOCore
import DAgentRouting
import DAgentLink
import Logging

/// Turns received queue messages into deliveries for the node: reassembles
/// frames (`MsgqReassembler`) and, on a leaf, decodes what brothers sent.
/// Shared by the receiver thread (`MsgqReceiver`) and the message-queue event
/// loop (`MsgqEventLoop`), which run it on different threads.
package struct MsgqIntake {
    package let senderIsMtype: Bool
    /// Decode frames from brothers here (a leaf's receiver), off the routing path.
    package let decodeDirect: Bool
    private var reassembler: MsgqReassembler
    private let allocator = ByteBufferAllocator()

    package init(senderIsMtype: Bool, decodeDirect: Bool, maxFrameBytes: Int) {
        self.senderIsMtype = senderIsMtype
        self.decodeDirect = decodeDirect
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
        if decodeDirect, case let .frames(sender, _, bodies) = inbound, sender != MsgqWire.agentChannel {
            var envelopes: [Dagent_Envelope] = []
            var problems: [String] = []
            for body in bodies {
                let (decoded, problem) = NodeCore.decodeDirect(body)
                envelopes += decoded
                if let problem { problems.append(problem) }
            }
            batch.append(.direct(sender: sender, envelopes: envelopes, problems: problems))
        } else {
            batch.append(.inbound(inbound))
        }
        return .appended
    }
}
