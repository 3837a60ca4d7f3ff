import Foundation
import NIOCore

/// One message on the data path, from the read to the handler: its header,
/// parsed once, and its payload as a slice of the bytes it arrived in (no
/// copy). The routing core delivers these in batches; `envelope` builds the
/// protobuf type for code that wants one (a copy of the payload). The header
/// fields read and write through to `header` (`m.src`, `m.cookie`, ...).
@dynamicMemberLookup
public struct DataMessage: Sendable {
    /// The routing header: the same fields a send fills in (`MessageHeader`).
    public var header: MessageHeader
    /// The payload bytes: a slice of the frame read off the link.
    public var payload: ByteBuffer

    public init(header: MessageHeader = MessageHeader(), payload: ByteBuffer) {
        self.header = header
        self.payload = payload
    }

    @inlinable
    public subscript<T>(dynamicMember field: WritableKeyPath<MessageHeader, T>) -> T {
        get { header[keyPath: field] }
        set { header[keyPath: field] = newValue }
    }

    /// The same message as a `Dagent_Envelope` (copies the payload).
    public var envelope: Dagent_Envelope {
        payload.withUnsafeReadableBytes { header.envelope(payload: $0) }
    }

    /// The envelope of this message without its payload (no copy): what an answer to it
    /// (a receipt, an error) is built from.
    public var headerEnvelope: Dagent_Envelope {
        header.envelope(payload: UnsafeRawBufferPointer(start: nil, count: 0))
    }
}

extension EnvelopeCodec {
    /// Decodes envelope bytes into a `DataMessage` whose payload is a slice of
    /// `raw` (no copy), reusing `cache`'s strings when the bytes match.
    public static func decodeMessage(_ raw: ByteBuffer, cache: inout StringCache) throws(FrameError) -> DataMessage {
        do {
            let base = raw.readerIndex
            var h = MessageHeader()
            var payload: Range<Int>?
            try raw.withUnsafeReadableBytes { p throws(FrameError) in
                var i = 0
                while i < p.count {
                    let key = try readVarint(p, &i)
                    let wireType = key & 7
                    switch (key >> 3, wireType) {
                    case (1, 2): h.src = try cached(p, try readLength(p, &i), &cache.src)
                    case (2, 2): h.dst = try cached(p, try readLength(p, &i), &cache.dst)
                    case (3, 0): h.type = UInt32(truncatingIfNeeded: try readVarint(p, &i))
                    case (4, 2): payload = try readLength(p, &i)
                    case (5, 0): h.id = try readVarint(p, &i)
                    case (6, 0): h.cookie = try readVarint(p, &i)
                    case (7, 0): h.kind = Dagent_Kind(rawValue: Int(Int32(truncatingIfNeeded: try readVarint(p, &i)))) ?? .data
                    case (8, 5): h.hopLimit = try fixed32(p, &i)
                    case (9, 1): h.sendTimeNs = try fixed64(p, &i)
                    case (10, 0): h.error = Dagent_ErrorCode(rawValue: Int(Int32(truncatingIfNeeded: try readVarint(p, &i)))) ?? .ok
                    case (11, 2): h.reason = try string(p, try readLength(p, &i))
                    default: try skip(wireType: wireType, p, &i)
                    }
                }
            }
            // Built once at the end: no placeholder payload to retain and replace.
            guard let r = payload else { return DataMessage(header: h, payload: ByteBuffer()) }
            return DataMessage(header: h, payload: raw.getSlice(at: base + r.lowerBound, length: r.count)!)
        }
    }
}
