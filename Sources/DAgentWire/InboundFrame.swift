import NIOCore
import SwiftProtobuf

/// One frame read off a link, classified for routing: an envelope kept as
/// raw bytes (with its routing header parsed), or a decoded control frame.
public enum InboundFrame: Equatable {
    case envelope(raw: ByteBuffer, header: EnvelopeHeader)
    /// A batch with a destination: routed as one unit. `count` envelopes inside.
    case batch(raw: ByteBuffer, header: EnvelopeHeader, count: Int)
    case control(Dagent_Frame)

    /// Classifies a frame body (the bytes after the length prefix).
    public static func classify(_ body: ByteBuffer) throws(FrameError) -> InboundFrame {
        if let raw = fieldBytes(body, tag: 0x0A) {
            return .envelope(raw: raw, header: try EnvelopeCodec.header(raw))
        }
        if let raw = fieldBytes(body, tag: BatchCodec.frameTag) {
            let (header, count) = try BatchCodec.header(raw)
            if !header.dst.isEmpty { return .batch(raw: raw, header: header, count: count) }
        }
        let frame: Dagent_Frame
        do {
            frame = try Dagent_Frame(serializedBytes: Array(body.readableBytesView))   // control frames: rare, a copy is fine
        } catch {
            throw .malformed(length: body.readableBytes, detail: "\(error)")
        }
        guard frame.body != nil else { throw .emptyBody }
        return .control(frame)
    }

    /// If the frame is exactly one length-delimited field with `tag`, its bytes.
    static func fieldBytes(_ body: ByteBuffer, tag: UInt8) -> ByteBuffer? {
        guard body.readableBytes >= 2, body.getInteger(at: body.readerIndex, as: UInt8.self) == tag else { return nil }
        var length: UInt64 = 0
        var shift: UInt64 = 0
        var i = body.readerIndex + 1
        while i < body.writerIndex, shift < 35 {
            let b = body.getInteger(at: i, as: UInt8.self)!
            i += 1
            length |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 {
                guard UInt64(body.writerIndex - i) == length else { return nil }
                return body.getSlice(at: i, length: Int(length))
            }
            shift += 7
        }
        return nil
    }
}

/// Splits a byte stream into frame bodies, each a slice of the read it
/// arrived in (no copy). Only a frame that spans reads is copied, once, into a
/// buffer of its own: the reads before it are never copied again, even while
/// handlers still hold slices of them (a cumulation buffer would copy the whole
/// earlier read on the next append, because its storage is shared).
public struct FrameReader {
    public let maxFrameBytes: Int
    /// Unread bytes of the latest read (a slice of it).
    private var buffer: ByteBuffer?
    /// A frame begun in an earlier read: its bytes so far, in a buffer sized for the whole frame.
    private var carry: ByteBuffer?

    public init(maxFrameBytes: Int) { self.maxFrameBytes = maxFrameBytes }

    /// Adds bytes read from the link.
    public mutating func append(_ bytes: ByteBuffer) {
        var bytes = bytes
        if carry == nil, let b = buffer, b.readableBytes > 0, !holdsWholeFrame(b) {
            // The previous read ended inside a frame: copy that frame's bytes (only those).
            buffer = nil
            startCarry(b)
        }
        if carry != nil && !carryIsWhole {   // then `buffer` is empty: the carried frame comes first
            fillCarry(from: &bytes)
        }
        guard bytes.readableBytes > 0 else { return }
        if buffer == nil || buffer!.readableBytes == 0 {
            buffer = bytes
        } else {
            buffer!.writeBuffer(&bytes)   // appended before the frames already there were taken
        }
    }

    /// Bytes received but not yet a whole frame.
    public var pendingBytes: Int { (buffer?.readableBytes ?? 0) + (carry?.readableBytes ?? 0) }

    /// The next whole frame body, or nil if more bytes are needed.
    public mutating func next() throws(FrameError) -> ByteBuffer? {
        if carry != nil {
            guard let body = try Self.take(&carry!, maxFrameBytes) else { return nil }
            carry = nil
            return body
        }
        guard buffer != nil else { return nil }
        if let body = try Self.take(&buffer!, maxFrameBytes) {
            if buffer!.readableBytes == 0 { buffer = nil }
            return body
        }
        // The read ends inside a frame: carry its bytes, and let go of the read (its pool can reuse it).
        let rest = buffer!
        buffer = nil
        startCarry(rest)
        return nil
    }

    /// Reads one whole frame's body off `b`, or nil (nothing read) if `b` holds less.
    private static func take(_ b: inout ByteBuffer, _ maxFrameBytes: Int) throws(FrameError) -> ByteBuffer? {
        guard let length = b.getInteger(at: b.readerIndex, as: UInt32.self) else { return nil }
        let size = Int(length)
        guard size <= maxFrameBytes else { throw .frameTooLarge(length: size, limit: maxFrameBytes) }
        guard b.readableBytes >= 4 + size else { return nil }
        b.moveReaderIndex(forwardBy: 4)
        let body = b.readSlice(length: size)!
        if size == 0 { throw .emptyBody }
        return body
    }

    private func holdsWholeFrame(_ b: ByteBuffer) -> Bool {
        guard let length = b.getInteger(at: b.readerIndex, as: UInt32.self) else { return false }
        return Int(length) > maxFrameBytes || b.readableBytes >= 4 + Int(length)
    }

    private var carryIsWhole: Bool { carry.map(holdsWholeFrame) ?? false }

    /// Copies the beginning of a frame into a buffer sized for the whole frame.
    private mutating func startCarry(_ rest: ByteBuffer) {
        var rest = rest
        let length = rest.getInteger(at: rest.readerIndex, as: UInt32.self).map { Int($0) }
        let capacity = length.map { 4 + Swift.min($0, maxFrameBytes, 1 << 20) } ?? 4   // grows as the bytes come
        var c = ByteBufferAllocator().buffer(capacity: Swift.max(capacity, rest.readableBytes))
        c.writeBuffer(&rest)
        carry = c
    }

    /// Moves the bytes the carried frame still lacks from `bytes` into it.
    private mutating func fillCarry(from bytes: inout ByteBuffer) {
        guard var c = carry else { return }
        carry = nil   // `c` is the only reference: written in place
        if c.readableBytes < 4, var head = bytes.readSlice(length: Swift.min(4 - c.readableBytes, bytes.readableBytes)) {
            c.writeBuffer(&head)
        }
        if let length = c.getInteger(at: c.readerIndex, as: UInt32.self), Int(length) <= maxFrameBytes {
            let need = 4 + Int(length) - c.readableBytes
            if need > 0 {
                c.reserveCapacity(minimumWritableBytes: need)
                var part = bytes.readSlice(length: Swift.min(need, bytes.readableBytes))!
                c.writeBuffer(&part)
            }
        }
        carry = c
    }
}
