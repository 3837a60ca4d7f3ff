import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// What a forwarding node needs from an envelope, read without decoding it.
public struct EnvelopeHeader: Equatable, Sendable {
    public var dst: String
    public var kind: Int
    public var hopLimit: UInt32
    /// Offset of the 4 hop-limit bytes inside the envelope bytes (-1 if absent).
    public var hopLimitOffset: Int
    /// A PUBLISH that carries queue-group picks (`queues` or `pick_queues`):
    /// it cannot be relayed unopened, each link gets its own picks.
    public var hasQueuePicks = false
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
        if !e.queues.isEmpty {
            for q in e.queues { let c = q.utf8.count; n += 2 + varintSize(UInt64(c)) + c }
        }
        if e.pickQueues { n += 3 }
        return n
    }

    /// Appends the envelope's protobuf bytes.
    public static func encode(_ e: Dagent_Envelope, into out: inout ByteBuffer) {
        encode(e, size: size(of: e), into: &out)
    }

    /// One bounds check and one reservation per envelope, then raw stores.
    static func encode(_ e: Dagent_Envelope, size n: Int, into out: inout ByteBuffer) {
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: n) { buffer -> Int in
            var w = RawWriter(base: buffer.baseAddress!)
            w.string(tSrc, e.src)
            w.string(tDst, e.dst)
            if e.type != 0 { w.byte(tType); w.varint(UInt64(e.type)) }
            if !e.payload.isEmpty {
                w.byte(tPayload)
                w.varint(UInt64(e.payload.count))
                e.payload.withUnsafeBytes { w.bytes($0) }
            }
            if e.id != 0 { w.byte(tID); w.varint(e.id) }
            if e.cookie != 0 { w.byte(tCookie); w.varint(e.cookie) }
            if e.kind.rawValue != 0 { w.byte(tKind); w.varint(UInt64(bitPattern: Int64(e.kind.rawValue))) }
            if e.hopLimit != 0 { w.byte(tHop); w.fixed32(e.hopLimit) }
            if e.sendTimeNs != 0 { w.byte(tTime); w.fixed64(e.sendTimeNs) }
            if e.error.rawValue != 0 { w.byte(tError); w.varint(UInt64(bitPattern: Int64(e.error.rawValue))) }
            w.string(tReason, e.reason)
            if !e.queues.isEmpty {
                for q in e.queues {
                    var q = q
                    q.withUTF8 { u in
                        w.byte(0xA2); w.byte(0x06)   // field 100, length-delimited
                        w.varint(UInt64(u.count))
                        w.bytes(UnsafeRawBufferPointer(u))
                    }
                }
            }
            if e.pickQueues { w.byte(0xA8); w.byte(0x06); w.byte(1) }   // field 101, varint
            precondition(w.offset == n, "envelope size mismatch: wrote \(w.offset), computed \(n)")
            return n
        }
    }

    /// Appends a whole TCP frame: `[length][Frame{envelope = e}]`.
    public static func encodeFrame(_ e: Dagent_Envelope, into out: inout ByteBuffer) {
        let body = size(of: e)
        writeFramePrefix(envelopeBytes: body, into: &out)
        encode(e, size: body, into: &out)
    }

    /// Appends what comes before an envelope of `body` bytes in a TCP frame, `[length]` and
    /// `Frame`'s field-1 tag and length, with room reserved for the envelope after it.
    @inline(__always)
    static func writeFramePrefix(envelopeBytes body: Int, into out: inout ByteBuffer) {
        let header = 1 + varintSize(UInt64(body))
        out.reserveCapacity(minimumWritableBytes: 4 + header + body)
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: 4 + header) { buffer -> Int in
            var w = RawWriter(base: buffer.baseAddress!)
            w.bigEndian32(UInt32(header + body))
            w.byte(0x0A)
            w.varint(UInt64(body))
            return w.offset
        }
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
        var high: UInt8 = 0
        for b in bytes { high |= b }
        if high < 0x80 { return String(decoding: bytes, as: UTF8.self) }   // ASCII: valid by construction
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
        do {  // (NIO's withUnsafeReadableBytes rethrows our typed error)
            return try raw.withUnsafeReadableBytes { p throws(FrameError) -> EnvelopeHeader in
                var h = EnvelopeHeader(dst: "", kind: 0, hopLimit: 0, hopLimitOffset: -1)
                var hasQueues = false, pickQueues = false   // a later pick_queues overrides an earlier one (protobuf: last wins)
                var i = 0
                while i < p.count {
                    let key = try readVarint(p, &i)
                    let wireType = key & 7
                    switch (key >> 3, wireType) {
                    case (2, 2): h.dst = try string(p, try readLength(p, &i))
                    case (7, 0): h.kind = Int(Int32(truncatingIfNeeded: try readVarint(p, &i)))
                    case (8, 5): h.hopLimitOffset = i; h.hopLimit = try fixed32(p, &i)
                    case (100, 2): _ = try readLength(p, &i); hasQueues = true
                    case (101, 0): pickQueues = try readVarint(p, &i) != 0
                    default: try skip(wireType: wireType, p, &i)
                    }
                }
                h.hasQueuePicks = hasQueues || pickQueues
                return h
            }
        }
    }

    /// Strings seen recently, reused when the same bytes come again (the
    /// envelopes of a batch share `dst` and usually `src`).
    public struct StringCache {
        public var src: String = ""
        public var dst: String = ""
        public init() {}
    }

    static func cached(_ p: UnsafeRawBufferPointer, _ r: Range<Int>, _ last: inout String) throws(FrameError) -> String {
        var same = false
        last.utf8.withContiguousStorageIfAvailable { u in
            same = u.count == r.count && (r.isEmpty || memcmp(u.baseAddress!, p.baseAddress! + r.lowerBound, r.count) == 0)
        }
        if same { return last }
        last = try string(p, r)
        return last
    }

    /// Decodes envelope bytes.
    public static func decode(_ raw: ByteBuffer) throws(FrameError) -> Dagent_Envelope {
        var cache = StringCache()
        return try decode(raw, cache: &cache)
    }

    /// Decodes envelope bytes, reusing `cache`'s strings when the bytes match.
    public static func decode(_ raw: ByteBuffer, cache: inout StringCache) throws(FrameError) -> Dagent_Envelope {
        do {
            return try raw.withUnsafeReadableBytes { p throws(FrameError) -> Dagent_Envelope in
                var e = Dagent_Envelope()
                var i = 0
                while i < p.count {
                    let key = try readVarint(p, &i)
                    let wireType = key & 7
                    switch (key >> 3, wireType) {
                    case (1, 2): e.src = try cached(p, try readLength(p, &i), &cache.src)
                    case (2, 2): e.dst = try cached(p, try readLength(p, &i), &cache.dst)
                    case (3, 0): e.type = UInt32(truncatingIfNeeded: try readVarint(p, &i))
                    case (4, 2): e.payload = Data(UnsafeRawBufferPointer(rebasing: p[try readLength(p, &i)]))
                    case (5, 0): e.id = try readVarint(p, &i)
                    case (6, 0): e.cookie = try readVarint(p, &i)
                    case (7, 0): e.kind = Dagent_Kind(rawValue: Int(Int32(truncatingIfNeeded: try readVarint(p, &i)))) ?? .data
                    case (8, 5): e.hopLimit = try fixed32(p, &i)
                    case (9, 1): e.sendTimeNs = try fixed64(p, &i)
                    case (10, 0): e.error = Dagent_ErrorCode(rawValue: Int(Int32(truncatingIfNeeded: try readVarint(p, &i)))) ?? .ok
                    case (11, 2): e.reason = try string(p, try readLength(p, &i))
                    case (100, 2): e.queues.append(try string(p, try readLength(p, &i)))
                    case (101, 0): e.pickQueues = try readVarint(p, &i) != 0
                    default: try skip(wireType: wireType, p, &i)
                    }
                }
                return e
            }
        }
    }
}

/// Stores bytes through a raw pointer; the caller reserved the space.
struct RawWriter {
    let base: UnsafeMutableRawPointer
    var offset = 0

    @inline(__always) mutating func byte(_ b: UInt8) {
        base.storeBytes(of: b, toByteOffset: offset, as: UInt8.self)
        offset += 1
    }

    @inline(__always) mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            byte(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        byte(UInt8(v))
    }

    @inline(__always) mutating func fixed32(_ v: UInt32) {
        base.storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt32.self)
        offset += 4
    }

    @inline(__always) mutating func fixed64(_ v: UInt64) {
        base.storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt64.self)
        offset += 8
    }

    @inline(__always) mutating func bigEndian32(_ v: UInt32) {
        base.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt32.self)
        offset += 4
    }

    @inline(__always) mutating func bytes(_ p: UnsafeRawBufferPointer) {
        guard p.count > 0 else { return }
        (base + offset).copyMemory(from: p.baseAddress!, byteCount: p.count)
        offset += p.count
    }

    @inline(__always) mutating func string(_ tag: UInt8, _ s: String) {
        var s = s
        s.withUTF8 { u in
            guard u.count > 0 else { return }
            byte(tag)
            varint(UInt64(u.count))
            bytes(UnsafeRawBufferPointer(u))
        }
    }
}
