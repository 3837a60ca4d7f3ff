import NIOCore

/// The bytes of one System V message-queue message, after the kernel's `long`
/// message type. The same length-prefixed frames as on TCP, packed to fit the
/// kernel's `msgmax`:
///
/// ```
/// 0  u8  0xDA            magic
/// 1  u8  0x51            magic ('Q')
/// 2  u8  1               version
/// 3  u8  kind            1 frames, 2 fragment, 3 bye, 4 wake
/// 4  u32 incarnation     (little-endian) the leaf-side link instance; 0 = any
/// 8  u64 sender          (little-endian) the sender's channel (1 = the agent)
/// 16 frames:   [u32 big-endian length][Frame] ...   (whole frames, as on TCP)
///    fragment: u32 total, u32 offset (little-endian), then bytes of ONE frame body
/// ```
///
/// Small frames are batched into one message up to `msgmax`; a frame that
/// does not fit is split into fragments that the receiver reassembles (per
/// sender: the queue keeps each sender's messages to one receiver in order).
/// A leaf's channel is its message type: `randomChannel()`, one per connection.
public enum MsgqWire {
    public static let magic0: UInt8 = 0xDA
    public static let magic1: UInt8 = 0x51
    public static let version: UInt8 = 1
    /// Bytes before the payload of a `frames` message.
    public static let headerBytes = 16
    /// Bytes before the payload of a `fragment` message.
    public static let fragmentHeaderBytes = 24
    /// Room for the kernel's `long` message type in front of every outbound message.
    public static let mtypeBytes = 8
    /// The agent's sender channel (leaves use their session's channel, always >= 2).
    public static let agentChannel: UInt64 = 1
    /// The kernel's default `msgmax` (kernel.msgmax), used when /proc cannot be read.
    public static let defaultMsgmax = 8192

    public enum Kind: UInt8, Sendable {
        /// Whole length-prefixed frames.
        case frames = 1
        /// One piece of a frame too large for one message.
        case fragment = 2
        /// The sender closed its link (the transport's FIN).
        case bye = 3
        /// A receiver thread waking itself up to stop.
        case wake = 4
    }

    /// A channel (message type) for a new leaf connection: random, at least 2,
    /// below 2^62. Channels are public (the name table lists them); a leaf's
    /// session is a separate secret, so knowing a channel takes nothing over.
    public static func randomChannel() -> UInt64 {
        UInt64.random(in: 2..<(1 << 62))
    }

    /// Writes the 16-byte header.
    @inline(__always)
    static func writeHeader(_ kind: Kind, sender: UInt64, incarnation: UInt32, into out: inout ByteBuffer) {
        out.writeInteger(magic0)
        out.writeInteger(magic1)
        out.writeInteger(version)
        out.writeInteger(kind.rawValue)
        out.writeInteger(incarnation, endianness: .little)
        out.writeInteger(sender, endianness: .little)
    }

    /// A message with no payload (`bye`, `wake`), with the mtype slot in front.
    public static func control(_ kind: Kind, sender: UInt64, incarnation: UInt32,
                               allocator: ByteBufferAllocator = ByteBufferAllocator()) -> MsgqOutMessage {
        var b = allocator.buffer(capacity: mtypeBytes + headerBytes)
        b.writeInteger(UInt64(0))
        writeHeader(kind, sender: sender, incarnation: incarnation, into: &b)
        return MsgqOutMessage(bytes: b, frames: 0, fragmentedFrame: nil)
    }
}

/// One outbound queue message: `[8-byte mtype slot][header][payload]`. The
/// sender fills the mtype slot and hands `bytes` to msgsnd.
public struct MsgqOutMessage {
    public var bytes: ByteBuffer
    /// Whole frames in a `frames` message (0 otherwise).
    public var frames: Int
    /// On the last fragment of a frame: the whole frame body, so that a
    /// sender that gives up (queue full) can report each envelope in it.
    public var fragmentedFrame: ByteBuffer?

    /// Fills the mtype slot (native `long`), as msgsnd expects it.
    public mutating func setType(_ mtype: Int) {
        bytes.setInteger(mtype, at: bytes.readerIndex, endianness: .host)
    }

    /// Size handed to msgsnd (the text after the mtype slot).
    public var textSize: Int { bytes.readableBytes - MsgqWire.mtypeBytes }

    /// The frame bodies this message completes at the receiver (for error reports).
    public func frameBodies() -> [ByteBuffer] {
        if let whole = fragmentedFrame { return [whole] }
        guard frames > 0 else { return [] }
        var text = bytes.getSlice(at: bytes.readerIndex + MsgqWire.mtypeBytes + MsgqWire.headerBytes,
                                  length: textSize - MsgqWire.headerBytes)!
        var out: [ByteBuffer] = []
        while let len = text.readInteger(as: UInt32.self), let body = text.readSlice(length: Int(len)) {
            out.append(body)
        }
        return out
    }
}

/// Packs the length-prefixed frame stream of a `FrameWriter` into queue
/// messages of at most `maxText` bytes: whole frames share a message while
/// they fit; a frame larger than one message is fragmented. Pure.
public struct MsgqPacker {
    /// The kernel's `msgmax`: the largest text one msgsnd takes.
    public let maxText: Int
    public let allocator: ByteBufferAllocator

    public init(maxText: Int = MsgqWire.defaultMsgmax, allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        precondition(maxText >= 64, "msgmax \(maxText) is too small for dagent's message-queue framing")
        self.maxText = maxText
        self.allocator = allocator
    }

    /// The largest batch body (`FrameWriter.maxBatchBytes`) that still fits in
    /// one message with its frame, batch and destination headers.
    public var maxBatchBytes: Int { max(256, maxText - MsgqWire.headerBytes - 4 - 8 - 3 - 255 - 8) }

    /// Appends the messages for `stream` (whole `[u32 length][body]` frames) to `out`,
    /// with `mtype` in their type slot (0: fill it later with `setType`).
    public func pack(_ stream: ByteBuffer, sender: UInt64, incarnation: UInt32, mtype: Int = 0, into out: inout [MsgqOutMessage]) {
        var stream = stream
        let room = maxText - MsgqWire.headerBytes
        var current: ByteBuffer?
        var frames = 0
        func close() {
            if let c = current { out.append(MsgqOutMessage(bytes: c, frames: frames, fragmentedFrame: nil)) }
            current = nil
            frames = 0
        }
        while let length = stream.getInteger(at: stream.readerIndex, as: UInt32.self) {
            let whole = 4 + Int(length)
            guard stream.readableBytes >= whole else { break }   // a writer never produces partial frames
            if whole <= room {
                if let c = current, c.readableBytes - MsgqWire.mtypeBytes + whole > maxText { close() }
                if current == nil {
                    var b = allocator.buffer(capacity: MsgqWire.mtypeBytes + min(maxText, MsgqWire.headerBytes + max(whole, stream.readableBytes)))
                    b.writeInteger(mtype, endianness: .host)
                    MsgqWire.writeHeader(.frames, sender: sender, incarnation: incarnation, into: &b)
                    current = b
                }
                var frame = stream.readSlice(length: whole)!
                current!.writeBuffer(&frame)
                frames += 1
                continue
            }
            close()
            stream.moveReaderIndex(forwardBy: 4)
            let body = stream.readSlice(length: Int(length))!
            let chunk = maxText - MsgqWire.fragmentHeaderBytes
            var offset = 0
            while offset < body.readableBytes {
                let n = min(chunk, body.readableBytes - offset)
                var b = allocator.buffer(capacity: MsgqWire.mtypeBytes + MsgqWire.fragmentHeaderBytes + n)
                b.writeInteger(mtype, endianness: .host)
                MsgqWire.writeHeader(.fragment, sender: sender, incarnation: incarnation, into: &b)
                b.writeInteger(UInt32(body.readableBytes), endianness: .little)
                b.writeInteger(UInt32(offset), endianness: .little)
                var piece = body.getSlice(at: body.readerIndex + offset, length: n)!
                b.writeBuffer(&piece)
                offset += n
                out.append(MsgqOutMessage(bytes: b, frames: 0, fragmentedFrame: offset == body.readableBytes ? body : nil))
            }
        }
        close()
    }
}

/// What a received queue message means, after reassembly.
public enum MsgqInbound: Equatable {
    /// Whole frame bodies (the bytes after each length prefix), in order.
    case frames(sender: UInt64, incarnation: UInt32, bodies: [ByteBuffer])
    /// The sender closed its link.
    case bye(sender: UInt64, incarnation: UInt32)
    /// A receiver's own wake-up.
    case wake(sender: UInt64, incarnation: UInt32)
    /// The message cannot be used. `sender` is the header's, or the message
    /// type when the header itself is unusable.
    case garbage(sender: UInt64, incarnation: UInt32, reason: String)
}

/// Turns received queue messages into frames: checks the header, splits
/// batched frames, reassembles fragments per sender. Pure; one per receiver.
public struct MsgqReassembler {
    public let maxFrameBytes: Int
    /// Senders with a frame half reassembled at most (the oldest is dropped beyond this).
    public let maxPartials: Int
    struct Partial {
        var incarnation: UInt32
        var buffer: ByteBuffer
        var total: Int
        var age: UInt64
    }
    private var partials: [UInt64: Partial] = [:]
    private var clock: UInt64 = 0
    /// Frames abandoned half way (a newer frame from the same sender started,
    /// or too many senders were mid-frame).
    public private(set) var abandoned = 0
    let allocator: ByteBufferAllocator

    public init(maxFrameBytes: Int, maxPartials: Int = 256, allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        self.maxFrameBytes = maxFrameBytes
        self.maxPartials = maxPartials
        self.allocator = allocator
    }

    /// Senders with a frame in reassembly.
    public var partialCount: Int { partials.count }

    /// Forgets a sender's half-reassembled frame (the sender is gone).
    public mutating func forget(sender: UInt64) { partials[sender] = nil }

    /// Decodes one message text (the bytes after the kernel's mtype).
    /// - Parameter mtype: the kernel message type; on a queue where it is the
    ///   sender's channel (the agent's inbox), pass `senderIsMtype: true`.
    public mutating func receive(_ text: ByteBuffer, mtype: Int, senderIsMtype: Bool) -> MsgqInbound? {
        var t = text
        let fallback = UInt64(bitPattern: Int64(mtype))
        guard t.readableBytes >= MsgqWire.headerBytes else {
            return .garbage(sender: fallback, incarnation: 0, reason: "message of \(t.readableBytes) bytes is shorter than the \(MsgqWire.headerBytes)-byte dagent header")
        }
        let m0 = t.readInteger(as: UInt8.self)!, m1 = t.readInteger(as: UInt8.self)!
        let version = t.readInteger(as: UInt8.self)!, rawKind = t.readInteger(as: UInt8.self)!
        let incarnation = t.readInteger(endianness: .little, as: UInt32.self)!
        let sender = t.readInteger(endianness: .little, as: UInt64.self)!
        guard m0 == MsgqWire.magic0 && m1 == MsgqWire.magic1 else {
            return .garbage(sender: fallback, incarnation: 0, reason: String(format: "bad magic 0x%02x%02x (not a dagent message)", m0, m1))
        }
        guard version == MsgqWire.version else {
            return .garbage(sender: fallback, incarnation: 0, reason: "message-queue framing version \(version) not supported (this node speaks \(MsgqWire.version))")
        }
        if senderIsMtype && sender != fallback {
            return .garbage(sender: fallback, incarnation: 0, reason: "header names sender channel \(sender) but the message type is \(mtype)")
        }
        guard let kind = MsgqWire.Kind(rawValue: rawKind) else {
            return .garbage(sender: sender, incarnation: incarnation, reason: "unknown message kind \(rawKind)")
        }
        switch kind {
        case .bye:
            partials[sender] = nil
            return .bye(sender: sender, incarnation: incarnation)
        case .wake:
            return .wake(sender: sender, incarnation: incarnation)
        case .frames:
            var bodies: [ByteBuffer] = []
            while t.readableBytes > 0 {
                guard let length = t.readInteger(as: UInt32.self) else {
                    return .garbage(sender: sender, incarnation: incarnation, reason: "truncated frame length prefix")
                }
                let size = Int(length)
                if size == 0 { return .garbage(sender: sender, incarnation: incarnation, reason: "empty frame") }
                if size > maxFrameBytes {
                    return .garbage(sender: sender, incarnation: incarnation, reason: "frame of \(size) bytes exceeds max_frame_bytes=\(maxFrameBytes)")
                }
                guard let body = t.readSlice(length: size) else {
                    return .garbage(sender: sender, incarnation: incarnation, reason: "frame of \(size) bytes runs past the end of a \(text.readableBytes)-byte message")
                }
                bodies.append(body)
            }
            if bodies.isEmpty { return .garbage(sender: sender, incarnation: incarnation, reason: "message carries no frame") }
            return .frames(sender: sender, incarnation: incarnation, bodies: bodies)
        case .fragment:
            guard let total32 = t.readInteger(endianness: .little, as: UInt32.self),
                  let offset32 = t.readInteger(endianness: .little, as: UInt32.self) else {
                return .garbage(sender: sender, incarnation: incarnation, reason: "truncated fragment header")
            }
            let total = Int(total32), offset = Int(offset32), n = t.readableBytes
            if total > maxFrameBytes {
                partials[sender] = nil
                return .garbage(sender: sender, incarnation: incarnation, reason: "fragmented frame of \(total) bytes exceeds max_frame_bytes=\(maxFrameBytes)")
            }
            if n == 0 || offset + n > total {
                partials[sender] = nil
                return .garbage(sender: sender, incarnation: incarnation, reason: "fragment of \(n) bytes at offset \(offset) does not fit a frame of \(total) bytes")
            }
            clock &+= 1
            if offset == 0 {
                if partials[sender] != nil { abandoned += 1 }
                if n == total { return .frames(sender: sender, incarnation: incarnation, bodies: [t]) }
                if partials.count >= maxPartials, partials[sender] == nil, let oldest = partials.min(by: { $0.value.age < $1.value.age })?.key {
                    partials[oldest] = nil
                    abandoned += 1
                }
                var buffer = allocator.buffer(capacity: total)
                buffer.writeBuffer(&t)
                partials[sender] = Partial(incarnation: incarnation, buffer: buffer, total: total, age: clock)
                return nil
            }
            guard var p = partials[sender], p.incarnation == incarnation, p.total == total, p.buffer.readableBytes == offset else {
                let had = partials[sender].map { "expected offset \($0.buffer.readableBytes) of \($0.total)" } ?? "no frame in progress"
                partials[sender] = nil
                return .garbage(sender: sender, incarnation: incarnation, reason: "fragment at offset \(offset) of a \(total)-byte frame out of sequence (\(had))")
            }
            partials[sender] = nil   // keep the buffer uniquely referenced while appending
            p.buffer.writeBuffer(&t)
            p.age = clock
            if p.buffer.readableBytes == total {
                return .frames(sender: sender, incarnation: incarnation, bodies: [p.buffer])
            }
            partials[sender] = p
            return nil
        }
    }
}
