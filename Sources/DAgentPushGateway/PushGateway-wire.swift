import DAgentPush
import NIOCore
import NIOWebSocket

/// One client connection as the gateway writes to it.
final class PushConn {
    let channel: Channel
    /// The context of the channel's `WebSocketFrameEncoder` when the channel runs on
    /// the gateway's loop: frames the gateway framed itself are written below it.
    let encoder: ChannelHandlerContext?
    /// permessage-deflate, if the client negotiated it (PushDeflate.swift).
    let deflate: PushDeflateParams?
    /// Written to since the last flush.
    var dirty = false

    init(channel: Channel, encoder: ChannelHandlerContext?, deflate: PushDeflateParams?) {
        self.channel = channel
        self.encoder = encoder
        self.deflate = deflate
    }
}

/// Server data frames as they go on the wire (RFC 6455 §5.2: FIN, RSV1 when
/// compressed, opcode text, no mask, the length, the payload). The hub writes the
/// same payload buffer to every client of a message; it is framed here once
/// (per kind: plain or compressed) and the same framed buffer goes to each client,
/// so a delivery costs no encoding, no allocation and no copy.
struct PushWireFrames {
    var lastPlain: ByteBuffer?
    var lastPlainWire: ByteBuffer?
    var lastCompressed: ByteBuffer?
    var lastCompressedWire: ByteBuffer?
    /// Payloads framed (for tests and figures).
    private(set) var framed: UInt64 = 0

    /// The framed form of `payload` (a text frame; RSV1 set if `compressed`).
    mutating func frame(_ payload: ByteBuffer, compressed: Bool, allocator: ByteBufferAllocator) -> ByteBuffer {
        if compressed {
            if let last = lastCompressed, PushDeflater.same(last, payload), let w = lastCompressedWire { return w }
        } else {
            if let last = lastPlain, PushDeflater.same(last, payload), let w = lastPlainWire { return w }
        }
        let w = Self.encode(payload, compressed: compressed, allocator: allocator)
        framed += 1
        if compressed {
            lastCompressed = payload
            lastCompressedWire = w
        } else {
            lastPlain = payload
            lastPlainWire = w
        }
        return w
    }

    /// Header and payload in one buffer.
    static func encode(_ payload: ByteBuffer, compressed: Bool, allocator: ByteBufferAllocator) -> ByteBuffer {
        let n = payload.readableBytes
        var b = allocator.buffer(capacity: n + 10)
        b.writeInteger(UInt8(0x80 | (compressed ? 0x40 : 0) | 0x1))   // FIN, RSV1, opcode text
        if n < 126 {
            b.writeInteger(UInt8(n))
        } else if n <= Int(UInt16.max) {
            b.writeInteger(UInt8(126))
            b.writeInteger(UInt16(n))
        } else {
            b.writeInteger(UInt8(127))
            b.writeInteger(UInt64(n))
        }
        var p = payload
        b.writeBuffer(&p)
        return b
    }
}

extension PushGateway {
    // MARK: PushSink

    /// Writes one hub frame to a client (compressed if it negotiated
    /// permessage-deflate and the frame is at least `deflate_min_bytes`); the
    /// flush comes once per batch (`flushDirty`). True while the socket takes more.
    public func write(_ id: PushClientID, _ frame: ByteBuffer) -> Bool {
        guard let c = conns[id] else { return false }
        if let p = c.deflate, frame.readableBytes >= hub.limits.deflateMinBytes,
           let z = deflater.compress(frame, windowBits: p.serverMaxWindowBits, allocator: c.channel.allocator) {
            send(c, z, compressed: true)
        } else {
            send(c, frame, compressed: false)
        }
        if !c.dirty {
            c.dirty = true
            dirty.append(c)
            if !flushScheduled {
                flushScheduled = true
                loop.execute { self.flushDirty() }
            }
        }
        return c.channel.isWritable
    }

    func send(_ c: PushConn, _ payload: ByteBuffer, compressed: Bool) {
        if let encoder = c.encoder {
            encoder.write(NIOAny(wire.frame(payload, compressed: compressed, allocator: c.channel.allocator)), promise: nil)
        } else {
            c.channel.write(WebSocketFrame(fin: true, rsv1: compressed, opcode: .text, data: payload), promise: nil)
        }
    }

    /// Flushes every client written to since the last flush, once each.
    func flushDirty() {
        flushScheduled = false
        swap(&dirty, &spareDirty)
        for c in spareDirty {
            c.dirty = false
            if let encoder = c.encoder { encoder.flush() } else { c.channel.flush() }
        }
        spareDirty.removeAll(keepingCapacity: true)
    }
}
