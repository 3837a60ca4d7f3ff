import CompressNIO
import DAgentPush
import Foundation
import NIOCore
import NIOWebSocket

/// permessage-deflate (RFC 7692) as agreed with one client.
///
/// The gateway always compresses without context takeover
/// (`server_no_context_takeover`): every server message is compressed on its
/// own, so one published message is compressed once and the same bytes go
/// to every deflate client. Client messages are inflated with a sliding
/// window kept across messages unless the client offered
/// `client_no_context_takeover`.
public struct PushDeflateParams: Sendable, Equatable {
    /// The window the gateway compresses with (`server_max_window_bits`, 9...15).
    public var serverMaxWindowBits: Int32 = 15
    /// The client offered `server_max_window_bits` (the answer must then carry it).
    public var windowBitsOffered = false
    /// The client resets its compressor after each message; so does our inflater.
    public var clientNoContextTakeover = false

    /// The `Sec-WebSocket-Extensions` answer.
    public var header: String {
        var h = "permessage-deflate; server_no_context_takeover"
        if clientNoContextTakeover { h += "; client_no_context_takeover" }
        if windowBitsOffered { h += "; server_max_window_bits=\(serverMaxWindowBits)" }
        return h
    }

    /// The first offer of permessage-deflate in the request's
    /// `Sec-WebSocket-Extensions` values that the gateway can accept, or nil
    /// (then the connection goes uncompressed). An offer with an unknown or
    /// repeated parameter, or a bad window size, is declined (RFC 7692 §7.1).
    public static func negotiate(_ values: [String]) -> PushDeflateParams? {
        for offer in values.joined(separator: ",").split(separator: ",") {
            let parts = offer.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let name = parts.first, name.lowercased() == "permessage-deflate" else { continue }
            if let p = accept(parts.dropFirst()) { return p }
        }
        return nil
    }

    static func accept(_ params: ArraySlice<String>) -> PushDeflateParams? {
        var p = PushDeflateParams()
        var seen = Set<String>()
        for param in params {
            let kv = param.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            let key = kv[0].lowercased()
            var value = kv.count == 2 ? kv[1] : nil
            if let v = value, v.count >= 2, v.first == "\"", v.last == "\"" { value = String(v.dropFirst().dropLast()) }
            guard seen.insert(key).inserted else { return nil }
            switch key {
            case "server_no_context_takeover":
                guard value == nil else { return nil }
            case "client_no_context_takeover":
                guard value == nil else { return nil }
                p.clientNoContextTakeover = true
            case "server_max_window_bits":
                // zlib cannot make a raw deflate stream with an 8-bit window: decline such an offer.
                guard let v = value, let bits = Int32(v), (9...15).contains(bits), v.first != "0" else { return nil }
                p.serverMaxWindowBits = bits
                p.windowBitsOffered = true
            case "client_max_window_bits":
                // A hint that the client can limit its window; our inflater takes any window up to 15.
                if let v = value { guard let bits = Int(v), (8...15).contains(bits), v.first != "0" else { return nil } }
            default:
                return nil
            }
        }
        return p
    }
}

/// What went wrong with a client's compressed frames.
public enum PushDeflateError: Error, Sendable, CustomStringConvertible {
    /// RSV1 (or RSV2/RSV3) without the extension that defines it, or RSV1 on a control or continuation frame.
    case reservedBits(String)
    /// A message that inflates past `max_frame_bytes`.
    case tooLarge(limit: Int)
    /// A compressed message that does not inflate.
    case corrupt(String)

    public var description: String {
        switch self {
        case .reservedBits(let why): return why
        case .tooLarge(let limit): return "a compressed message inflates past max_frame_bytes=\(limit)"
        case .corrupt(let why): return "a compressed message does not inflate: \(why)"
        }
    }
}

/// The inbound side, before the frame aggregator: inflates the frames of
/// compressed messages (RSV1 on the first frame) and passes them on without
/// RSV1, counting each message's inflated size against `max_frame_bytes`
/// (a decompression bomb stops at the limit). Without a negotiated
/// extension it refuses every reserved bit.
final class PushInflateHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame

    let params: PushDeflateParams?
    let maxBytes: Int
    var inflater: ZlibDecompressor?
    var compressedMessage = false
    var produced = 0
    var failed = false
    static let tail: [UInt8] = [0x00, 0x00, 0xFF, 0xFF]

    init(params: PushDeflateParams?, maxBytes: Int) {
        self.params = params
        self.maxBytes = maxBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var frame = unwrapInboundIn(data)
        do {
            if frame.rsv2 || frame.rsv3 { throw PushDeflateError.reservedBits("RSV2/RSV3 set: no extension defines them") }
            switch frame.opcode {
            case .text, .binary:
                compressedMessage = frame.rsv1
                produced = 0
                guard frame.rsv1 else { break }
                guard params != nil else {
                    throw PushDeflateError.reservedBits("RSV1 set, but permessage-deflate was not negotiated")
                }
                frame = WebSocketFrame(fin: frame.fin, opcode: frame.opcode, data: try inflate(frame, context.channel.allocator))
            case .continuation:
                if frame.rsv1 { throw PushDeflateError.reservedBits("RSV1 set on a continuation frame") }
                guard compressedMessage else { break }
                frame = WebSocketFrame(fin: frame.fin, opcode: .continuation, data: try inflate(frame, context.channel.allocator))
            default:
                if frame.rsv1 { throw PushDeflateError.reservedBits("RSV1 set on a control frame") }
            }
            if frame.fin && frame.opcode != .ping && frame.opcode != .pong && frame.opcode != .connectionClose {
                compressedMessage = false
            }
            context.fireChannelRead(wrapInboundOut(frame))
        } catch {
            failed = true
            context.fireErrorCaught(error)
        }
    }

    /// The inflated payload of one frame of a compressed message.
    func inflate(_ frame: WebSocketFrame, _ allocator: ByteBufferAllocator) throws -> ByteBuffer {
        var input = frame.unmaskedData
        if frame.fin {
            var withTail = allocator.buffer(capacity: input.readableBytes + 4)
            withTail.writeBuffer(&input)
            withTail.writeBytes(Self.tail)
            input = withTail
        }
        var out = allocator.buffer(capacity: min(max(1024, input.readableBytes * 4), maxBytes - produced + 1))
        guard input.readableBytes > 0 else { return out }
        if inflater == nil {
            do { inflater = try ZlibDecompressor(algorithm: .deflate, windowSize: 15) } catch { throw PushDeflateError.corrupt("zlib: \(error)") }
        }
        let z = inflater!
        while true {
            let before = (input.readableBytes, out.readableBytes, out.capacity)
            do {
                try z.inflate(from: &input, to: &out)
                if input.readableBytes == 0 { break }
            } catch let e as CompressNIOError where e == .bufferOverflow {
                // The output is full: more room, unless the message is past the limit already.
            } catch let e as CompressNIOError where e == .inputBufferOverflow {
                break   // every input byte is in; the rest of the message comes in the next frame
            } catch {
                throw PushDeflateError.corrupt("\(error)")
            }
            // Bytes after the end of the deflate stream make zlib stop without progress; without
            // this check the loop spun forever on a 65-byte frame (found by `scripts/fuzz push-deflate`).
            if (input.readableBytes, out.readableBytes, out.capacity) == before {
                throw PushDeflateError.corrupt("inflate makes no progress (\(input.readableBytes) byte(s) after the end of the deflate stream?)")
            }
            if produced + out.readableBytes > maxBytes { throw PushDeflateError.tooLarge(limit: maxBytes) }
            out.reserveCapacity(minimumWritableBytes: min(max(1024, out.readableBytes), maxBytes - produced - out.readableBytes + 1))
        }
        produced += out.readableBytes
        if produced > maxBytes { throw PushDeflateError.tooLarge(limit: maxBytes) }
        if frame.fin, params?.clientNoContextTakeover == true {
            do { try z.reset() } catch { throw PushDeflateError.corrupt("zlib reset: \(error)") }
        }
        return out
    }
}

/// The outbound side: compresses a server message on its own (no context
/// takeover) and remembers the last one, so a message fanned out to many
/// deflate clients is compressed once.
final class PushDeflater {
    var compressors: [Int32: ZlibCompressor] = [:]
    var lastInput: ByteBuffer?
    var lastBits: Int32 = 0
    var lastOutput: ByteBuffer?
    /// Messages compressed, and bytes before and after (for `dagent tree` and the docs' figures).
    private(set) var messages: UInt64 = 0
    private(set) var bytesIn: UInt64 = 0
    private(set) var bytesOut: UInt64 = 0

    /// The compressed payload of `frame` (without the 00 00 FF FF tail), or nil if zlib failed.
    func compress(_ frame: ByteBuffer, windowBits: Int32, allocator: ByteBufferAllocator) -> ByteBuffer? {
        if let last = lastInput, lastBits == windowBits, Self.same(last, frame) { return lastOutput }
        let z: ZlibCompressor
        do {
            if let c = compressors[windowBits] {
                z = c
                try z.reset()
            } else {
                z = try ZlibCompressor(algorithm: .deflate,
                                       configuration: ZlibConfiguration(windowSize: windowBits, compressionLevel: 1, memoryLevel: 8))
                compressors[windowBits] = z
            }
            var input = frame
            var out = allocator.buffer(capacity: z.maxSize(from: input))
            try z.deflate(from: &input, to: &out, flush: .sync)
            if out.readableBytes >= 4, out.getBytes(at: out.writerIndex - 4, length: 4) == PushInflateHandler.tail {
                out.moveWriterIndex(to: out.writerIndex - 4)
            }
            lastInput = frame
            lastBits = windowBits
            lastOutput = out
            messages += 1
            bytesIn += UInt64(frame.readableBytes)
            bytesOut += UInt64(out.readableBytes)
            return out
        } catch {
            compressors[windowBits] = nil
            return nil
        }
    }

    /// The same bytes in the same storage (the hub writes one buffer to every client; while
    /// `lastInput` holds that storage, no other buffer can have its address).
    static func same(_ a: ByteBuffer, _ b: ByteBuffer) -> Bool {
        guard a.readableBytes == b.readableBytes else { return false }
        return a.withUnsafeReadableBytes { pa in b.withUnsafeReadableBytes { pb in pa.baseAddress == pb.baseAddress } }
    }
}
