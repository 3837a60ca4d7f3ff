import DAgentRaft
import DAgentRaftStorage
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Raft: the peer message codec (DAgentRaft.WireCodec) and WAL replay (DAgentRaftStorage),
/// run against real files in a private directory under /dev/shm.
enum RaftTargets {
    static let sampleMessages: [Message] = {
        var append = Message(type: .append, from: 1, to: 2, term: 3)
        append.logTerm = 2; append.index = 10; append.commit = 9
        append.entries = [Entry(term: 3, index: 11, data: Array("put".utf8)),
                          Entry(term: 3, index: 12, type: .confChange, data: ConfChange(type: .addNode, nodeID: 4).serialize())]
        var resp = Message(type: .appendResponse, from: 2, to: 1, term: 3)
        resp.reject = true; resp.rejectHint = 7
        var snap = Message(type: .snapshot, from: 1, to: 3, term: 5)
        snap.snapshot = Snapshot(metadata: SnapshotMetadata(index: 20, term: 4, membership: Membership(voters: [1, 2, 3])), data: [1, 2, 3])
        var vote = Message(type: .preVote, from: 3, to: 1, term: 6)
        vote.context = Array("campaign".utf8)
        return [append, resp, snap, vote, Message(type: .heartbeat, from: 1, to: 2, term: 1)]
    }()

    static let message = FuzzTarget(
        name: "raft-message",
        summary: "Raft peer messages, entries and conf changes (byte 0 picks which): errors or a value that round-trips",
        seeds: {
            sampleMessages.enumerated().map { ("message-\($0.offset)", [0] + $0.element.serialize()) }
                + [("entry", [1] + Entry(term: 2, index: 5, data: [9]).serialize()),
                   ("confchange", [2] + ConfChange(type: .removeNode, nodeID: 3, context: [1]).serialize())]
        },
        run: { input in
            guard let kind = input.bytes.first else { return }
            let bytes = Array(input.bytes.dropFirst())
            switch kind % 3 {
            case 0:
                guard let m = try? Message(bytes: bytes) else { return }
                FuzzCheck.equal(try? Message(bytes: m.serialize()), m, "message round trip")
            case 1:
                guard let e = try? Entry(bytes: bytes) else { return }
                FuzzCheck.equal(try? Entry(bytes: e.serialize()), e, "entry round trip")
            default:
                guard let c = try? ConfChange(bytes: bytes) else { return }
                FuzzCheck.equal(try? ConfChange(bytes: c.serialize()), c, "conf change round trip")
            }
        })

    /// The segment a WAL starts with: metadata, base snapshot marker, hard state.
    static func header(seq: UInt64 = 1) -> [[UInt8]] {
        [[1, 1] + uvarint(seq), [4, 0, 0, 0], [3, 0, 0, 0]]
    }

    static func uvarint(_ v: UInt64) -> [UInt8] {
        var v = v, out: [UInt8] = []
        while v >= 0x80 { out.append(UInt8(truncatingIfNeeded: v) | 0x80); v >>= 7 }
        return out + [UInt8(v)]
    }

    /// One on-disk record: `crc32c | length | body` (CRC over length and body, little-endian).
    static func frame(_ body: [UInt8]) -> [UInt8] {
        let n = UInt32(body.count)
        let len = [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)]
        let crc = CRC32C.checksum(len + body)
        return [UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24)] + len + body
    }

    static func entryBody(term: UInt64, index: UInt64, data: [UInt8]) -> [UInt8] {
        [2] + uvarint(term) + uvarint(index) + [0] + uvarint(UInt64(data.count)) + data
    }

    static let wal = FuzzTarget(
        name: "wal",
        summary: "WAL replay (DiskStorage open of one segment): an error, or a consistent log that reopens identically",
        seeds: {
            let records: [[UInt8]] = [entryBody(term: 1, index: 1, data: [1]), entryBody(term: 1, index: 2, data: [2]),
                                      [3, 1, 1, 2], entryBody(term: 2, index: 2, data: [3]), [4, 1, 2, 2]]
            var structured: [UInt8] = [0x01]
            for r in records { structured += [UInt8(r.count)] + r }
            let raw = (header() + records).flatMap(frame)
            return [("records", structured), ("segment", [0x00] + raw), ("torn-tail", [0x00] + raw + Array(frame([3, 9, 9, 9]).prefix(6)))]
        },
        run: { input in
            guard let mode = input.bytes.first else { return }
            let segment: [UInt8]
            if mode & 1 == 0 {
                segment = Array(input.bytes.dropFirst())    // raw segment bytes
            } else {
                // Record bodies as [u8 len][body]..., framed with valid checksums, after a valid header
                // (bit 1 drops it); bit 2 cuts the last frame short (a torn write).
                var frames = (mode & 2 == 0 ? header() : []).map(frame) + input.pieces(from: 1).map(frame)
                if mode & 4 != 0, let last = frames.popLast() { frames.append(Array(last.prefix(last.count / 2))) }
                segment = frames.flatMap { $0 }
            }
            replay(segment)
        })

    static let scratch: String = {
        let dir = "/dev/shm/dagent-fuzz-wal-\(getpid())"
        atexit { try? FileManager.default.removeItem(atPath: "/dev/shm/dagent-fuzz-wal-\(getpid())") }
        return dir
    }()

    struct Recovered: Equatable {
        var hardState: HardState
        var first: UInt64
        var last: UInt64
        var entries: [Entry]
    }

    static func state(_ s: DiskStorage) -> Recovered {
        do {
            let first = try s.firstIndex(), last = try s.lastIndex(), hs = try s.hardState()
            FuzzCheck.require(first >= 1 && first <= last + 1, "first index \(first) vs last \(last)")
            FuzzCheck.require(hs.commit <= last, "commit \(hs.commit) beyond last index \(last)")
            let entries = last >= first ? try s.entries(from: first, to: last + 1, maxBytes: .max) : []
            for (i, e) in entries.enumerated() { FuzzCheck.equal(e.index, first + UInt64(i), "entry index") }
            FuzzCheck.equal(UInt64(entries.count), last + 1 - first, "entry count")
            for e in entries { FuzzCheck.equal(try s.term(at: e.index), e.term, "term at \(e.index)") }
            return Recovered(hardState: hs, first: first, last: last, entries: entries)
        } catch { FuzzCheck.fail("recovered storage cannot be read: \(error)") }
    }

    static func replay(_ segment: [UInt8]) {
        let fm = FileManager.default
        try? fm.removeItem(atPath: scratch)
        do {
            try fm.createDirectory(atPath: scratch + "/wal", withIntermediateDirectories: true)
            try Data(segment).write(to: URL(fileURLWithPath: scratch + "/wal/wal-0000000000000001.log"))
        } catch { FuzzCheck.fail("cannot write the segment to \(scratch): \(error)") }
        let options = DiskStorageOptions(segmentSize: 1 << 20)
        guard let storage = try? DiskStorage(directory: scratch, options: options) else { return }
        let first = state(storage)
        // Recovery repaired what it had to: opening again changes nothing.
        storage.close()
        let again: DiskStorage
        do { again = try DiskStorage(directory: scratch, options: options) } catch {
            FuzzCheck.fail("a recovered directory does not reopen: \(error)")
        }
        FuzzCheck.equal(state(again), first, "reopened state")
        // The repaired log takes new entries, and they survive a restart.
        guard first.last < .max else { again.close(); return }
        let term = max(first.hardState.term, first.entries.last?.term ?? 0)
        let next = Entry(term: term, index: first.last + 1, data: [0xAB])
        do { try again.append([next]) } catch { FuzzCheck.fail("append to a recovered log: \(error)") }
        again.close()
        guard let third = try? DiskStorage(directory: scratch, options: options) else { FuzzCheck.fail("reopen after append failed") }
        let after = state(third)
        FuzzCheck.equal(after.entries.last, next, "appended entry after restart")
        third.close()
    }
}
