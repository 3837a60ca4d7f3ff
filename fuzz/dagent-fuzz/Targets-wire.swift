import DAgentWire
import Foundation
import NIOCore
import SwiftProtobuf

/// DAgentWire: the hand-written envelope codec, the batch codec and the stream frame reader.
enum WireTargets {
    static func buffer(_ bytes: [UInt8]) -> ByteBuffer {
        var b = ByteBufferAllocator().buffer(capacity: bytes.count)
        b.writeBytes(bytes)
        return b
    }

    static func bytes(_ b: ByteBuffer) -> [UInt8] { Array(b.readableBytesView) }

    /// Seed envelopes from the real encoder: every field, unicode, RPC kinds, publishes with picks.
    static func sampleEnvelopes() -> [Dagent_Envelope] {
        var plain = Dagent_Envelope()
        plain.src = "a1.l1"; plain.dst = "a2.l2"; plain.type = 7; plain.payload = Data("hello".utf8)
        plain.hopLimit = 16
        var rpc = plain
        rpc.kind = .request; rpc.id = 1 << 40; rpc.cookie = 12345; rpc.sendTimeNs = 1_700_000_000_000_000_000
        var err = rpc
        err.kind = .error; err.error = .noRoute; err.reason = "no route to 'zz' — ünïcode"
        var pub = plain
        pub.kind = .publish; pub.dst = "orders.eu.*"; pub.queues = ["workers", "audit"]; pub.pickQueues = true
        var odd = plain
        odd.kind = .UNRECOGNIZED(-3); odd.type = UInt32.max; odd.payload = Data(repeating: 0xFF, count: 300)
        return [plain, rpc, err, pub, odd, Dagent_Envelope()]
    }

    static let envelope = FuzzTarget(
        name: "envelope",
        summary: "EnvelopeCodec: decode/header/decodeMessage/source agree; re-encoding is swift-protobuf's bytes",
        seeds: {
            sampleEnvelopes().enumerated().map { i, e in
                var b = ByteBuffer()
                EnvelopeCodec.encode(e, into: &b)
                return ("encoder-\(i)", bytes(b))
            }
        },
        run: { input in checkEnvelope(buffer(input.bytes)) })

    /// The envelope codec's contract on arbitrary bytes `raw`; returns the envelope if it decodes.
    @discardableResult
    static func checkEnvelope(_ raw: ByteBuffer) -> Dagent_Envelope? {
        let e: Dagent_Envelope
        do { e = try EnvelopeCodec.decode(raw) } catch {
            // Every reader of the hot path must refuse the same bytes (or at least not trap).
            _ = try? EnvelopeCodec.header(raw)
            _ = try? EnvelopeCodec.source(of: raw)
            var cache = EnvelopeCodec.StringCache()
            _ = try? EnvelopeCodec.decodeMessage(raw, cache: &cache)
            return nil
        }
        // The header a relay reads without decoding agrees with the decoded envelope.
        guard let h = try? EnvelopeCodec.header(raw) else { FuzzCheck.fail("header() throws where decode() succeeds") }
        FuzzCheck.equal(h.dst, e.dst, "header dst")
        FuzzCheck.equal(h.kind, e.kind.rawValue, "header kind")
        FuzzCheck.equal(h.hopLimit, e.hopLimit, "header hop limit")
        FuzzCheck.equal(h.hasQueuePicks, !e.queues.isEmpty || e.pickQueues, "header queue picks")
        guard (try? EnvelopeCodec.source(of: raw)) == e.src else { FuzzCheck.fail("source(of:) differs from src \(e.src)") }
        guard (try? EnvelopeCodec.source(of: raw, is: e.src)) == true else { FuzzCheck.fail("source(of:is:) rejects src") }
        // The zero-copy decoder agrees field by field.
        var cache = EnvelopeCodec.StringCache()
        guard let m = try? EnvelopeCodec.decodeMessage(raw, cache: &cache) else { FuzzCheck.fail("decodeMessage throws where decode succeeds") }
        var me = m.envelope
        me.queues = e.queues; me.pickQueues = e.pickQueues   // DataMessage has no pub/sub fields
        FuzzCheck.equal(me, e, "decodeMessage")
        // swift-protobuf reads the same bytes the same way (when it accepts them).
        if var pb = try? Dagent_Envelope(serializedBytes: bytes(raw)) {
            pb.unknownFields = UnknownStorage()
            FuzzCheck.equal(pb, e, "swift-protobuf decode")
        }
        // Re-encoding: size() is exact, the bytes are swift-protobuf's, and they decode back.
        var out = ByteBuffer()
        EnvelopeCodec.encode(e, into: &out)
        FuzzCheck.equal(out.readableBytes, EnvelopeCodec.size(of: e), "size(of:)")
        guard let pbBytes: [UInt8] = try? e.serializedBytes() else { FuzzCheck.fail("swift-protobuf cannot encode a decoded envelope") }
        FuzzCheck.equal(bytes(out), pbBytes, "encode() vs swift-protobuf bytes")
        guard let back = try? EnvelopeCodec.decode(out) else { FuzzCheck.fail("re-encoded envelope does not decode") }
        FuzzCheck.equal(back, e, "round trip")
        // A relay's patched copy changes the hop limit and nothing else.
        if h.hopLimitOffset >= 0 {
            var frame = ByteBuffer()
            EnvelopeCodec.encodeFrame(raw: raw, hopLimitOffset: h.hopLimitOffset, hopLimit: h.hopLimit &+ 1, into: &frame)
            var reader = FrameReader(maxFrameBytes: frame.readableBytes)
            reader.append(frame)
            guard let body = try? reader.next(), case .envelope(let patched, _)? = try? InboundFrame.classify(body),
                  var relayed = try? EnvelopeCodec.decode(patched) else { FuzzCheck.fail("relayed frame does not read back") }
            FuzzCheck.equal(relayed.hopLimit, h.hopLimit &+ 1, "patched hop limit")
            relayed.hopLimit = e.hopLimit
            FuzzCheck.equal(relayed, e, "relayed envelope")
        }
        return e
    }

    static let batch = FuzzTarget(
        name: "batch",
        summary: "BatchCodec: header/envelopes/sources agree; FrameWriter re-batches the envelopes losslessly",
        seeds: {
            var seeds: [(String, [UInt8])] = []
            for (i, group) in [sampleEnvelopes().dropLast(), sampleEnvelopes().prefix(2)].enumerated() {
                var w = FrameWriter()
                for var e in group { e.dst = "a2.l2"; e.hopLimit = 9; e.kind = .data; e.queues = []; e.pickQueues = false; w.append(e) }
                var stream = w.take(allocator: ByteBufferAllocator())
                var reader = FrameReader(maxFrameBytes: 1 << 20)
                reader.append(stream)
                while let body = try? reader.next() {
                    if case .batch(let raw, _, _)? = try? InboundFrame.classify(body) { seeds.append(("writer-\(i)", bytes(raw))) }
                }
                stream.clear()
            }
            return seeds
        },
        run: { input in checkBatch(buffer(input.bytes)) })

    static func checkBatch(_ raw: ByteBuffer) {
        let header = try? BatchCodec.header(raw)
        let slices = try? BatchCodec.envelopes(raw)
        guard let (h, count) = header else { return }
        guard let slices else { FuzzCheck.fail("envelopes() throws where header() succeeds") }
        FuzzCheck.equal(slices.count, count, "envelope count")
        let decoded = slices.map { checkEnvelope($0) }
        let all = decoded.compactMap { $0 }
        if all.count == decoded.count, let first = all.first {
            let same = all.allSatisfy { $0.src == first.src }
            guard let ok = try? BatchCodec.sources(of: raw, are: first.src) else { FuzzCheck.fail("sources(of:are:) throws on a valid batch") }
            FuzzCheck.equal(ok, same, "sources(of:are:)")
        }
        // Encoder round trip: the decodable envelopes, as one destination's stream, come back in order.
        guard !all.isEmpty else { return }
        let dst = h.dst.isEmpty ? "d" : h.dst
        let kind = Dagent_Kind(rawValue: h.kind) ?? .data
        let wanted = all.map { e -> Dagent_Envelope in
            var e = e
            e.dst = dst; e.hopLimit = h.hopLimit; e.kind = kind; e.queues = []; e.pickQueues = false
            return e
        }
        var w = FrameWriter(maxBatchCount: 1 + Int(raw.readableBytes % 7), maxBatchBytes: 64 + raw.readableBytes)
        for e in wanted { w.append(e) }
        FuzzCheck.equal(readStream(w.take(allocator: ByteBufferAllocator()), maxFrameBytes: 1 << 24), wanted, "FrameWriter round trip")
    }

    /// Every envelope of a link's byte stream, in order (batches opened).
    static func readStream(_ stream: ByteBuffer, maxFrameBytes: Int) -> [Dagent_Envelope] {
        var reader = FrameReader(maxFrameBytes: maxFrameBytes)
        reader.append(stream)
        var out: [Dagent_Envelope] = []
        do {
            while let body = try reader.next() {
                switch try InboundFrame.classify(body) {
                case .envelope(let raw, _): out.append(try EnvelopeCodec.decode(raw))
                case .batch(let raw, _, _): for s in try BatchCodec.envelopes(raw) { out.append(try EnvelopeCodec.decode(s)) }
                case .control(let f): FuzzCheck.fail("writer produced a control frame \(f)")
                }
            }
        } catch { FuzzCheck.fail("writer output does not read back: \(error)") }
        FuzzCheck.equal(reader.pendingBytes, 0, "bytes left after the writer's stream")
        return out
    }

    static let frame = FuzzTarget(
        name: "frame",
        summary: "FrameReader + InboundFrame.classify on a TCP byte stream: split-invariant, control frames round-trip",
        seeds: {
            var w = FrameWriter()
            for e in sampleEnvelopes() { w.append(e) }
            var hb = Dagent_Frame(); hb.heartbeat = Dagent_Heartbeat()
            try? w.append(hb)
            var reg = Dagent_Frame(); reg.register.name = "a1"; reg.register.session = 42
            try? w.append(reg)
            for var e in sampleEnvelopes().prefix(3) { e.dst = "x"; e.kind = .data; e.queues = []; e.pickQueues = false; w.append(e) }
            let stream = bytes(w.take(allocator: ByteBufferAllocator()))
            // First byte: chunking of the stream; second: the frame limit (see `checkStream`).
            return [("writer-stream", [0x00, 0x10] + stream), ("writer-chunked", [0x07, 0x10] + stream)]
        },
        run: { input in checkStream(input) })

    /// Byte 0 picks the chunk sizes the stream arrives in, byte 1 the frame limit
    /// (`64 << (b % 16)`), the rest is the stream.
    static func checkStream(_ input: FuzzInput) {
        guard input.bytes.count >= 2 else { return }
        let seed = Int(input.bytes[0]), limit = 64 << (Int(input.bytes[1]) % 16)
        let stream = Array(input.bytes[2...])
        func read(chunks: [ArraySlice<UInt8>]) -> (bodies: [[UInt8]], error: FrameError?) {
            var reader = FrameReader(maxFrameBytes: limit)
            var bodies: [[UInt8]] = []
            for c in chunks {
                reader.append(buffer(Array(c)))
                do {
                    while let b = try reader.next() {
                        FuzzCheck.require(b.readableBytes <= limit && b.readableBytes > 0, "body of \(b.readableBytes) bytes, limit \(limit)")
                        bodies.append(bytes(b))
                    }
                } catch { return (bodies, error) }
            }
            return (bodies, nil)
        }
        let whole = read(chunks: [stream[...]])
        var chunks: [ArraySlice<UInt8>] = []
        var i = 0, k = UInt(seed)
        while i < stream.count {
            let n = 1 + Int(k % 13)
            chunks.append(stream[i..<min(stream.count, i + n)])
            i += n
            k = k &* 31 &+ 7
        }
        let split = read(chunks: chunks)
        FuzzCheck.equal(split.bodies, whole.bodies, "frames read in chunks vs at once")
        FuzzCheck.equal(split.error, whole.error, "error read in chunks vs at once")
        for body in whole.bodies { checkClassify(buffer(body)) }
    }

    static func checkClassify(_ body: ByteBuffer) {
        guard let inbound = try? InboundFrame.classify(body) else { return }
        switch inbound {
        case let .envelope(raw, header):
            guard let h = try? EnvelopeCodec.header(raw) else { FuzzCheck.fail("classified envelope has no header") }
            FuzzCheck.equal(h, header, "classify header")
            checkEnvelope(raw)
        case let .batch(raw, header, count):
            guard let (h, n) = try? BatchCodec.header(raw) else { FuzzCheck.fail("classified batch has no header") }
            FuzzCheck.equal(h, header, "classify batch header")
            FuzzCheck.equal(n, count, "classify batch count")
            FuzzCheck.require(!h.dst.isEmpty, "batch without dst classified as a batch")
            checkBatch(raw)
        case let .control(frame):
            FuzzCheck.require(frame.body != nil, "control frame without a body")
            guard let again: [UInt8] = try? frame.serializedBytes(), let back = try? Dagent_Frame(serializedBytes: again) else {
                FuzzCheck.fail("a decoded control frame does not re-encode")
            }
            FuzzCheck.equal(back, frame, "control frame round trip")
        }
    }
}
