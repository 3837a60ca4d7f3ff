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
public struct FrameWriter {
    /// Envelopes per batch at most.
    public let maxBatchCount: Int
    /// Envelope bytes per batch at most (must stay below the peer's max_frame_bytes;
    /// on a message queue, below one message). An envelope that would take the
    /// batch past it starts a new batch.
    public let maxBatchBytes: Int

    private(set) var out: ByteBuffer
    private var batch: ByteBuffer        // entries: 0x0A varint(len) envelope
    private var batchDst = ""
    private var batchHop: UInt32 = 0
    private var batchKind = 0
    private var batchCount = 0

    public init(allocator: ByteBufferAllocator = ByteBufferAllocator(), maxBatchCount: Int = 4096,
                maxBatchBytes: Int = 256 * 1024) {
        self.maxBatchCount = maxBatchCount
        self.maxBatchBytes = maxBatchBytes
        out = allocator.buffer(capacity: 16 * 1024)
        batch = allocator.buffer(capacity: 16 * 1024)
    }

    /// Bytes waiting to be written (including an open batch).
    public var bufferedBytes: Int { out.readableBytes + batch.readableBytes }
    public var isEmpty: Bool { out.readableBytes == 0 && batchCount == 0 }

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
        EnvelopeCodec.encodeFrame(raw: raw, hopLimitOffset: hopLimitOffset, hopLimit: hopLimit, into: &out)
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
        BatchCodec.encodeFrame(raw: raw, hopLimitOffset: hopLimitOffset, hopLimit: hopLimit, into: &out)
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

    /// Everything written so far, ready for the socket; the writer starts empty again.
    public mutating func take(allocator: ByteBufferAllocator) -> ByteBuffer {
        closeBatch()
        let bytes = out
        out = allocator.buffer(capacity: max(16 * 1024, min(bytes.readableBytes, 1 << 20)))
        return bytes
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
        let ranges = try raw.withUnsafeReadableBytes { p throws(FrameError) -> [Range<Int>] in
            var out: [Range<Int>] = []
            var i = 0
            while i < p.count {
                let key = try EnvelopeCodec.readVarint(p, &i)
                if key == 0x0A { out.append(try EnvelopeCodec.readLength(p, &i)) } else { try EnvelopeCodec.skip(wireType: key & 7, p, &i) }
            }
            return out
        }
        return ranges.map { raw.getSlice(at: raw.readerIndex + $0.lowerBound, length: $0.count)! }
    }
}
