import NIOCore

/// Builds the outbound byte stream of one link, batching as it goes.
///
/// Consecutive envelopes to the same destination (with the same hop limit)
/// are packed into one `Frame{batch}` with `dst` and `hop_limit` written
/// first, so relays route the batch without opening it. Anything else that
/// is appended (a control frame, a relayed frame, an envelope to another
/// destination) closes the open batch first, so the order on the wire is
/// the order of the calls. A batch of one is written as a plain envelope
/// frame. Pure: bytes in, bytes out.
///
/// With `forwardThreshold` set (TCP links), a relayed frame at least that
/// large is not copied: its few header bytes (with the hop limit patched) end
/// the current buffer and the rest of it travels as the slice it arrived in;
/// `take(allocator:_:)` hands the buffers over in stream order. The bytes on
/// the wire are the same either way.
public struct FrameWriter {
    /// Envelopes per batch at most.
    public let maxBatchCount: Int
    /// Envelope bytes per batch at most (must stay below the peer's max_frame_bytes;
    /// on a message queue, below one message). An envelope that would take the
    /// batch past it starts a new batch.
    public let maxBatchBytes: Int
    /// Relayed frames (`appendRaw`, `appendRawBatch`) of at least this many bytes are
    /// forwarded as slices rather than copied; nil copies everything into one buffer.
    public let forwardThreshold: Int?

    private(set) var out: ByteBuffer
    /// Buffers that come before `out` on the wire: finished buffers and forwarded slices, in order.
    private var segments: [ByteBuffer] = []
    private var segmentBytes = 0
    private let allocator: ByteBufferAllocator
    private var batch: ByteBuffer        // entries: 0x0A varint(len) envelope
    private var batchDst = ""
    private var batchHop: UInt32 = 0
    private var batchKind = 0
    private var batchCount = 0

    public init(allocator: ByteBufferAllocator = ByteBufferAllocator(), maxBatchCount: Int = 4096,
                maxBatchBytes: Int = 256 * 1024, forwardThreshold: Int? = nil) {
        self.maxBatchCount = maxBatchCount
        self.maxBatchBytes = maxBatchBytes
        self.forwardThreshold = forwardThreshold
        self.allocator = allocator
        out = allocator.buffer(capacity: 16 * 1024)
        batch = allocator.buffer(capacity: 16 * 1024)
    }

    /// Bytes waiting to be written (including an open batch).
    public var bufferedBytes: Int { segmentBytes + out.readableBytes + batch.readableBytes }
    public var isEmpty: Bool { out.readableBytes == 0 && batchCount == 0 && segments.isEmpty }

    /// Appends an envelope that starts at this node; it may join the open batch.
    public mutating func append(_ envelope: Dagent_Envelope) {
        // Publishes with queue-group picks never join a batch: a relay opens
        // them to give each link its own picks, and batches travel unopened.
        guard envelope.queues.isEmpty && !envelope.pickQueues else {
            closeBatch()
            EnvelopeCodec.encodeFrame(envelope, into: &out)
            return
        }
        let header = MessageHeader(envelope)
        envelope.payload.withUnsafeBytes { append(header, payload: $0) }
    }

    /// Appends a message that starts at this node, encoded straight from the
    /// caller's payload bytes (no `Dagent_Envelope`); it may join the open batch.
    @inline(__always)
    public mutating func append(_ header: MessageHeader, payload: UnsafeRawBufferPointer) {
        let size = EnvelopeCodec.size(of: header, payloadCount: payload.count)
        openBatch(dst: header.dst, hopLimit: header.hopLimit, kind: header.kind.rawValue, entrySize: size)
        batch.writeInteger(UInt8(0x0A))
        EnvelopeCodec.writeVarint(UInt64(size), &batch)
        EnvelopeCodec.encode(header, payload: payload, size: size, into: &batch)
    }

    /// Makes the open batch one that an entry of `entrySize` bytes for
    /// (dst, hopLimit, kind) can join: the same one if it fits, else a new one.
    @inline(__always)
    private mutating func openBatch(dst: String, hopLimit: UInt32, kind: Int, entrySize: Int) {
        if batchCount > 0 && dst == batchDst && hopLimit == batchHop && kind == batchKind && batchCount < maxBatchCount
            && batch.readableBytes + entrySize + 6 <= maxBatchBytes {
            batchCount += 1
            return
        }
        closeBatch()
        batchDst = dst
        batchHop = hopLimit
        batchKind = kind
        batchCount = 1
    }

    /// Appends a relayed envelope (raw bytes, hop limit patched).
    public mutating func appendRaw(_ raw: ByteBuffer, hopLimitOffset: Int, hopLimit: UInt32) {
        closeBatch()
        if forwards(raw, hopLimitOffset) {
            forward(raw, tag: 0x0A, hopLimitOffset: hopLimitOffset, hopLimit: hopLimit)
        } else {
            EnvelopeCodec.encodeFrame(raw: raw, hopLimitOffset: hopLimitOffset, hopLimit: hopLimit, into: &out)
        }
    }

    /// Appends a relayed envelope whose routing header is `header`, with the
    /// hop limit patched to `hopLimit`: it joins the open batch when it goes to
    /// the same destination with the same hop limit and kind (so a relay
    /// turns a run of single envelopes into one batch frame), else it starts
    /// one. Publishes with queue-group picks are written on their own.
    public mutating func appendRelayed(_ raw: ByteBuffer, header: EnvelopeHeader, hopLimit: UInt32) {
        guard !header.hasQueuePicks, !header.dst.isEmpty else {
            appendRaw(raw, hopLimitOffset: header.hopLimitOffset, hopLimit: hopLimit)
            return
        }
        let size = raw.readableBytes
        openBatch(dst: header.dst, hopLimit: hopLimit, kind: header.kind, entrySize: size)
        batch.writeInteger(UInt8(0x0A))
        EnvelopeCodec.writeVarint(UInt64(size), &batch)
        let start = batch.writerIndex
        batch.writeImmutableBuffer(raw)
        if header.hopLimitOffset >= 0 { batch.setInteger(hopLimit, at: start + header.hopLimitOffset, endianness: .little) }
    }

    /// Appends a relayed batch (raw batch bytes, hop limit patched).
    public mutating func appendRawBatch(_ raw: ByteBuffer, hopLimitOffset: Int, hopLimit: UInt32) {
        closeBatch()
        if forwards(raw, hopLimitOffset) {
            forward(raw, tag: BatchCodec.frameTag, hopLimitOffset: hopLimitOffset, hopLimit: hopLimit)
        } else {
            BatchCodec.encodeFrame(raw: raw, hopLimitOffset: hopLimitOffset, hopLimit: hopLimit, into: &out)
        }
    }

    @inline(__always)
    private func forwards(_ raw: ByteBuffer, _ hopLimitOffset: Int) -> Bool {
        guard let threshold = forwardThreshold else { return false }
        return raw.readableBytes >= threshold && hopLimitOffset + 4 <= raw.readableBytes
    }

    /// Writes the frame `[len][tag varint(n)][raw]` without copying the bulk of
    /// `raw`: the prefix and the patched hop limit go into `out`; the bytes before
    /// and after the hop limit (a batch's entries follow it, an envelope's payload
    /// comes before it) are each forwarded as a slice, or copied if small.
    private mutating func forward(_ raw: ByteBuffer, tag: UInt8, hopLimitOffset: Int, hopLimit: UInt32) {
        let body = raw.readableBytes
        out.writeInteger(UInt32(1 + EnvelopeCodec.varintSize(UInt64(body)) + body))
        out.writeInteger(tag)
        EnvelopeCodec.writeVarint(UInt64(body), &out)
        var rest = raw
        if hopLimitOffset >= 0 {
            put(rest.readSlice(length: hopLimitOffset)!)
            out.writeInteger(hopLimit, endianness: .little)
            rest.moveReaderIndex(forwardBy: 4)
        }
        put(rest)
    }

    /// Relayed bytes into the stream: copied into `out` if small, else `out` is
    /// finished and `piece` follows it as a segment of its own.
    private mutating func put(_ piece: ByteBuffer) {
        var piece = piece
        guard piece.readableBytes >= 1024 else {
            out.writeBuffer(&piece)
            return
        }
        if out.readableBytes > 0 {
            segmentBytes += out.readableBytes
            segments.append(out)
            out = allocator.buffer(capacity: 1024)
        }
        segmentBytes += piece.readableBytes
        segments.append(piece)
    }

    /// Appends a control frame.
    public mutating func append(_ frame: Dagent_Frame) throws {
        closeBatch()
        try FrameCodec.encode(frame, into: &out)
    }

    /// Finishes the open batch (if any) into the output. A batch of one is
    /// written as a plain envelope frame: its one entry (`0x0A len envelope`)
    /// is exactly the body of `Frame{envelope}`.
    public mutating func closeBatch() {
        guard batchCount > 0 else { return }
        if batchCount == 1 {
            out.writeInteger(UInt32(batch.readableBytes))
            out.writeImmutableBuffer(batch)
        } else {
            BatchCodec.encodeFrame(dst: batchDst, hopLimit: batchHop, kind: batchKind, entries: batch, into: &out)
        }
        batch.clear()
        batchCount = 0
    }

    /// Everything written so far, ready for the socket, while the writer keeps
    /// the buffer: hand the bytes over, then call `clearAfterWrite`. A link
    /// that flushes every message (a fan-out of single publishes) then
    /// allocates no buffer per flush.
    public mutating func bytesForWrite() -> ByteBuffer {
        closeBatch()
        return out
    }

    /// Drops the `handedOver` bytes `bytesForWrite` returned, once they are
    /// handed to the socket. The storage is reused when the write let go of
    /// it (the socket took every byte at once, the common case); else, or when
    /// a burst grew it past 1 MiB, the writer starts on a new buffer. Bytes
    /// appended meanwhile (the write's callbacks) stay.
    public mutating func clearAfterWrite(handedOver: Int, allocator: ByteBufferAllocator) {
        guard out.readableBytes == handedOver, batchCount == 0 else {
            out.moveReaderIndex(forwardBy: min(handedOver, out.readableBytes))
            return
        }
        if out.capacity > 1 << 20 {
            out = allocator.buffer(capacity: 16 * 1024)
        } else {
            out.clear()   // a new buffer of the same size if the write still holds this one
        }
    }

    /// Everything written so far as one buffer, ready for the socket; the writer starts empty again.
    public mutating func take(allocator: ByteBufferAllocator) -> ByteBuffer {
        closeBatch()
        if !segments.isEmpty {   // forwarded slices: joined here (a transport that takes segments uses take(allocator:_:))
            var joined = allocator.buffer(capacity: segmentBytes + out.readableBytes)
            for var s in segments { joined.writeBuffer(&s) }
            joined.writeBuffer(&out)
            segments.removeAll(keepingCapacity: true)
            segmentBytes = 0
            return joined
        }
        let bytes = out
        out = allocator.buffer(capacity: max(16 * 1024, min(bytes.readableBytes, 1 << 20)))
        return bytes
    }

    /// The buffers and forwarded slices that come before `bytesForWrite()`'s
    /// bytes on the wire, in order (each non-empty); the writer lets go of them.
    public mutating func takeSegments(_ each: (ByteBuffer) -> Void) {
        for s in segments where s.readableBytes > 0 { each(s) }
        segments.removeAll(keepingCapacity: true)
        segmentBytes = 0
    }

    /// Everything written so far, in stream order, as the buffers and forwarded
    /// slices it is made of (each non-empty); the writer starts empty again.
    public mutating func take(allocator: ByteBufferAllocator, _ each: (ByteBuffer) -> Void) {
        closeBatch()
        takeSegments(each)
        if out.readableBytes > 0 { each(take(allocator: allocator)) }
    }
}

/// The batch frame's layout: `[len][0x5A varint(n)][0x12 dst][0x1D hop]([0xA0 0x06 kind])[entries...]`
/// (the kind only for non-DATA batches: publishes).
public enum BatchCodec {
    static let frameTag: UInt8 = 0x5A   // Frame field 11, length-delimited

    /// A kind as protobuf writes an enum: int32 sign-extended to 64 bits (a negative,
    /// unrecognized kind takes 10 bytes; `UInt64(kind)` would trap on it).
    @inline(__always)
    static func kindVarint(_ kind: Int) -> UInt64 { UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: kind))) }

    static func headerSize(dst: String, kind: Int = 0) -> Int {
        let d = dst.utf8.count
        return 1 + EnvelopeCodec.varintSize(UInt64(d)) + d + 5 + (kind == 0 ? 0 : 2 + EnvelopeCodec.varintSize(kindVarint(kind)))
    }

    static func encodeFrame(dst: String, hopLimit: UInt32, kind: Int = 0, entries: ByteBuffer, into out: inout ByteBuffer) {
        let body = headerSize(dst: dst, kind: kind) + entries.readableBytes
        let header = 1 + EnvelopeCodec.varintSize(UInt64(body))
        out.reserveCapacity(minimumWritableBytes: 4 + header + body)
        out.writeInteger(UInt32(header + body))
        out.writeInteger(frameTag)
        EnvelopeCodec.writeVarint(UInt64(body), &out)
        out.writeInteger(UInt8(0x12))
        EnvelopeCodec.writeVarint(UInt64(dst.utf8.count), &out)
        out.writeString(dst)
        out.writeInteger(UInt8(0x1D))
        out.writeInteger(hopLimit, endianness: .little)
        if kind != 0 {
            out.writeInteger(UInt8(0xA0))   // field 100, varint
            out.writeInteger(UInt8(0x06))
            EnvelopeCodec.writeVarint(kindVarint(kind), &out)
        }
        out.writeImmutableBuffer(entries)
    }

    static func encodeFrame(raw: ByteBuffer, hopLimitOffset: Int, hopLimit: UInt32, into out: inout ByteBuffer) {
        let body = raw.readableBytes
        out.writeInteger(UInt32(1 + EnvelopeCodec.varintSize(UInt64(body)) + body))
        out.writeInteger(frameTag)
        EnvelopeCodec.writeVarint(UInt64(body), &out)
        let start = out.writerIndex
        out.writeImmutableBuffer(raw)
        if hopLimitOffset >= 0 { out.setInteger(hopLimit, at: start + hopLimitOffset, endianness: .little) }
    }

    /// The routing header of batch bytes: dst, hop limit (and its offset),
    /// and the number of envelopes. Kind is the batch's `kind` (0 unless publishes).
    public static func header(_ raw: ByteBuffer) throws(FrameError) -> (EnvelopeHeader, count: Int) {
        try raw.withUnsafeReadableBytes { p throws(FrameError) -> (EnvelopeHeader, count: Int) in
            var h = EnvelopeHeader(dst: "", kind: 0, hopLimit: 0, hopLimitOffset: -1)
            var count = 0
            var i = 0
            while i < p.count {
                let key = try EnvelopeCodec.readVarint(p, &i)
                let wireType = key & 7
                switch (key >> 3, wireType) {
                case (1, 2): _ = try EnvelopeCodec.readLength(p, &i); count += 1
                case (2, 2): h.dst = try EnvelopeCodec.string(p, try EnvelopeCodec.readLength(p, &i))
                case (3, 5): h.hopLimitOffset = i; h.hopLimit = try EnvelopeCodec.fixed32(p, &i)
                case (100, 0): h.kind = Int(Int32(truncatingIfNeeded: try EnvelopeCodec.readVarint(p, &i)))
                default: try EnvelopeCodec.skip(wireType: wireType, p, &i)
                }
            }
            return (h, count)
        }
    }

    /// The envelope byte slices of batch bytes, in order.
    public static func envelopes(_ raw: ByteBuffer) throws(FrameError) -> [ByteBuffer] {
        var out: [ByteBuffer] = []
        try forEachEnvelope(raw) { (slice: ByteBuffer) throws(FrameError) in out.append(slice) }
        return out
    }

    /// Calls `body` with each envelope byte slice of batch bytes, in order, as it
    /// is found (no array of slices per batch). Malformed bytes throw when reached:
    /// the envelopes before them have been handed to `body`.
    @inline(__always)
    public static func forEachEnvelope(_ raw: ByteBuffer, _ body: (ByteBuffer) throws(FrameError) -> Void) throws(FrameError) {
        var i = 0
        let count = raw.readableBytes
        while i < count {
            let range = try raw.withUnsafeReadableBytes { p throws(FrameError) -> Range<Int>? in
                let key = try EnvelopeCodec.readVarint(p, &i)
                if key == 0x0A { return try EnvelopeCodec.readLength(p, &i) }
                try EnvelopeCodec.skip(wireType: key & 7, p, &i)
                return nil
            }
            if let r = range { try body(raw.getSlice(at: raw.readerIndex + r.lowerBound, length: r.count)!) }
        }
    }
}
