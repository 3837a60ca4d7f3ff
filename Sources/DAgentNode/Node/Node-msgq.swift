import DAgentWire
import Foundation
import NIOCore
import DAgentRouting
import DAgentLink
import DAgentMsgq

/// Joining a parent over message queues (`push:msgq://PATH`).
extension Node {
    /// Opens the agent's queues and table, starts the receiver, registers.
    /// On failure the parent is marked down and retried with backoff.
    func dialMsgq(path: String, index: Int) {
        if !retiredLeafLinks.isEmpty {
            reapRetiredLeafLinks()
            if !retiredLeafLinks.isEmpty {
                // The previous receiver still reads our channel: never two readers at once.
                for old in retiredLeafLinks { old.stopReceiver() }
                eventLoop.scheduleTask(in: .milliseconds(20)) { self.dialMsgq(path: path, index: index) }
                return
            }
        }
        let attachment: MsgqAttachment
        do {
            attachment = try MsgqAttachment.open(path: path, nowNs: nowNs)
        } catch {
            dialing = false
            parentSelector?.markDown(index, nowNs: nowNs)
            let message = "parent msgq://\(path) unreachable: \((error as? DAgentError)?.reason ?? "\(error)")"
            if message != lastDialError {
                logger.warning("\(message); retrying")
                lastDialError = message
            }
            dialParent()
            return
        }
        lastDialError = ""
        dialing = false
        // A fresh channel (message type) per connection: it is public (the name
        // table lists it), so it is not the session, which stays a secret.
        let id = allocateLinkID()
        let io = MsgqParentLinkIO(node: self, attachment: attachment, link: id, channel: MsgqWire.randomChannel())
        msgqLeaf = io
        io.start()
        linkUp(id, io: io, address: "msgq://\(path)", isParent: true, parentIndex: index)
    }

    /// A msgq parent link was released; keep it until its receiver thread ends.
    package func msgqLeafReleased(_ io: MsgqParentLinkIO) {
        retiredLeafLinks.append(io)
    }

    /// Detaches released links whose receiver thread has ended.
    func reapRetiredLeafLinks() {
        retiredLeafLinks.removeAll { old in
            guard old.receiver.hasExited else { return false }
            old.attachment.detach()
            return true
        }
    }
}
