import Glibc
import DAgentRaft

/// Errors of the durable storage layer (`WAL`, `SnapshotStore`, `DiskStorage`).
public enum DurableStorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A system call failed (`operation` is the call, `path` the file, `errno` the code).
    case io(operation: String, path: String, errno: Int32)
    /// A record that is NOT the torn tail of the log is damaged: intact records follow
    /// it, or it lies in a segment that was complete. Hard error: acknowledged data after
    /// it would be lost by truncating, so the node must not start; an operator has to
    /// restore the data directory (or wipe it and re-join the cluster).
    case corruptRecord(file: String, offset: Int, reason: String)
    /// The files are individually intact but do not fit together (for example the log
    /// starts after the newest usable snapshot).
    case inconsistent(String)
    /// An earlier write or sync failed (or a crash was injected): the in-memory state may
    /// be ahead of the disk, so the object refuses further writes. Reopen from disk.
    case poisoned(String)

    public var description: String {
        switch self {
        case let .io(op, path, err):
            return "\(op) \(path): \(String(cString: strerror(err))) (errno \(err))"
        case let .corruptRecord(file, offset, reason):
            return "corrupt WAL record in \(file) at offset \(offset): \(reason)"
        case let .inconsistent(msg):
            return "inconsistent storage: \(msg)"
        case let .poisoned(msg):
            return "storage unusable after an earlier failure (reopen it): \(msg)"
        }
    }
}

/// A named point in a persistence operation, passed to `DiskStorageOptions.crashHook`.
/// The hook may throw to simulate a crash at exactly that point (fault injection for
/// tests); once it throws, the storage object is poisoned like after a real I/O error.
public enum PersistStep: String, Sendable, CaseIterable {
    /// Records are encoded; nothing of this batch is written yet.
    case beforeWALWrite
    /// The batch is written to the segment file (page cache) but not synced.
    case afterWALWrite
    /// Immediately before `fdatasync`/`fsync` of the segment.
    case beforeWALSync
    /// The batch is durable; the append is about to be acknowledged.
    case afterWALSync
    /// A new segment (header in a temp file, synced) is about to be renamed into place.
    case beforeSegmentCreate
    /// The new segment is renamed and the directory synced.
    case afterSegmentCreate
    /// A snapshot temp file is written and synced, not yet renamed.
    case beforeSnapshotRename
    /// The snapshot file is renamed into place and the directory synced.
    case afterSnapshotRename
    /// A snapshot marker is durable; old segments/snapshots are about to be removed.
    case beforeCompactionCleanup
    /// Old segments/snapshots were removed.
    case afterCompactionCleanup
}

/// Something that recovery noticed and repaired (or worked around) when opening a data
/// directory. Every event is also passed to `DiskStorageOptions.onRecoveryEvent`.
public enum RecoveryEvent: Sendable, Equatable, CustomStringConvertible {
    /// The last segment ended in an incomplete or damaged record (a write interrupted by
    /// a crash): the file was truncated to `offset`, dropping `droppedBytes` unsynced bytes.
    case truncatedTornTail(file: String, offset: Int, droppedBytes: Int, reason: String)
    /// A leftover temporary file of an interrupted atomic write was removed.
    case removedTempFile(String)
    /// Segments left over from an interrupted compaction (older than a gap in the
    /// sequence numbers) were removed after recovery succeeded without them.
    case removedStaleSegment(String)
    /// A snapshot file newer than the last durable snapshot marker in the WAL (written,
    /// but the crash came before it was acknowledged) was removed.
    case discardedUnacknowledgedSnapshot(String)
    /// A snapshot file failed verification; it was renamed to `*.broken` and recovery
    /// fell back to the previous snapshot.
    case corruptSnapshot(file: String, reason: String)

    public var description: String {
        switch self {
        case let .truncatedTornTail(file, offset, dropped, reason):
            return "WAL \(file): torn tail at offset \(offset) (\(reason)); truncated \(dropped) byte(s)"
        case let .removedTempFile(f): return "removed leftover temp file \(f)"
        case let .removedStaleSegment(f): return "removed stale segment \(f) left by an interrupted compaction"
        case let .discardedUnacknowledgedSnapshot(f): return "discarded unacknowledged snapshot \(f)"
        case let .corruptSnapshot(file, reason):
            return "snapshot \(file) is corrupt (\(reason)); renamed to .broken, falling back to the previous one"
        }
    }
}
