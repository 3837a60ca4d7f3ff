import Foundation
import SwiftProtobuf

/// One record of a durable send queue's write-ahead log (`DATA/queue/q-<seq>.log`).
///
/// On disk every record is `crc32c (u32 LE) | length (u32 LE) | body`, the CRC covering the
/// length and the body. The body is a type byte and the type's fields:
/// - `1` header: `"DQL" version(u8) | segment (u64 LE) | supersedes (u64 LE)` — always first;
///   a segment supersedes every segment numbered below `supersedes` (it holds their live records);
/// - `2` queued: `seq (u64 LE) | Dagent_Envelope (protobuf)` — a message entered the queue;
/// - `3` left: `count (u32 LE) | count × seq (u64 LE)` — these messages left the queue
///   (handed to a link, expired, or failed).
public enum QueueLogRecord: Equatable, Sendable {
    case header(segment: UInt64, supersedes: UInt64)
    case queued(seq: UInt64, envelope: Dagent_Envelope)
    case left(seqs: [UInt64])

    /// Version written in every header.
    public static let version: UInt8 = 1
    static let magic: [UInt8] = Array("DQL".utf8)
    static let typeHeader: UInt8 = 1, typeQueued: UInt8 = 2, typeLeft: UInt8 = 3
    /// Bytes of framing in front of every body.
    public static let framingBytes = 8
}

/// What made a queue log stop decoding before its end.
public struct QueueLogDamage: Equatable, Sendable, CustomStringConvertible {
    /// Offset of the first byte that is not part of an intact record.
    public var offset: Int
    public var reason: String
    public var description: String { "at offset \(offset): \(reason)" }
}

/// The result of decoding one segment's bytes: the intact records in order, how many
/// bytes they span, and why decoding stopped early (nil if the bytes end cleanly).
public struct QueueLogDecoded: Equatable, Sendable {
    public var records: [QueueLogRecord] = []
    public var validBytes = 0
    public var damage: QueueLogDamage?
}

/// Encodes queue log records (pure; no I/O).
public enum QueueLogEncoder {
    /// Appends the framed record to `out`.
    public static func append(_ record: QueueLogRecord, to out: inout [UInt8]) throws {
        var body: [UInt8] = []
        switch record {
        case let .header(segment, supersedes):
            body.append(QueueLogRecord.typeHeader)
            body += QueueLogRecord.magic
            body.append(QueueLogRecord.version)
            le64(segment, &body)
            le64(supersedes, &body)
        case let .queued(seq, envelope):
            body.append(QueueLogRecord.typeQueued)
            le64(seq, &body)
            body += try envelope.serializedBytes() as [UInt8]
        case let .left(seqs):
            body.append(QueueLogRecord.typeLeft)
            le32(UInt32(seqs.count), &body)
            for s in seqs { le64(s, &body) }
        }
        var lengthAndBody: [UInt8] = []
        lengthAndBody.reserveCapacity(4 + body.count)
        le32(UInt32(body.count), &lengthAndBody)
        lengthAndBody += body
        le32(QueueLogCRC.checksum(lengthAndBody[...]), &out)
        out += lengthAndBody
    }

    static func le32(_ v: UInt32, _ out: inout [UInt8]) {
        for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) }
    }

    static func le64(_ v: UInt64, _ out: inout [UInt8]) {
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }
}

/// Decodes a queue log segment. Pure and total: any bytes give a result, never a trap.
/// Decoding stops at the first record that is torn (its length runs past the end), fails
/// its CRC, is longer than `maxRecordBytes`, or does not parse; `damage` says which and
/// where, and `validBytes` is where an intact log would be truncated.
public enum QueueLogDecoder {
    public static func decode(_ bytes: [UInt8], maxRecordBytes: Int = 64 << 20) -> QueueLogDecoded {
        var out = QueueLogDecoded()
        var pos = 0
        while pos < bytes.count {
            func stop(_ reason: String) -> QueueLogDecoded {
                out.damage = QueueLogDamage(offset: pos, reason: reason)
                return out
            }
            let left = bytes.count - pos
            guard left >= QueueLogRecord.framingBytes else {
                return stop("torn record: \(left) byte(s) where a record needs at least \(QueueLogRecord.framingBytes + 1)")
            }
            let crc = le32(bytes, pos)
            let length = Int(le32(bytes, pos + 4))
            guard length >= 1, length <= maxRecordBytes else {
                return stop("record length \(length) is outside 1...\(maxRecordBytes)")
            }
            guard length <= left - QueueLogRecord.framingBytes else {
                return stop("torn record: length \(length) but only \(left - QueueLogRecord.framingBytes) byte(s) follow")
            }
            let end = pos + QueueLogRecord.framingBytes + length
            guard QueueLogCRC.checksum(bytes[(pos + 4)..<end]) == crc else {
                return stop("CRC-32C mismatch in a record of \(length) byte(s)")
            }
            let body = bytes[(pos + QueueLogRecord.framingBytes)..<end]
            switch parse(body) {
            case .success(let record):
                var isHeader = false
                if case .header = record { isHeader = true }
                if out.records.isEmpty != isHeader {
                    return stop(isHeader ? "a second header record" : "the segment does not start with a header record")
                }
                out.records.append(record)
            case .failure(let why):
                return stop(why.reason)
            }
            pos = end
            out.validBytes = pos
        }
        return out
    }

    struct BadBody: Error { var reason: String }

    static func parse(_ body: ArraySlice<UInt8>) -> Result<QueueLogRecord, BadBody> {
        let start = body.startIndex
        let n = body.count
        switch body[start] {
        case QueueLogRecord.typeHeader:
            guard n == 1 + 3 + 1 + 16 else { return .failure(BadBody(reason: "header record of \(n) bytes (want 21)")) }
            guard Array(body[(start + 1)..<(start + 4)]) == QueueLogRecord.magic else {
                return .failure(BadBody(reason: "header record without the DQL magic"))
            }
            let v = body[start + 4]
            guard v == QueueLogRecord.version else {
                return .failure(BadBody(reason: "unsupported queue log version \(v) (this build reads \(QueueLogRecord.version))"))
            }
            return .success(.header(segment: le64(body, start + 5), supersedes: le64(body, start + 13)))
        case QueueLogRecord.typeQueued:
            guard n >= 9 else { return .failure(BadBody(reason: "queued record of \(n) bytes (want at least 9)")) }
            let seq = le64(body, start + 1)
            do {
                let envelope = try Dagent_Envelope(serializedBytes: Array(body[(start + 9)...]))
                return .success(.queued(seq: seq, envelope: envelope))
            } catch {
                return .failure(BadBody(reason: "queued record \(seq): the envelope does not decode (\(error))"))
            }
        case QueueLogRecord.typeLeft:
            guard n >= 5 else { return .failure(BadBody(reason: "left record of \(n) bytes (want at least 5)")) }
            let count = Int(le32(body, start + 1))
            guard n == 5 + 8 * count else {
                return .failure(BadBody(reason: "left record of \(n) bytes for \(count) seq(s) (want \(5 + 8 * count))"))
            }
            return .success(.left(seqs: (0..<count).map { le64(body, start + 5 + 8 * $0) }))
        case let t:
            return .failure(BadBody(reason: "unknown record type \(t)"))
        }
    }

    static func le32<C: RandomAccessCollection>(_ b: C, _ at: C.Index) -> UInt32 where C.Element == UInt8, C.Index == Int {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[at + $1]) << (8 * UInt32($1)) }
    }

    static func le64<C: RandomAccessCollection>(_ b: C, _ at: C.Index) -> UInt64 where C.Element == UInt8, C.Index == Int {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) }
    }
}

/// CRC-32C (Castagnoli) for queue log records; check value `0xE3069283` for "123456789".
public enum QueueLogCRC {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    public static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { t in
            for b in bytes { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        }
        return ~c
    }
}
