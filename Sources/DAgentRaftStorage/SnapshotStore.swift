import DAgentRaft

/// A snapshot file failed verification (bad magic, version, length, checksum or content).
package struct SnapshotFileError: Error, CustomStringConvertible {
    package let description: String
    package init(_ d: String) { description = d }
}

/// One snapshot file on disk, identified by the index and term in its name.
public struct SnapshotFile: Sendable, Equatable {
    public let index: UInt64
    public let term: UInt64
    public let path: String
}

/// Snapshot files `snap-<index>-<term>.snap` in one directory, each written atomically
/// (temp file, fsync, rename, fsync of the directory) and verified when loaded.
///
/// File format: `"DSNP"`, version (u8), payload length (u64 LE), CRC-32C of the payload
/// (u32 LE), payload (the snapshot in the `WireCodec` encoding).
/// Not thread-safe; `DiskStorage` serializes access.
package final class SnapshotStore {
    package typealias FileInfo = SnapshotFile

    /// The directory holding the snapshot files.
    package let directory: String
    package let crashHook: ((PersistStep) throws -> Void)?
    package static let magic: [UInt8] = Array("DSNP".utf8)
    package static let version: UInt8 = 1
    package static let headerSize = 17

    /// Opens (creating if needed) the directory; leftover temp files are removed and
    /// reported in `events`.
    package init(directory: String, crashHook: ((PersistStep) throws -> Void)?, events: inout [RecoveryEvent]) throws {
        self.directory = directory
        self.crashHook = crashHook
        try FileIO.ensureDirectory(directory)
        for name in try FileIO.list(directory) where name.hasSuffix(".tmp") {
            try FileIO.remove(directory + "/" + name)
            events.append(.removedTempFile(directory + "/" + name))
        }
    }

    package static func fileName(index: UInt64, term: UInt64) -> String {
        "snap-" + paddedHex(index, width: 16) + "-" + paddedHex(term, width: 16) + ".snap"
    }

    /// Valid-looking snapshot file names, newest (highest index) first.
    package func list() throws -> [FileInfo] {
        try FileIO.list(directory).compactMap { name -> FileInfo? in
            guard name.hasPrefix("snap-"), name.hasSuffix(".snap"), name.count == 43 else { return nil }
            let parts = name.dropFirst(5).dropLast(5).split(separator: "-")
            guard parts.count == 2, let i = UInt64(parts[0], radix: 16), let t = UInt64(parts[1], radix: 16) else { return nil }
            return FileInfo(index: i, term: t, path: directory + "/" + name)
        }.sorted { $0.index > $1.index }
    }

    package static func encode(_ s: Snapshot) -> [UInt8] {
        var w = ByteWriter()
        s.encode(into: &w)
        let payload = w.bytes
        var out = magic
        out.append(version)
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: UInt64(payload.count) >> (8 * UInt64(i)))) }
        WALFrame.appendU32(CRC32C.checksum(payload), to: &out)
        out += payload
        return out
    }

    /// Writes `snapshot` atomically and durably. Crash points: `.beforeSnapshotRename`,
    /// `.afterSnapshotRename`.
    @discardableResult
    package func write(_ snapshot: Snapshot) throws -> FileInfo {
        let m = snapshot.metadata
        let path = directory + "/" + Self.fileName(index: m.index, term: m.term)
        try FileIO.writeAtomically(path, Self.encode(snapshot),
                                   beforeRename: { try self.crashHook?(.beforeSnapshotRename) },
                                   afterRename: { try self.crashHook?(.afterSnapshotRename) })
        return FileInfo(index: m.index, term: m.term, path: path)
    }

    /// Reads and verifies a snapshot file. Throws `SnapshotFileError` if it is damaged,
    /// `DurableStorageError.io` if it cannot be read.
    package func load(_ f: FileInfo) throws -> Snapshot {
        let b = try FileIO.readAll(f.path)
        guard b.count >= Self.headerSize else { throw SnapshotFileError("file too short (\(b.count) bytes)") }
        guard Array(b[0..<4]) == Self.magic else { throw SnapshotFileError("bad magic") }
        guard b[4] == Self.version else { throw SnapshotFileError("unsupported version \(b[4])") }
        var len: UInt64 = 0
        for i in 0..<8 { len |= UInt64(b[5 + i]) << (8 * UInt64(i)) }
        guard len == UInt64(b.count - Self.headerSize) else {
            throw SnapshotFileError("length field says \(len) payload bytes, file has \(b.count - Self.headerSize)")
        }
        let stored = WALFrame.readU32(b, 13)
        let crc = CRC32C.checksum(b[Self.headerSize...])
        guard crc == stored else {
            throw SnapshotFileError("checksum mismatch (stored \(WALFrame.hex(stored)), computed \(WALFrame.hex(crc)))")
        }
        var r = ByteReader(Array(b[Self.headerSize...]))
        let snap: Snapshot
        do {
            snap = try Snapshot(from: &r)
            try r.finish()
        } catch {
            throw SnapshotFileError("undecodable payload: \(error)")
        }
        guard snap.metadata.index == f.index, snap.metadata.term == f.term else {
            throw SnapshotFileError("content is snapshot \(snap.metadata.index)/\(snap.metadata.term), name says \(f.index)/\(f.term)")
        }
        return snap
    }

    /// Renames a damaged file to `*.broken` (kept for inspection, ignored from now on).
    package func markBroken(_ f: FileInfo) throws {
        try FileIO.rename(f.path, f.path + ".broken")
        try FileIO.syncDirectory(directory)
    }

    /// Removes one file (and syncs the directory).
    package func remove(_ f: FileInfo) throws {
        try FileIO.remove(f.path)
        try FileIO.syncDirectory(directory)
    }

    /// Removes all but the newest `keep` files; returns the files kept, newest first.
    @discardableResult
    package func prune(keep: Int) throws -> [FileInfo] {
        let all = try list()
        let victims = all.dropFirst(max(keep, 1))
        for f in victims { try FileIO.remove(f.path) }
        if !victims.isEmpty { try FileIO.syncDirectory(directory) }
        return Array(all.prefix(max(keep, 1)))
    }
}
