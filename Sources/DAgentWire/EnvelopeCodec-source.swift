import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Reading an envelope's `src` without decoding it, for the source check a
/// parent applies to what its children send (the forwarding fast path).
extension EnvelopeCodec {
    /// The byte range of the last `src` field (protobuf: the last one wins,
    /// so every field is walked), or nil if there is none.
    static func sourceRange(_ p: UnsafeRawBufferPointer) throws(FrameError) -> Range<Int>? {
        var found: Range<Int>?
        var i = 0
        while i < p.count {
            let key = try readVarint(p, &i)
            let wireType = key & 7
            if key >> 3 == 1 && wireType == 2 {
                found = try readLength(p, &i)
            } else {
                try skip(wireType: wireType, p, &i)
            }
        }
        return found
    }

    /// True if `a` and `b` are the same UTF-8 bytes (String's `==` compares canonical
    /// equivalence, which a source check must not).
    @inline(__always)
    public static func sameBytes(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in x.count == y.count && (x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0) }
        }
    }

    /// True if the envelope's `src` is exactly `name` (no allocation).
    public static func source(of raw: ByteBuffer, is name: String) throws(FrameError) -> Bool {
        var name = name
        do {
            return try raw.withUnsafeReadableBytes { p throws(FrameError) -> Bool in
                let r = try sourceRange(p) ?? 0..<0
                return name.withUTF8 { u in
                    u.count == r.count && (r.isEmpty || memcmp(u.baseAddress!, p.baseAddress! + r.lowerBound, r.count) == 0)
                }
            }
        }
    }

    /// The envelope's `src` ("" if absent).
    public static func source(of raw: ByteBuffer) throws(FrameError) -> String {
        do {
            return try raw.withUnsafeReadableBytes { p throws(FrameError) -> String in
                guard let r = try sourceRange(p) else { return "" }
                return try string(p, r)
            }
        }
    }
}

extension BatchCodec {
    /// True if every envelope in batch bytes has `src` exactly `name` (the
    /// usual batch: one sender). False sends the caller to the slow path,
    /// which checks each envelope on its own.
    public static func sources(of raw: ByteBuffer, are name: String) throws(FrameError) -> Bool {
        var name = name
        do {
            return try raw.withUnsafeReadableBytes { p throws(FrameError) -> Bool in
                var i = 0
                while i < p.count {
                    let key = try EnvelopeCodec.readVarint(p, &i)
                    guard key == 0x0A else { try EnvelopeCodec.skip(wireType: key & 7, p, &i); continue }
                    let r = try EnvelopeCodec.readLength(p, &i)
                    let inner = UnsafeRawBufferPointer(rebasing: p[r])
                    let s = try EnvelopeCodec.sourceRange(inner) ?? 0..<0
                    let same = name.withUTF8 { u in
                        u.count == s.count && (s.isEmpty || memcmp(u.baseAddress!, inner.baseAddress! + s.lowerBound, s.count) == 0)
                    }
                    if !same { return false }
                }
                return true
            }
        }
    }
}
