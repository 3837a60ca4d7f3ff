import DAgentLink
import DAgentRouting
import DAgentWire
import Foundation
import NIOCore

/// The data path's writes without envelopes or actions: a message that starts
/// here is encoded from the caller's bytes into the outgoing buffer of the
/// hop the core names (`NodeCore.sendFast`), and a frame that only passes
/// through is copied into its next link's buffer as it came in, joining the
/// batch open there (`NodeCore.receiveOrRelay`). The buffers are flushed once
/// per burst. What the fast path does not take goes through the core's
/// actions as before.
extension Node {
    /// Sends a message that starts at this node (on the event loop), from
    /// `payload` as the caller holds it. Errors known at once are thrown.
    /// The clock (`nowNs`) is read only off the fast path: a stream of sends reads none.
    /// Returns the link the message was written to, nil when the core's actions took it.
    @discardableResult
    func sendFromHere(_ header: MessageHeader, payload: UnsafeRawBufferPointer, nowNs: @autoclosure () -> UInt64) throws(DAgentError) -> LinkID? {
        var h = header
        var link: LinkID?
        if let hop = try core.sendFast(&h, payloadCount: payload.count) {
            write(h, payload: payload, to: hop)
            link = hop.link
        } else {
            try core.sendStamped(h.envelope(payload: payload), nowNs: nowNs())
            perform()
        }
        scheduleFlush()
        return link
    }

    /// `sendFromHere` for a payload held as `Data`.
    @discardableResult
    func sendFromHere(_ header: MessageHeader, payload: Data, nowNs: @autoclosure () -> UInt64) throws(DAgentError) -> LinkID? {
        let sent: Result<LinkID?, DAgentError> = payload.withUnsafeBytes { p in
            do throws(DAgentError) { return .success(try sendFromHere(header, payload: p, nowNs: nowNs())) } catch { return .failure(error) }
        }
        return try sent.get()
    }

    /// `sendFromHere` for a payload held as a `ByteBuffer` (a slice of what was read).
    @discardableResult
    func sendFromHere(_ header: MessageHeader, payload: ByteBuffer, nowNs: @autoclosure () -> UInt64) throws(DAgentError) -> LinkID? {
        let sent: Result<LinkID?, DAgentError> = payload.withUnsafeReadableBytes { p in
            do throws(DAgentError) { return .success(try sendFromHere(header, payload: p, nowNs: nowNs())) } catch { return .failure(error) }
        }
        return try sent.get()
    }

    /// Writes a stamped message to the hop the core named: a link, or a
    /// brother's channel through the msgq parent link.
    @inline(__always)
    func write(_ header: MessageHeader, payload: UnsafeRawBufferPointer, to hop: Hop) {
        if hop.isBrother {
            guard let leaf = msgqLeaf, leaf.link == hop.link else { return }
            leaf.append(header, payload: payload, brother: hop.brother)
        } else {
            guard let link = linkIO(hop.link) else { return }
            link.append(header, payload: payload)
        }
        markDirty(hop.link)
    }

    /// The link `id`, from `lastWritten` when it is the one written last (a burst), else from `links`.
    @inline(__always)
    func linkIO(_ id: LinkID) -> (any LinkIO)? {
        if let last = lastWritten, last.id == id { return last.io }
        guard let io = links[id] else { return nil }
        lastWritten = (id, io)
        return io
    }

    /// Writes a frame the core relays without an action.
    @inline(__always)
    func write(_ relay: Relay) {
        let hop = relay.hop
        if hop.isBrother {
            guard let leaf = msgqLeaf, leaf.link == hop.link else { return }
            if relay.count == 0 {
                leaf.appendRelayed(relay.raw, header: relay.header, hopLimit: relay.hopLimit, brother: hop.brother)
            } else {
                leaf.appendRawBatch(relay.raw, hopLimitOffset: relay.header.hopLimitOffset, hopLimit: relay.hopLimit, brother: hop.brother)
            }
        } else {
            guard let link = linkIO(hop.link) else { return }
            if relay.count == 0 {
                link.appendRelayed(relay.raw, header: relay.header, hopLimit: relay.hopLimit)
            } else {
                link.appendRawBatch(relay.raw, hopLimitOffset: relay.header.hopLimitOffset, hopLimit: relay.hopLimit)
            }
        }
        markDirty(hop.link)
    }
}
