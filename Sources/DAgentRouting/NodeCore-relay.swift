import DAgentWire
import NIOCore

/// A data frame to relay as it came in: its parsed routing header and its
/// bytes (a slice of what was read), the hop to write it to and the hop limit
/// to patch in. `count` is 0 for a single envelope, else the batch's size.
/// The driver writes it straight into the hop's outgoing buffer
/// (`FrameWriter.appendRelayed` / `appendRawBatch`): no `CoreAction`, no
/// re-encoding.
public struct Relay: Equatable {
    public let hop: Hop
    public let raw: ByteBuffer
    public let header: EnvelopeHeader
    public let hopLimit: UInt32
    public let count: Int
}

/// Relaying without actions: the driver's entry point for frames read off a
/// link. A data frame that only passes through comes back as a `Relay` for
/// the driver to write itself, when no earlier action is still pending (so
/// the order on every link is kept); everything else is handled as `receive`
/// handles it, with actions.
extension NodeCore {
    /// `receive(frameBody:from:nowNs:)`, except that a frame relayed on the
    /// fast path is returned instead of emitted as `.forwardRaw`/`.forwardRawBatch`,
    /// and a publish (without queue picks) puts its copies for other links
    /// into `relays` and its local deliveries into `publications`
    /// (NodeCore-pubfast.swift) instead of actions: the driver takes both
    /// after the call, relays before any action. Returns nil when the frame
    /// was handled here (delivered, failed, a control frame, a publish, or
    /// relayed through an action because actions were pending).
    public func receiveOrRelay(frameBody: ByteBuffer, from id: LinkID, nowNs: UInt64) -> Relay? {
        guard let link = links[id] else { return nil }
        // A link still in its cluster-secret handshake, or actions pending: the full rules.
        guard !link.authPending, actions.isEmpty && !draining else {
            receive(frameBody: frameBody, from: id, nowNs: nowNs)
            return nil
        }
        do {
            switch try InboundFrame.classify(frameBody) {
            case let .envelope(raw, header) where header.kind != Dagent_Kind.publish.rawValue:
                links[id]!.lastHeardNs = nowNs
                links[id]!.framesIn &+= 1
                return receiveRaw(raw, header: header, from: id, nowNs: nowNs, inline: true)
            case let .batch(raw, header, count) where header.kind != Dagent_Kind.publish.rawValue:
                links[id]!.lastHeardNs = nowNs
                links[id]!.framesIn &+= 1
                return receiveRawBatch(raw, header: header, count: count, from: id, nowNs: nowNs, inline: true)
            case let .envelope(raw, header):   // a publish: copies into `relays`, local deliveries into `publications`
                links[id]!.lastHeardNs = nowNs
                links[id]!.framesIn &+= 1
                receivePublishRaw(raw, header: header, from: id, nowNs: nowNs, inline: true)
                return nil
            case let .batch(raw, header, count):   // publishes on one topic
                links[id]!.lastHeardNs = nowNs
                links[id]!.framesIn &+= 1
                receivePublishBatch(raw, header: header, count: count, from: id, nowNs: nowNs, inline: true)
                return nil
            case .control:
                receive(frameBody: frameBody, from: id, nowNs: nowNs)   // classifies again: control frames are rare
                return nil
            }
        } catch {
            badFrame(id, error)
            return nil
        }
    }
}

extension Relay {
    /// The same relay as the action `receive` emits for it.
    public var action: CoreAction {
        count == 0
            ? .forwardRaw(hop, raw, hopLimitOffset: header.hopLimitOffset, hopLimit: hopLimit)
            : .forwardRawBatch(hop, raw, hopLimitOffset: header.hopLimitOffset, hopLimit: hopLimit)
    }
}
