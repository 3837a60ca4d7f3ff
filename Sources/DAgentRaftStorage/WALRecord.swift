import DAgentRaft

/// What a snapshot marker in the WAL records.
public enum SnapshotMarkerKind: UInt8, Sendable {
    /// Re-emitted at the start of every segment: the snapshot in effect when the segment
    /// was created. Entries at or below it may be missing from this segment on.
    case base = 0
    /// A locally taken snapshot (`compact(with:)`): entries up to `index` may be discarded,
    /// later entries stay.
    case compacted = 1
    /// A snapshot received from the leader (`applySnapshot`): replaces the whole log.
    case installed = 2
}

/// One logical WAL record. On disk every record is framed as
/// `crc32c (u32 LE) | length (u32 LE) | type (u8) | payload`, where the CRC covers the
/// length, type and payload bytes. Payloads use the varint encoding of `WireCodec.swift`.
public enum WALRecord: Sendable, Equatable {
    /// Segment header; always the first record of a segment.
    case metadata(formatVersion: UInt8, segment: UInt64)
    /// One log entry (conflict semantics: it replaces any stored entry at or after its index).
    case entry(Entry)
    /// The Raft hard state (term, vote, commit).
    case hardState(HardState)
    /// A snapshot marker: the snapshot file `(index, term)` is durable and in effect.
    case snapshot(kind: SnapshotMarkerKind, index: UInt64, term: UInt64)

    package static let typeMetadata: UInt8 = 1
    package static let typeEntry: UInt8 = 2
    package static let typeHardState: UInt8 = 3
    package static let typeSnapshot: UInt8 = 4

    /// Current on-disk format version, stored in every segment header.
    public static let formatVersion: UInt8 = 1

    package func encodeBody(into w: inout ByteWriter) {
        switch self {
        case let .metadata(version, segment):
            w.u8(Self.typeMetadata); w.u8(version); w.uvarint(segment)
        case let .entry(e):
            w.u8(Self.typeEntry); e.encode(into: &w)
        case let .hardState(hs):
            w.u8(Self.typeHardState); w.uvarint(hs.term); w.uvarint(hs.vote); w.uvarint(hs.commit)
        case let .snapshot(kind, index, term):
            w.u8(Self.typeSnapshot); w.u8(kind.rawValue); w.uvarint(index); w.uvarint(term)
        }
    }

    package init(body: ArraySlice<UInt8>) throws {
        var r = ByteReader(Array(body))
        let type = try r.u8()
        switch type {
        case Self.typeMetadata:
            let v = try r.u8()
            self = .metadata(formatVersion: v, segment: try r.uvarint())
        case Self.typeEntry:
            self = .entry(try Entry(from: &r))
        case Self.typeHardState:
            self = .hardState(HardState(term: try r.uvarint(), vote: try r.uvarint(), commit: try r.uvarint()))
        case Self.typeSnapshot:
            let k = try r.u8()
            guard let kind = SnapshotMarkerKind(rawValue: k) else { throw WALFrameError("unknown snapshot marker kind \(k)") }
            self = .snapshot(kind: kind, index: try r.uvarint(), term: try r.uvarint())
        default:
            throw WALFrameError("unknown record type \(type)")
        }
        try r.finish()
    }
}

package struct WALFrameError: Error, CustomStringConvertible {
    package let description: String
    package init(_ d: String) { description = d }
}

/// Encoding and verification of framed records.
package enum WALFrame {
    package static let headerSize = 8

    /// Appends the framed `record` to `out`.
    package static func append(_ record: WALRecord, to out: inout [UInt8]) {
        var w = ByteWriter()
        record.encodeBody(into: &w)
        let body = w.bytes
        let start = out.count
        out.append(contentsOf: [0, 0, 0, 0])
        appendU32(UInt32(body.count), to: &out)
        out.append(contentsOf: body)
        let crc = CRC32C.checksum(out[(start + 4)...])
        for i in 0..<4 { out[start + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
    }

    package static func appendU32(_ v: UInt32, to out: inout [UInt8]) {
        for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) }
    }

    package static func readU32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }

    /// Outcome of reading one frame.
    package enum Parsed {
        /// An intact record and the offset just after it.
        case record(WALRecord, next: Int)
        /// The bytes at the offset are not an intact frame (incomplete or checksum mismatch).
        case invalid(String)
        /// The frame is intact (CRC matches) but its content cannot be decoded.
        case undecodable(String)
    }

    /// Reads the frame at `pos`. `maxBody` bounds the accepted length field.
    package static func parse(_ b: [UInt8], at pos: Int, maxBody: Int) -> Parsed {
        let remaining = b.count - pos
        if remaining < headerSize { return .invalid("incomplete record header (\(remaining) of \(headerSize) bytes)") }
        let stored = readU32(b, pos)
        let len = Int(readU32(b, pos + 4))
        if len == 0 || len > maxBody { return .invalid("implausible record length \(len)") }
        if len > remaining - headerSize {
            return .invalid("record of \(len) bytes extends past the end of the file (\(remaining - headerSize) left)")
        }
        let crc = CRC32C.checksum(b[(pos + 4)..<(pos + headerSize + len)])
        if crc != stored {
            return .invalid("checksum mismatch (stored \(hex(stored)), computed \(hex(crc)))")
        }
        do {
            let rec = try WALRecord(body: b[(pos + headerSize)..<(pos + headerSize + len)])
            return .record(rec, next: pos + headerSize + len)
        } catch {
            return .undecodable("intact record cannot be decoded: \(error)")
        }
    }

    /// Whether any intact frame starts after `pos` (used to tell a torn tail from
    /// corruption in the middle of the log). Returns its offset.
    package static func nextIntactFrame(_ b: [UInt8], after pos: Int, maxBody: Int) -> Int? {
        var p = pos + 1
        while p + headerSize <= b.count {
            switch parse(b, at: p, maxBody: maxBody) {
            case .record, .undecodable: return p
            case .invalid: p += 1
            }
        }
        return nil
    }

    package static func hex(_ v: UInt32) -> String { "0x" + paddedHex(UInt64(v), width: 8) }
}

/// Lower-case hex of `v`, left-padded with zeros to `width` digits.
package func paddedHex(_ v: UInt64, width: Int) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, width - s.count)) + s
}
