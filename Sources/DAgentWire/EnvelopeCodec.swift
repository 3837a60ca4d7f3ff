import Foundation
import NIOCore

/// What a forwarding node needs from an envelope, read without decoding it.
public struct EnvelopeHeader: Equatable, Sendable {
    public var dst: String
    public var kind: Int
    public var hopLimit: UInt32
    /// Offset of the 4 hop-limit bytes inside the envelope bytes (-1 if absent).
    public var hopLimitOffset: Int
}

/// A hand-written codec for `Dagent_Envelope`, byte-for-byte what
/// swift-protobuf produces (fields in number order, defaults omitted), so
/// every other protobuf implementation reads it. It exists for speed: the
/// envelope is the hot path, and a forwarding node reads only its header.
///
/// Decoding accepts any field order, repeated fields (last one wins) and
/// unknown fields, as protobuf requires; malformed input throws.
public enum EnvelopeCodec {
    // Field tags: (number << 3) | wire type.
    static let tSrc: UInt8 = 0x0A, tDst: UInt8 = 0x12, tType: UInt8 = 0x18, tPayload: UInt8 = 0x22
    static let tID: UInt8 = 0x28, tCookie: UInt8 = 0x30, tKind: UInt8 = 0x38, tHop: UInt8 = 0x45
    static let tTime: UInt8 = 0x49, tError: UInt8 = 0x50, tReason: UInt8 = 0x5A

    @inline(__always)
    static func varintSize(_ v: UInt64) -> Int {
        var n = 1
        var v = v >> 7
        while v != 0 { n += 1; v >>= 7 }
        return n
    }

    @inline(__always)
    static func writeVarint(_ v: UInt64, _ out: inout ByteBuffer) {
        var v = v
        while v >= 0x80 {
            out.writeInteger(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.writeInteger(UInt8(v))
    }

    /// Size of the encoded envelope (without any frame header).
    public static func size(of e: Dagent_Envelope) -> Int {
        var n = 0
        let src = e.src.utf8.count, dst = e.dst.utf8.count, payload = e.payload.count, reason = e.reason.utf8.count
        if src > 0 { n += 1 + varintSize(UInt64(src)) + src }
        if dst > 0 { n += 1 + varintSize(UInt64(dst)) + dst }
        if e.type != 0 { n += 1 + varintSize(UInt64(e.type)) }
        if payload > 0 { n += 1 + varintSize(UInt64(payload)) + payload }
        if e.id != 0 { n += 1 + varintSize(e.id) }
        if e.cookie != 0 { n += 1 + varintSize(e.cookie) }
        if e.kind.rawValue != 0 { n += 1 + varintSize(UInt64(bitPattern: Int64(e.kind.rawValue))) }
        if e.hopLimit != 0 { n += 5 }
        if e.sendTimeNs != 0 { n += 9 }
        if e.error.rawValue != 0 { n += 1 + varintSize(UInt64(bitPattern: Int64(e.error.rawValue))) }
        if reason > 0 { n += 1 + varintSize(UInt64(reason)) + reason }
        return n
    }

    static func writeString(_ tag: UInt8, _ s: String, _ out: inout ByteBuffer) {
        let n = s.utf8.count
        guard n > 0 else { return }
        out.writeInteger(tag)
        writeVarint(UInt64(n), &out)
        out.writeString(s)
    }

    /// Appends the envelope's protobuf bytes.
    public static func encode(_ e: Dagent_Envelope, into out: inout ByteBuffer) {
        writeString(tSrc, e.src, &out)
        writeString(tDst, e.dst, &out)
        if e.type != 0 { out.writeInteger(tType); writeVarint(UInt64(e.type), &out) }
        if !e.payload.isEmpty {
            out.writeInteger(tPayload)
            writeVarint(UInt64(e.payload.count), &out)
            out.writeBytes(e.payload)
        }
        if e.id != 0 { out.writeInteger(tID); writeVarint(e.id, &out) }
        if e.cookie != 0 { out.writeInteger(tCookie); writeVarint(e.cookie, &out) }
        if e.kind.rawValue != 0 { out.writeInteger(tKind); writeVarint(UInt64(bitPattern: Int64(e.kind.rawValue)), &out) }
        if e.hopLimit != 0 { out.writeInteger(tHop); out.writeInteger(e.hopLimit, endianness: .little) }
        if e.sendTimeNs != 0 { out.writeInteger(tTime); out.writeInteger(e.sendTimeNs, endianness: .little) }
        if e.error.rawValue != 0 { out.writeInteger(tError); writeVarint(UInt64(bitPattern: Int64(e.error.rawValue)), &out) }
        writeString(tReason, e.reason, &out)
    }

    /// Appends a whole TCP frame: `[length][Frame{envelope = e}]`.
    public static func encodeFrame(_ e: Dagent_Envelope, into out: inout ByteBuffer) {
        let body = size(of: e)
        out.writeInteger(UInt32(1 + varintSize(UInt64(body)) + body))
        out.writeInteger(UInt8(0x0A))
        writeVarint(UInt64(body), &out)
        encode(e, into: &out)
    }

    /// Appends a frame carrying already-encoded envelope bytes, with the hop
    /// limit patched in place (`hopLimitOffset` from `EnvelopeHeader`).
    public static func encodeFrame(raw: ByteBuffer, hopLimitOffset: Int, hopLimit: UInt32, into out: inout ByteBuffer) {
        let body = raw.readableBytes
        out.writeInteger(UInt32(1 + varintSize(UInt64(body)) + body))
        out.writeInteger(UInt8(0x0A))
        writeVarint(UInt64(body), &out)
        let start = out.writerIndex
        var raw = raw
        out.writeBuffer(&raw)
        if hopLimitOffset >= 0 {
            out.setInteger(hopLimit, at: start + hopLimitOffset, endianness: .little)
        }
    }

    // MARK: decoding

    /// Reads a base-128 varint at `i` (absolute index) in `p`, advancing `i`.
    @inline(__always)
    static func readVarint(_ p: UnsafeRawBufferPointer, _ i: inout Int) throws(FrameError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard i < p.count else { throw .malformed(length: p.count, detail: "truncated varint") }
            let byte = p[i]
            i += 1
            if shift == 63 && byte > 1 { throw .malformed(length: p.count, detail: "varint overflows 64 bits") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw .malformed(length: p.count, detail: "varint longer than 10 bytes") }
        }
    }

    @inline(__always)
    static func readLength(_ p: UnsafeRawBufferPointer, _ i: inout Int) throws(FrameError) -> Range<Int> {
        let n = try readVarint(p, &i)
        guard n <= UInt64(p.count - i) else {
            throw .malformed(length: p.count, detail: "field length \(n) runs past the end of the envelope")
        }
        let r = i..<(i + Int(n))
        i += Int(n)
        return r
    }

    static func string(_ p: UnsafeRawBufferPointer, _ r: Range<Int>) throws(FrameError) -> String {
        let bytes = UnsafeRawBufferPointer(rebasing: p[r])
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw .malformed(length: p.count, detail: "string field is not valid UTF-8")
        }
        return s
    }

    /// Skips a field of an unknown number.
    static func skip(wireType: UInt64, _ p: UnsafeRawBufferPointer, _ i: inout Int) throws(FrameError) {
        switch wireType {
        case 0: _ = try readVarint(p, &i)
        case 1: guard p.count - i >= 8 else { throw .malformed(length: p.count, detail: "truncated fixed64") }; i += 8
        case 2: _ = try readLength(p, &i)
        case 5: guard p.count - i >= 4 else { throw .malformed(length: p.count, detail: "truncated fixed32") }; i += 4
        default: throw .malformed(length: p.count, detail: "unsupported wire type \(wireType)")
        }
    }

    static func fixed32(_ p: UnsafeRawBufferPointer, _ i: inout Int) throws(FrameError) -> UInt32 {
        guard p.count - i >= 4 else { throw .malformed(length: p.count, detail: "truncated fixed32") }
        let v = p.loadUnaligned(fromByteOffset: i, as: UInt32.self)
        i += 4
        return UInt32(littleEndian: v)
    }

    static func fixed64(_ p: UnsafeRawBufferPointer, _ i: inout Int) throws(FrameError) -> UInt64 {
        guard p.count - i >= 8 else { throw .malformed(length: p.count, detail: "truncated fixed64") }
        let v = p.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        i += 8
        return UInt64(littleEndian: v)
    }

    /// The routing header of envelope bytes, without decoding the rest.
    public static func header(_ raw: ByteBuffer) throws(FrameError) -> EnvelopeHeader {
        do {
            return try raw.withUnsafeReadableBytes { p throws(FrameError) -> EnvelopeHeader in
                var h = EnvelopeHeader(dst: "", kind: 0, hopLimit: 0, hopLimitOffset: -1)
                var i = 0
                while i < p.count {
                    let key = try readVarint(p, &i)
                    let wireType = key & 7
                    switch (key >> 3, wireType) {
                    case (2, 2): h.dst = try string(p, try readLength(p, &i))
                    case (7, 0): h.kind = Int(Int32(truncatingIfNeeded: try readVarint(p, &i)))
                    case (8, 5): h.hopLimitOffset = i; h.hopLimit = try fixed32(p, &i)
                    default: try skip(wireType: wireType, p, &i)
                    }
                }
                return h
            }
        } catch let error as FrameError {
            throw error
        } catch {
            throw .malformed(length: raw.readableBytes, detail: "\(error)")
        }
    }

    /// Decodes envelope bytes.
    public static func decode(_ raw: ByteBuffer) throws(FrameError) -> Dagent_Envelope {
        do {
            return try raw.withUnsafeReadableBytes { p throws(FrameError) -> Dagent_Envelope in
                var e = Dagent_Envelope()
                var i = 0
                while i < p.count {
                    let key = try readVarint(p, &i)
                    let wireType = key & 7
                    switch (key >> 3, wireType) {
                    case (1, 2): e.src = try string(p, try readLength(p, &i))
                    case (2, 2): e.dst = try string(p, try readLength(p, &i))
                    case (3, 0): e.type = UInt32(truncatingIfNeeded: try readVarint(p, &i))
                    case (4, 2): e.payload = Data(UnsafeRawBufferPointer(rebasing: p[try readLength(p, &i)]))
                    case (5, 0): e.id = try readVarint(p, &i)
                    case (6, 0): e.cookie = try readVarint(p, &i)
                    case (7, 0): e.kind = Dagent_Kind(rawValue: Int(Int32(truncatingIfNeeded: try readVarint(p, &i)))) ?? .data
                    case (8, 5): e.hopLimit = try fixed32(p, &i)
                    case (9, 1): e.sendTimeNs = try fixed64(p, &i)
                    case (10, 0): e.error = Dagent_ErrorCode(rawValue: Int(Int32(truncatingIfNeeded: try readVarint(p, &i)))) ?? .ok
                    case (11, 2): e.reason = try string(p, try readLength(p, &i))
                    default: try skip(wireType: wireType, p, &i)
                    }
                }
                return e
            }
        } catch let error as FrameError {
            throw error
        } catch {
            throw .malformed(length: raw.readableBytes, detail: "\(error)")
        }
    }
}
