import Foundation
import NIOCore

/// The fields of an envelope without its payload: what a sender fills in and
/// the routing core stamps (source, id, hop limit). Encoded together with the
/// caller's payload bytes straight into a link's outgoing buffer
/// (`FrameWriter.append(_:payload:)`), so sending builds no `Dagent_Envelope`
/// and copies the payload once, into the buffer the socket writes.
public struct MessageHeader: Sendable, Equatable {
    public var src: String = ""
    public var dst: String
    public var type: UInt32 = 0
    public var kind: Dagent_Kind = .data
    public var id: UInt64 = 0
    public var cookie: UInt64 = 0
    public var hopLimit: UInt32 = 0
    public var sendTimeNs: UInt64 = 0
    public var error: Dagent_ErrorCode = .ok
    public var reason: String = ""

    public init(dst: String = "", type: UInt32 = 0, kind: Dagent_Kind = .data) {
        self.dst = dst
        self.type = type
        self.kind = kind
    }

    /// The header of an envelope (its payload, queue picks left out).
    public init(_ e: Dagent_Envelope) {
        src = e.src
        dst = e.dst
        type = e.type
        kind = e.kind
        id = e.id
        cookie = e.cookie
        hopLimit = e.hopLimit
        sendTimeNs = e.sendTimeNs
        error = e.error
        reason = e.reason
    }

    /// The envelope this header and `payload` make (the slow path: a copy).
    public func envelope(payload: UnsafeRawBufferPointer) -> Dagent_Envelope {
        var e = Dagent_Envelope()
        e.src = src
        e.dst = dst
        e.type = type
        e.kind = kind
        e.id = id
        e.cookie = cookie
        e.hopLimit = hopLimit
        e.sendTimeNs = sendTimeNs
        e.error = error
        e.reason = reason
        if payload.count > 0 { e.payload = Data(payload) }
        return e
    }
}

extension EnvelopeCodec {
    /// Size of the envelope that `h` and a payload of `payloadCount` bytes encode to.
    @inline(__always)
    public static func size(of h: MessageHeader, payloadCount payload: Int) -> Int {
        var n = 0
        let src = h.src.utf8.count, dst = h.dst.utf8.count, reason = h.reason.utf8.count
        if src > 0 { n += 1 + varintSize(UInt64(src)) + src }
        if dst > 0 { n += 1 + varintSize(UInt64(dst)) + dst }
        if h.type != 0 { n += 1 + varintSize(UInt64(h.type)) }
        if payload > 0 { n += 1 + varintSize(UInt64(payload)) + payload }
        if h.id != 0 { n += 1 + varintSize(h.id) }
        if h.cookie != 0 { n += 1 + varintSize(h.cookie) }
        if h.kind.rawValue != 0 { n += 1 + varintSize(UInt64(bitPattern: Int64(h.kind.rawValue))) }
        if h.hopLimit != 0 { n += 5 }
        if h.sendTimeNs != 0 { n += 9 }
        if h.error.rawValue != 0 { n += 1 + varintSize(UInt64(bitPattern: Int64(h.error.rawValue))) }
        if reason > 0 { n += 1 + varintSize(UInt64(reason)) + reason }
        return n
    }

    /// Appends the envelope bytes of `h` with `payload` (`size` from
    /// `size(of:payloadCount:)`): byte for byte what `encode(_ e:)` writes for
    /// the same envelope. One reservation, then raw stores.
    @inline(__always)
    public static func encode(_ h: MessageHeader, payload: UnsafeRawBufferPointer, size n: Int, into out: inout ByteBuffer) {
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: n) { buffer -> Int in
            var w = RawWriter(base: buffer.baseAddress!)
            w.header(h, payload: payload)
            precondition(w.offset == n, "envelope size mismatch: wrote \(w.offset), computed \(n)")
            return n
        }
    }

    /// Appends a whole TCP frame, `[length][Frame{envelope}]`, of `h` with `payload`: what
    /// `encodeFrame(_ e:into:)` writes for the same envelope (and `FrameWriter` for a batch of one).
    public static func encodeFrame(_ h: MessageHeader, payload: UnsafeRawBufferPointer, into out: inout ByteBuffer) {
        let body = size(of: h, payloadCount: payload.count)
        writeFramePrefix(envelopeBytes: body, into: &out)
        encode(h, payload: payload, size: body, into: &out)
    }
}

extension RawWriter {
    /// Envelope fields 1–11 in number order, defaults omitted.
    @inline(__always)
    mutating func header(_ h: MessageHeader, payload: UnsafeRawBufferPointer) {
        typealias C = EnvelopeCodec
        string(C.tSrc, h.src)
        string(C.tDst, h.dst)
        if h.type != 0 { byte(C.tType); varint(UInt64(h.type)) }
        if payload.count > 0 {
            byte(C.tPayload)
            varint(UInt64(payload.count))
            bytes(payload)
        }
        if h.id != 0 { byte(C.tID); varint(h.id) }
        if h.cookie != 0 { byte(C.tCookie); varint(h.cookie) }
        if h.kind.rawValue != 0 { byte(C.tKind); varint(UInt64(bitPattern: Int64(h.kind.rawValue))) }
        if h.hopLimit != 0 { byte(C.tHop); fixed32(h.hopLimit) }
        if h.sendTimeNs != 0 { byte(C.tTime); fixed64(h.sendTimeNs) }
        if h.error.rawValue != 0 { byte(C.tError); varint(UInt64(bitPattern: Int64(h.error.rawValue))) }
        string(C.tReason, h.reason)
    }
}
