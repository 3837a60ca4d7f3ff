import Foundation
import DAgentRaft

/// Tuning and fault injection for a `WAL`.
public struct WALOptions {
    /// A new segment is started before a write once the current one reached this size.
    public var segmentSize: Int = 64 << 20
    /// Largest accepted record body (a length field above this marks a damaged record).
    public var maxRecordSize: Int = 256 << 20
    /// Use `fdatasync` (default) instead of `fsync` for appends.
    public var dataSyncOnly = true
    /// Fault injection (tests): called at every `PersistStep`; throwing simulates a crash.
    public var crashHook: ((PersistStep) throws -> Void)?
    /// Zero-fill the current segment this many bytes ahead of its end (0 = off), so that a
    /// group commit's `fdatasync` overwrites allocated blocks and does not wait for a
    /// filesystem journal commit (`AppendFile`). With it on, a zero-filled tail of the last
    /// segment is the end of the log, not a torn write; a segment that is left for a new
    /// one is cut to its records first.
    public var preallocateBytes = 0

    public init(segmentSize: Int = 64 << 20) { self.segmentSize = segmentSize }
}

/// Counters of a `WAL` since it was opened.
public struct WALStats: Sendable, Equatable {
    /// Group commits (each is one write and one sync).
    public var syncs = 0
    /// Records appended.
    public var records = 0
    /// Bytes appended (framing included).
    public var bytes = 0
    /// Segments created.
    public var segmentsCreated = 0
}

/// A write-ahead log of `WALRecord`s in numbered segment files `wal-<seq>.log` inside one
/// directory. Every segment starts with a header (`.metadata`, a `.base` snapshot marker
/// and the current `.hardState`), so a suffix of the segments is self-contained once the
/// prefix is covered by a snapshot.
///
/// Appends are group commits: `append(_:)` writes all given records with one `write` and
/// makes them durable with one `fdatasync`; `append(_:sync: false)` only buffers, and the
/// next `sync()` (or synced append) commits everything buffered so far in one go.
/// Not thread-safe: one writer (the Raft loop) at a time.
///
/// `open` verifies every record: a damaged or incomplete tail of the last segment (a
/// crash in the middle of a write) is truncated and reported; damage anywhere else is a
/// `DurableStorageError.corruptRecord` naming file and offset.
public final class WAL {
    package struct Segment {
        let seq: UInt64
        let path: String
        /// Snapshot index in effect when the segment was created (its header's base marker).
        var baseIndex: UInt64
        /// Highest entry index (or installed snapshot index) written into the segment.
        var maxIndex: UInt64
    }

    /// The directory holding the segments.
    public let directory: String
    package let options: WALOptions
    package var segments: [Segment] = []
    package var file: AppendFile?
    package var currentHasPayload = false
    private var pending: [WALRecord] = []
    /// Latest hard state and newest snapshot marker written (re-emitted in new headers).
    private var hardState = HardState()
    private var snapshotMark: (index: UInt64, term: UInt64) = (0, 0)
    private var poisonedBy: String?
    /// Counters since open.
    public private(set) var stats = WALStats()
    /// Segments before a gap in the numbering, ignored by `open`.
    package var staleSegments: [String] = []

    package init(directory: String, options: WALOptions) {
        self.directory = directory
        self.options = options
    }

    deinit { file?.close() }

    package static func segmentName(_ seq: UInt64) -> String { "wal-" + paddedHex(seq, width: 16) + ".log" }

    package static func parseSegmentName(_ name: String) -> UInt64? {
        guard name.hasPrefix("wal-"), name.hasSuffix(".log"), name.count == 24 else { return nil }
        return UInt64(name.dropFirst(4).dropLast(4), radix: 16)
    }

    /// Paths of the segment files, oldest first.
    public var segmentPaths: [String] { segments.map(\.path) }

    /// Whether records were appended with `sync: false` and are not yet durable.
    public var hasUnsynced: Bool { !pending.isEmpty }

    // MARK: State tracking

    package func trackState(_ r: WALRecord) {
        switch r {
        case let .hardState(hs): hardState = hs
        case let .snapshot(_, idx, term) where idx >= snapshotMark.index: snapshotMark = (idx, term)
        default: break
        }
    }

    package func track(_ r: WALRecord) {
        trackState(r)
        guard !segments.isEmpty else { return }
        switch r {
        case let .entry(e): segments[segments.count - 1].maxIndex = max(segments[segments.count - 1].maxIndex, e.index)
        case let .snapshot(.installed, idx, _): segments[segments.count - 1].maxIndex = max(segments[segments.count - 1].maxIndex, idx)
        default: break
        }
    }

    package func headerRecords(seq: UInt64) -> [WALRecord] {
        [.metadata(formatVersion: WALRecord.formatVersion, segment: seq),
         .snapshot(kind: .base, index: snapshotMark.index, term: snapshotMark.term),
         .hardState(hardState)]
    }

    // MARK: Writing

    private func hook(_ step: PersistStep) throws { try options.crashHook?(step) }

    private func checkUsable() throws {
        if let why = poisonedBy { throw DurableStorageError.poisoned(why) }
    }

    /// Runs `body`; any error poisons the WAL (the disk state is unknown afterwards).
    private func guarded<T>(_ body: () throws -> T) throws -> T {
        try checkUsable()
        do { return try body() } catch {
            poisonedBy = "\(error)"
            throw error
        }
    }

    /// Creates segment `seq` atomically (header in a synced temp file, renamed into place).
    package func createSegment(seq: UInt64) throws {
        var bytes: [UInt8] = []
        for r in headerRecords(seq: seq) { WALFrame.append(r, to: &bytes) }
        let path = directory + "/" + Self.segmentName(seq)
        try FileIO.writeAtomically(path, bytes, beforeRename: { try self.hook(.beforeSegmentCreate) },
                                   afterRename: { try self.hook(.afterSegmentCreate) })
        file?.close()
        file = try AppendFile(path: path)
        segments.append(Segment(seq: seq, path: path, baseIndex: snapshotMark.index, maxIndex: 0))
        currentHasPayload = false
        stats.segmentsCreated += 1
    }

    /// Appends `records` (entries, hard states, snapshot markers). With `sync` (the
    /// default) this is a group commit: everything buffered so far plus `records` is
    /// written with one write and made durable with one sync before returning. Without
    /// `sync` the records are only buffered; call `sync()` before acknowledging them.
    public func append(_ records: [WALRecord], sync: Bool = true) throws {
        try checkUsable()
        for r in records {
            if case .metadata = r { preconditionFailure("WAL: metadata records are written by the WAL itself") }
        }
        pending += records
        if sync { try self.sync() }
    }

    /// Writes and syncs everything buffered (no-op if nothing is).
    public func sync() throws {
        try guarded {
            guard !pending.isEmpty else { return }
            if currentHasPayload, let f = file, f.size >= options.segmentSize {
                try f.sync(dataOnly: options.dataSyncOnly)
                try f.trimPreallocation()
                try createSegment(seq: (segments.last?.seq ?? 0) + 1)
            }
            guard let f = file else { throw DurableStorageError.poisoned("WAL is closed") }
            var buf: [UInt8] = []
            for r in pending { WALFrame.append(r, to: &buf) }
            try hook(.beforeWALWrite)
            try f.append(buf, preallocate: options.preallocateBytes)
            for r in pending { track(r) }
            stats.records += pending.count
            stats.bytes += buf.count
            pending = []
            currentHasPayload = true
            try hook(.afterWALWrite)
            try hook(.beforeWALSync)
            try f.sync(dataOnly: options.dataSyncOnly)
            stats.syncs += 1
            try hook(.afterWALSync)
        }
    }

    /// Removes the oldest segments whose every record is covered by a snapshot at
    /// `index` (all their entries are `<= index` and the next segment's header base is
    /// `<= index`). The current segment is never removed. Returns the removed paths.
    @discardableResult
    public func removeSegments(coveredBy index: UInt64) throws -> [String] {
        try guarded {
            var cut = 0
            var maxSoFar: UInt64 = 0
            for k in 0..<max(segments.count - 1, 0) {
                maxSoFar = max(maxSoFar, segments[k].maxIndex)
                guard maxSoFar <= index, segments[k + 1].baseIndex <= index else { break }
                cut = k + 1
            }
            let victims = segments[..<cut].map(\.path)
            for p in victims { try FileIO.remove(p) }
            segments.removeFirst(cut)
            if !victims.isEmpty { try FileIO.syncDirectory(directory) }
            return victims
        }
    }

    /// Deletes the segments `open` ignored because they precede a gap in the numbering
    /// (left over by an interrupted `removeSegments`). Call once recovery succeeded
    /// without them; returns their paths.
    @discardableResult
    public func removeStaleSegments() throws -> [String] {
        try guarded {
            let victims = staleSegments
            for p in victims { try FileIO.remove(p) }
            if !victims.isEmpty { try FileIO.syncDirectory(directory) }
            staleSegments = []
            return victims
        }
    }

    /// Closes the current segment; the WAL cannot be used afterwards.
    public func close() {
        file?.close()
        file = nil
        if poisonedBy == nil { poisonedBy = "closed" }
    }
}
