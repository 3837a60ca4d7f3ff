import Foundation
import DAgentRaft

/// Durable `RaftStorage`: a `WAL` of entries, hard states and snapshot markers plus
/// atomically written snapshot files, in one data directory (`wal/`, `snap/`). Reads are
/// served from an in-memory copy of the log (a `MemoryStorage`), so an application loop
/// works identically with `MemoryStorage` or `DiskStorage`.
///
/// ```
/// let storage = try DiskStorage(directory: dataDir + "/raft")   // restart = open again
/// log(storage.recoveryReport)
/// if storage.isEmpty && foundingMember { try storage.bootstrap(voters: meta.voters) }
/// let node = try RaftNode(config: cfg, storage: storage)
/// while node.hasReady() { let rd = node.ready(); try storage.save(rd); send; apply; node.advance(rd) }
/// ```
///
/// Durability: every write method returns only after one `fdatasync` of the WAL (a group
/// commit: `save(_:)` writes snapshot marker, entries and hard state of a `Ready` with one
/// sync). `groupCommit { ... }` defers the sync of all saves inside it to one sync at the
/// end (see there for the message rule). A snapshot (`applySnapshot`, `compact(with:)`)
/// is first written as a file, then becomes effective with its WAL marker.
///
/// Any failure after the first change (I/O error, failed sync, injected crash) poisons
/// the object: its in-memory state may be ahead of the disk, so further writes throw
/// `DurableStorageError.poisoned`; the process must reopen the directory.
/// Thread-safety: reads may come from any thread; writes are serialized by a lock.
public final class DiskStorage: RaftStorage, @unchecked Sendable {
    /// The data directory.
    public let directory: String
    /// What recovery found and repaired when the directory was opened.
    public let recoveryReport: RecoveryReport
    package let options: DiskStorageOptions
    private let cache: MemoryStorage
    private let wal: WAL
    private let snapshots: SnapshotStore
    private let lock = NSRecursiveLock()
    private var deferDepth = 0
    private var cleanupDue = false
    private var poisonedBy: String?
    /// A snapshot file written by `stageSnapshotFile` whose `compact(with:)` is still to come.
    private var staged: (index: UInt64, term: UInt64)?
    /// A snapshot file `stageSnapshotFile` is writing right now (outside the lock).
    private var staging: (index: UInt64, term: UInt64)?

    /// Opens (or creates) the storage in `directory` and recovers its state. Throws
    /// `DurableStorageError` if the data is damaged beyond a torn tail.
    public init(directory: String, options: DiskStorageOptions = DiskStorageOptions()) throws {
        let r = try Self.recover(directory: directory, options: options)
        self.directory = directory
        self.options = options
        self.wal = r.wal
        self.snapshots = r.snapshots
        self.cache = r.cache
        self.recoveryReport = r.report
    }

    /// Opens storage bootstrapped for a founding member of a cluster of `voters` if the
    /// directory is empty (see `RaftStorage.bootstrap(voters:)`), else just reopens it.
    public convenience init(directory: String, bootstrapVoters voters: [NodeID],
                            options: DiskStorageOptions = DiskStorageOptions()) throws {
        try self.init(directory: directory, options: options)
        if isEmpty { try bootstrap(voters: voters) }
    }

    /// True for a directory that never stored anything (no hard state, entries, snapshot).
    public var isEmpty: Bool {
        ((try? cache.lastIndex()) ?? 0) == 0 && ((try? cache.hardState())?.isEmpty ?? true)
            && ((try? cache.snapshot())?.isEmpty ?? true)
    }

    /// WAL counters since open (group commits, records, bytes, segments created).
    public var walStats: WALStats { lock.lock(); defer { lock.unlock() }; return wal.stats }
    /// Current WAL segment files, oldest first.
    public var segmentPaths: [String] { lock.lock(); defer { lock.unlock() }; return wal.segmentPaths }
    /// Snapshot files on disk, newest first.
    public func snapshotFiles() throws -> [SnapshotFile] {
        lock.lock(); defer { lock.unlock() }
        return try snapshots.list()
    }

    // MARK: Reads (served from memory)

    public func hardState() throws -> HardState { try cache.hardState() }
    public func entries(from lo: UInt64, to hi: UInt64, maxBytes: UInt64) throws -> [Entry] {
        try cache.entries(from: lo, to: hi, maxBytes: maxBytes)
    }
    public func term(at index: UInt64) throws -> UInt64 { try cache.term(at: index) }
    public func firstIndex() throws -> UInt64 { try cache.firstIndex() }
    public func lastIndex() throws -> UInt64 { try cache.lastIndex() }
    public func snapshot() throws -> Snapshot { try cache.snapshot() }
    /// All stored entries after the snapshot (diagnostics and tests).
    public func allEntries() -> [Entry] { cache.allEntries() }

    // MARK: Writes

    /// Runs one write operation. `body` must call `touched()` once it changed anything;
    /// errors before that (validation, e.g. `StorageError.snapshotOutOfDate`) leave the
    /// storage usable, errors after it poison it.
    private func mutate<T>(_ body: (_ touched: () -> Void) throws -> T) throws -> T {
        lock.lock(); defer { lock.unlock() }
        if let why = poisonedBy { throw DurableStorageError.poisoned(why) }
        var changed = false
        do {
            return try body { changed = true }
        } catch {
            if changed { poisonedBy = "\(error)" }
            throw error
        }
    }

    private func syncNow() -> Bool { deferDepth == 0 }

    /// Entry records for `entries` after updating the cache (skips compacted entries).
    private func stageEntries(_ entries: [Entry]) throws -> [WALRecord] {
        guard !entries.isEmpty else { return [] }
        let first = try cache.firstIndex()
        try cache.append(entries)
        return entries.filter { $0.index >= first }.map { .entry($0) }
    }

    /// Writes the snapshot file and updates the cache; returns its WAL marker.
    private func stageInstall(_ snap: Snapshot, touched: () -> Void) throws -> WALRecord {
        try cache.applySnapshot(snap)
        touched()
        try snapshots.write(snap)
        cleanupDue = true
        return .snapshot(kind: .installed, index: snap.metadata.index, term: snap.metadata.term)
    }

    /// Durably appends entries (conflict semantics as in `MemoryStorage`). One sync.
    public func append(_ entries: [Entry]) throws {
        try mutate { touched in
            let recs = try stageEntries(entries)
            touched()
            try finish(recs)
        }
    }

    /// Durably records the hard state. One sync.
    public func setHardState(_ state: HardState) throws {
        try mutate { touched in
            try cache.setHardState(state)
            touched()
            try finish([.hardState(state)])
        }
    }

    /// Durably replaces the log with a snapshot received from the leader.
    public func applySnapshot(_ snapshot: Snapshot) throws {
        try mutate { touched in try finish([try stageInstall(snapshot, touched: touched)]) }
    }

    /// Group commit of one `Ready`: snapshot file (if any), then one WAL write of the
    /// snapshot marker, the entries and the hard state, made durable with one sync.
    public func save(_ ready: Ready) throws {
        try mutate { touched in
            var recs: [WALRecord] = []
            if let s = ready.snapshot { recs.append(try stageInstall(s, touched: touched)) }
            recs += try stageEntries(ready.entries)
            touched()
            if let hs = ready.hardState {
                try cache.setHardState(hs)
                recs.append(.hardState(hs))
            }
            try finish(recs)
        }
    }

    /// Saves a `Ready`, syncing only if `sync` is true; otherwise its records wait in
    /// the buffer for the next sync. For a `Ready` that only moves the commit index
    /// (etcd's rule: a commit index lost in a crash is learned again from the leader).
    public func save(_ ready: Ready, sync: Bool) throws {
        if sync { return try save(ready) }
        lock.lock(); defer { lock.unlock() }
        deferDepth += 1
        defer { deferDepth -= 1 }
        try save(ready)
    }

    /// Saves several `Ready`s (in order) with a single sync.
    public func save(_ readys: [Ready]) throws {
        try groupCommit { for rd in readys { try save(rd) } }
    }

    /// Runs `body` with syncing deferred: every `save`/`append`/`setHardState` inside only
    /// buffers its records, and all of them are written and made durable with ONE sync
    /// when `body` returns (also when it throws). Nested calls join the outer group.
    /// Rule for callers: messages of every `Ready` saved inside may be sent only after
    /// `groupCommit` returned (it is fine to apply and `advance` inside). `compact(with:)`
    /// inside a group syncs immediately.
    @discardableResult
    public func groupCommit<T>(_ body: () throws -> T) throws -> T {
        lock.lock(); defer { lock.unlock() }
        deferDepth += 1
        let result: Result<T, Error> = Result { try body() }
        deferDepth -= 1
        if deferDepth == 0 {
            do { try sync() } catch {
                if case .success = result { throw error }
            }
        }
        return try result.get()
    }

    /// Makes everything buffered durable (no-op if nothing is).
    public func sync() throws {
        try mutate { touched in
            touched()
            try wal.sync()
            try cleanupIfDue()
        }
    }

    private func finish(_ recs: [WALRecord]) throws {
        guard !recs.isEmpty else { return }
        try wal.append(recs, sync: syncNow())
        if syncNow() { try cleanupIfDue() }
    }

    /// Records a locally taken snapshot: snapshot file first, then its WAL marker (synced);
    /// then old snapshot files (beyond `keepSnapshots`) and the WAL segments older than
    /// the oldest kept snapshot are removed.
    public func compact(with snapshot: Snapshot) throws {
        try mutate { touched in
            try cache.compact(with: snapshot)
            touched()
            let pre = staged
            staged = nil
            if let s = pre, s.index == snapshot.metadata.index, s.term == snapshot.metadata.term {
                // The file was written (and synced) ahead by `stageSnapshotFile`; the marker
                // rides with the next synced write, and cleanup waits for that sync.
                try wal.append([.snapshot(kind: .compacted, index: snapshot.metadata.index, term: snapshot.metadata.term)], sync: false)
                cleanupDue = true
                return
            }
            try snapshots.write(snapshot)
            try wal.append([.snapshot(kind: .compacted, index: snapshot.metadata.index, term: snapshot.metadata.term)])
            cleanupDue = true
            try cleanupIfDue()
        }
    }

    /// Writes `snapshot`'s file (temp file, fsync, rename, directory fsync) ahead of the
    /// `compact(with:)` that makes it effective, so that the slow part of a compaction can
    /// run on a storage thread. The following `compact(with:)` of the same snapshot then
    /// only updates memory and buffers its WAL marker (durable with the next sync). Until
    /// that marker is synced the file is newer than the newest marker, and recovery
    /// discards it: a crash in between loses nothing but the snapshot.
    ///
    /// The file is written without holding the storage's lock, so `save` on another thread
    /// (the WAL's group commits) goes on meanwhile: staging the file of a large state takes
    /// seconds. Old snapshot files and WAL segments are not pruned while a file is staged
    /// (the pruning waits for the next sync after it), so a staged file never counts as one
    /// of the `keepSnapshots` newest. One staging at a time.
    public func stageSnapshotFile(_ snapshot: Snapshot) throws {
        let name = (snapshot.metadata.index, snapshot.metadata.term)
        try mutate { _ in
            precondition(staging == nil, "DiskStorage: stageSnapshotFile while another file is staged")
            staging = name
        }
        do {
            try snapshots.write(snapshot)
        } catch {
            lock.lock(); defer { lock.unlock() }
            staging = nil
            if poisonedBy == nil { poisonedBy = "\(error)" }
            throw error
        }
        try mutate { touched in
            touched()
            staging = nil
            staged = name
        }
    }

    /// Removes the file of a `stageSnapshotFile` whose `compact(with:)` will not come (the
    /// compaction failed), so that pruning never counts it as the newest snapshot.
    public func discardStagedSnapshot() throws {
        try mutate { touched in
            guard let s = staged else { return }
            staged = nil
            touched()
            try snapshots.remove(SnapshotFile(index: s.index, term: s.term,
                                              path: snapshots.directory + "/" + SnapshotStore.fileName(index: s.index, term: s.term)))
        }
    }

    private func cleanupIfDue() throws {
        guard cleanupDue, !wal.hasUnsynced, staging == nil else { return }
        try options.crashHook?(.beforeCompactionCleanup)
        let kept = try snapshots.prune(keep: options.keepSnapshots)
        try wal.removeSegments(coveredBy: kept.last?.index ?? 0)
        cleanupDue = false
        try options.crashHook?(.afterCompactionCleanup)
    }

    /// Closes the files; the object cannot write afterwards (reads still work).
    public func close() {
        lock.lock(); defer { lock.unlock() }
        wal.close()
        if poisonedBy == nil { poisonedBy = "closed" }
    }
}
