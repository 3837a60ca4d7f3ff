import DAgentWire
import NIOCore

/// Local delivery: messages for this node go into `inbox` as `DataMessage`s
/// (the header parsed once, the payload a slice of the frame), in arrival
/// order, and the driver hands them to its handlers in batches
/// (`takeInbox`). No `CoreAction` per message.
extension NodeCore {
    /// Takes the messages delivered since the last call; `spare` (emptied,
    /// capacity kept) becomes the new inbox, so no array is allocated per batch.
    public func takeInbox(swappingWith spare: inout [DataMessage]) {
        spare.removeAll(keepingCapacity: true)
        swap(&inbox, &spare)
    }

    /// The fast path for envelope bytes addressed to this node: decoded once
    /// into the inbox. Returns false (nothing done) for what needs the full
    /// rules: pings, errors, unknown kinds, oversized payloads, malformed
    /// bytes, another destination. A confirmed send (a DATA with a cookie)
    /// takes it too: its receipt is the driver's, sent once the message was
    /// accepted (`acceptDelivery`). Inside a batch, the batch's `hopLimit` is
    /// the message's.
    /// With `source` `.exactly(name)`, only an envelope whose `src` is those bytes takes it.
    @inline(__always)
    package func deliverRaw(_ raw: ByteBuffer, cache: inout EnvelopeCodec.StringCache, hopLimit: UInt32? = nil,
                            source: BatchSources = .any) -> Bool {
        guard var m = try? EnvelopeCodec.decodeMessage(raw, cache: &cache) else { return false }
        switch source {
        case .any: break
        case .exactly(let name): guard EnvelopeCodec.sameBytes(m.src, name) else { return false }
        case .slowPath: return false
        }
        if let hopLimit { m.hopLimit = hopLimit }
        switch m.kind {
        case .data, .response: break
        case .request: guard m.type != WireConstants.pingType else { return false }
        default: return false
        }
        guard m.payload.readableBytes <= config.maxMessageBytes, m.dst == config.name else { return false }
        stats.delivered &+= 1
        inbox.append(consume m)   // moved, not copied (a copy retains and releases every field)
        return true
    }

    /// Envelopes of a batch addressed to this node (from a link, or from a
    /// brother when `direct` names it): the fast path for each, the full rules
    /// for the rest. A malformed batch closes the link, or from a brother is
    /// dropped with a log line.
    package func deliverBatch(_ raw: ByteBuffer, header: EnvelopeHeader, from id: LinkID, direct: String?, nowNs: UInt64) {
        do {
            var cache = EnvelopeCodec.StringCache()
            cache.dst = header.dst
            // The source check of the fast path is made on each envelope as it is decoded (one
            // pass over the batch); one that fails it takes the slow path, which checks it again.
            let sources: BatchSources = header.dst == config.name
                ? (links[id].map { $0.registered || $0.isParent ? batchSources(raw, dst: header.dst, link: $0) : .slowPath } ?? .slowPath)
                : .slowPath
            if case .exactly(let name) = sources { cache.src = name }
            try BatchCodec.forEachEnvelope(raw) { (slice: ByteBuffer) throws(FrameError) in
                if deliverRaw(slice, cache: &cache, hopLimit: header.hopLimit, source: sources) { return }
                var envelope = try EnvelopeCodec.decode(slice, cache: &cache)
                if envelope.dst != header.dst {
                    if let direct {
                        dropDirect("an envelope to '\(envelope.dst)' inside a batch addressed to '\(header.dst)'", sender: direct)
                    } else {
                        fail(envelope, .badFrame, "envelope to '\(envelope.dst)' inside a batch addressed to '\(header.dst)'", nowNs: nowNs)
                    }
                    return
                }
                envelope.hopLimit = header.hopLimit
                receiveEnvelope(&envelope, from: id, nowNs: nowNs)
            }
        } catch {
            if let direct { dropDirect("malformed: \(error)", sender: direct) } else { badFrame(id, error) }
        }
    }
}

extension DataMessage {
    /// A message built from an envelope (the slow path: the payload is copied).
    package init(_ e: Dagent_Envelope) {
        var buffer = ByteBuffer()
        buffer.writeBytes(e.payload)
        self.init(header: MessageHeader(e), payload: buffer)
    }
}
