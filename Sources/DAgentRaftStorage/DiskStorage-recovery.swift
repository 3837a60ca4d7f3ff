import DAgentRaft

/// Opening a data directory: WAL replay plus the choice of the snapshot file.
extension DiskStorage {
    /// The recovered pieces, before the storage object is assembled.
    package struct Recovered {
        var wal: WAL
        var snapshots: SnapshotStore
        var cache: MemoryStorage
        var report: RecoveryReport
    }

    package static func recover(directory: String, options: DiskStorageOptions) throws -> Recovered {
        try FileIO.ensureDirectory(directory)
        var events: [RecoveryEvent] = []
        let snaps = try SnapshotStore(directory: directory + "/snap", crashHook: options.crashHook, events: &events)
        let walDir = directory + "/wal"
        let hasLog = try FileIO.exists(walDir) && FileIO.list(walDir).contains { WAL.parseSegmentName($0) != nil }
        if !hasLog, let stray = try snaps.list().first {
            // Never treat snapshot data as unacknowledged because the log is missing: that is damage.
            throw DurableStorageError.inconsistent("snapshot file \(stray.path) exists but there is no WAL segment in \(walDir)")
        }
        let (wal, records, walEvents) = try WAL.open(directory: walDir, options: options.walOptions)
        events += walEvents
        var replay = WALReplay()
        for r in records { try replay.apply(r) }

        let chosen = try chooseSnapshot(snaps, replay: replay, events: &events)
        let cache = MemoryStorage()
        let snapIndex = chosen?.metadata.index ?? 0
        if let s = chosen { try cache.applySnapshot(s) }
        let ents = replay.entries.filter { $0.index > snapIndex }
        if let first = ents.first, first.index != snapIndex + 1 {
            throw DurableStorageError.inconsistent("log resumes at \(first.index) after snapshot \(snapIndex)")
        }
        try cache.append(ents)
        try cache.setHardState(replay.hardState)
        let last = try cache.lastIndex()
        guard replay.hardState.commit <= last else {
            throw DurableStorageError.inconsistent(
                "hard state commit \(replay.hardState.commit) is beyond the last recovered entry \(last): WAL segments are missing")
        }
        for p in try wal.removeStaleSegments() { events.append(.removedStaleSegment(p)) }

        var report = RecoveryReport()
        report.events = events
        report.segments = wal.segments.count
        report.records = records.count
        report.hardState = replay.hardState
        report.snapshotIndex = snapIndex
        report.firstIndex = try cache.firstIndex()
        report.lastIndex = try cache.lastIndex()
        for e in events { options.onRecoveryEvent?(e) }
        return Recovered(wal: wal, snapshots: snaps, cache: cache, report: report)
    }

    /// The newest snapshot file that is acknowledged (not newer than the newest WAL
    /// marker), intact, and consistent with the log. Newer unacknowledged files are
    /// deleted; damaged ones are renamed to `.broken` and the next older one is tried.
    private static func chooseSnapshot(_ snaps: SnapshotStore, replay: WALReplay,
                                       events: inout [RecoveryEvent]) throws -> Snapshot? {
        let marker = replay.newestMarker
        var rejected: [String] = []
        for f in try snaps.list() {
            if f.index > marker.index {
                try snaps.remove(f)
                events.append(.discardedUnacknowledgedSnapshot(f.path))
                continue
            }
            if f.index < replay.base { break }
            do {
                let s = try snaps.load(f)
                if f.index == marker.index && f.term != marker.term {
                    throw SnapshotFileError("term \(f.term) differs from the WAL marker \(marker.index)/\(marker.term)")
                }
                if let t = replay.term(at: f.index), t != f.term {
                    throw SnapshotFileError("term \(f.term) differs from the logged entry \(f.index)/\(t)")
                }
                if f.index > replay.lastIndex {
                    throw SnapshotFileError("index \(f.index) is beyond the end of the log (\(replay.lastIndex))")
                }
                return s
            } catch let e as SnapshotFileError {
                try snaps.markBroken(f)
                events.append(.corruptSnapshot(file: f.path, reason: e.description))
                rejected.append("\(f.path): \(e)")
            }
        }
        guard replay.base == 0 else {
            let why = rejected.isEmpty ? "" : " (rejected: " + rejected.joined(separator: "; ") + ")"
            throw DurableStorageError.inconsistent(
                "the WAL only holds entries after index \(replay.base) but no usable snapshot at or above that index exists in \(snaps.directory)" + why)
        }
        return nil
    }
}
