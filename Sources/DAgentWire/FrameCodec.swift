import NIOCore
import SwiftProtobuf

/// A failure to turn bytes into a frame. Each case says what was wrong and
/// with which value, so that the link can log it and tell the peer.
public enum FrameError: Error, Equatable, CustomStringConvertible {
    /// The length prefix announces more than `max_frame_bytes`.
    case frameTooLarge(length: Int, limit: Int)
    /// The bytes after the length prefix are not a valid `Frame`.
    case malformed(length: Int, detail: String)
    /// A frame with no body set (or a body this version does not know).
    case emptyBody
    /// A message-queue message that is not dagent framing (see `MsgqWire`).
    case badQueueMessage(detail: String)

    public var description: String {
        switch self {
        case let .frameTooLarge(length, limit):
            return "frame of \(length) bytes exceeds max_frame_bytes=\(limit)" + Self.tlsHint(length)
        case let .malformed(length, detail):
            return "malformed frame of \(length) bytes: \(detail)"
        case .emptyBody:
            return "frame has no body (unknown frame type from a newer peer?)"
        case let .badQueueMessage(detail):
            return "garbage on the message queue: \(detail)"
        }
    }

    /// A plaintext end that reads from a TLS peer takes the TLS record header (content type
    /// 20...23, version 3.x) for the length prefix; the hint says so, and what to give.
    static func tlsHint(_ length: Int) -> String {
        guard (20...23).contains((length >> 24) & 0xFF), (length >> 16) & 0xFF == 3 else { return "" }
        return " (these bytes are a TLS record: the peer speaks TLS; give this end tls: {cert, key, ca}, "
            + "or --tls-cert/--tls-key/--tls-ca)"
    }
}

/// Length-prefixed framing: `[UInt32 big-endian length][serialized Frame]`.
///
/// Pure functions over `ByteBuffer`, used by the NIO handlers below and by tests.
public enum FrameCodec {
    /// Appends one length-prefixed frame to `buffer`.
    public static func encode(_ frame: Dagent_Frame, into buffer: inout ByteBuffer) throws {
        let bytes: [UInt8] = try frame.serializedBytes()
        buffer.writeInteger(UInt32(bytes.count))
        buffer.writeBytes(bytes)
    }

    /// Appends an envelope as a `Frame{envelope}` without building the `Frame`:
    /// the oneof field 1 is written by hand (tag 0x0A, varint length), which is
    /// byte-for-byte what `Frame.serializedBytes()` would produce.
    public static func encodeEnvelope(_ envelope: Dagent_Envelope, into buffer: inout ByteBuffer) throws {
        let inner: [UInt8] = try envelope.serializedBytes()
        var header: [UInt8] = [0x0A]
        var n = UInt64(inner.count)
        repeat {
            var byte = UInt8(n & 0x7F)
            n >>= 7
            if n != 0 { byte |= 0x80 }
            header.append(byte)
        } while n != 0
        buffer.writeInteger(UInt32(header.count + inner.count))
        buffer.writeBytes(header)
        buffer.writeBytes(inner)
    }

    /// Reads one frame from `buffer` if a whole one is there.
    /// Returns nil (consuming nothing) when more bytes are needed.
    public static func decode(_ buffer: inout ByteBuffer, maxFrameBytes: Int) throws -> Dagent_Frame? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        let size = Int(length)
        guard size <= maxFrameBytes else {
            throw FrameError.frameTooLarge(length: size, limit: maxFrameBytes)
        }
        guard buffer.readableBytes >= WireConstants.lengthPrefixBytes + size else { return nil }
        buffer.moveReaderIndex(forwardBy: WireConstants.lengthPrefixBytes)
        let bytes = buffer.readBytes(length: size)!
        let frame: Dagent_Frame
        do {
            frame = try Dagent_Frame(serializedBytes: bytes)
        } catch {
            throw FrameError.malformed(length: size, detail: "\(error)")
        }
        guard frame.body != nil else { throw FrameError.emptyBody }
        return frame
    }
}

/// Inbound handler: bytes to `Dagent_Frame`s, refusing frames over the limit.
public struct FrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = Dagent_Frame
    public let maxFrameBytes: Int

    public init(maxFrameBytes: Int = WireConstants.defaultMaxFrameBytes) {
        self.maxFrameBytes = maxFrameBytes
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try FrameCodec.decode(&buffer, maxFrameBytes: maxFrameBytes) else {
            return .needMoreData
        }
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// Outbound handler: `Dagent_Frame`s to length-prefixed bytes.
public struct FrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = Dagent_Frame
    public init() {}

    public func encode(data: Dagent_Frame, out: inout ByteBuffer) throws {
        if case .envelope(let envelope)? = data.body {
            try FrameCodec.encodeEnvelope(envelope, into: &out)
        } else {
            try FrameCodec.encode(data, into: &out)
        }
    }
}
