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

/// Splits a byte stream into frame bodies. Owns the cumulation buffer of one link.
public struct FrameReader {
    public let maxFrameBytes: Int
    private var buffer: ByteBuffer?

    public init(maxFrameBytes: Int) { self.maxFrameBytes = maxFrameBytes }

    /// Adds bytes read from the link.
    public mutating func append(_ bytes: ByteBuffer) {
        if buffer == nil || buffer!.readableBytes == 0 {
            buffer = bytes
        } else {
            var bytes = bytes
            buffer!.writeBuffer(&bytes)
        }
    }

    /// Bytes received but not yet a whole frame.
    public var pendingBytes: Int { buffer?.readableBytes ?? 0 }

    /// The next whole frame body, or nil if more bytes are needed.
    public mutating func next() throws(FrameError) -> ByteBuffer? {
        guard var b = buffer else { return nil }
        defer { buffer = b.readableBytes == 0 ? nil : b }
        guard let length = b.getInteger(at: b.readerIndex, as: UInt32.self) else { return nil }
        let size = Int(length)
        guard size <= maxFrameBytes else { throw .frameTooLarge(length: size, limit: maxFrameBytes) }
        guard b.readableBytes >= 4 + size else {
            if b.readerIndex > 0 && b.readerIndex > b.capacity / 2 { b.discardReadBytes() }
            return nil
        }
        b.moveReaderIndex(forwardBy: 4)
        let body = b.readSlice(length: size)!
        if size == 0 { throw .emptyBody }
        return body
    }
}
