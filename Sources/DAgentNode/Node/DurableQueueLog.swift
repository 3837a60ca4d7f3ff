import DAgentRouting
import DAgentWire
import Foundation

/// The write-ahead log of a `durable` node's send queues: segment files
/// `q-<segment>.log` in one directory, each a header and then `QueueLogRecord`s
/// (decoded by the pure `QueueLogDecoder`).
///
/// - `queued(seq, envelope)` is appended when a message enters a queue, and made
///   durable (`commit`, one `write` and one `fdatasync` for everything pending: a
///   group commit) before the node writes anything to its links, so nothing
///   observable happens before a queued message is on disk.
/// - `left(seqs)` is appended once the messages were handed to a link (or failed).
/// - When the live messages are a small part of the segment, or none are left, the
///   live records are rewritten into a new segment (temp file, fsync, rename) whose
///   header supersedes every older segment, and the older ones are deleted.
/// - `open` replays the segments; a torn or damaged tail is truncated (reported in
///   `replayNotes`), never a trap.
///
/// Not thread-safe: the node's event loop owns it.
public final class DurableQueueLog {
    /// A rewrite happens when the segment is larger than this and more than twice
    /// the live bytes (`durable_segment_bytes`).
    public let segmentBytes: Int
    public let directory: String
    /// Messages found live by `open`, in the order they were queued.
    public private(set) var replayed: [Dagent_Envelope] = []
    /// What `open` found worth a log line (truncated tails, ignored files).
    public private(set) var replayNotes: [String] = []
    /// Group commits (one sync each) and segments written since open.
    public private(set) var syncs = 0
    public private(set) var rewrites = 0

    private var segment: UInt64 = 0
    private var oldSegments: [String] = []
    private var fd: Int32 = -1
    private var fileBytes = 0
    private var headerBytes = 0
    private var pending: [UInt8] = []
    /// seq → its encoded `queued` record, for rewrites.
    private var live: [UInt64: [UInt8]] = [:]
    private var liveBytes = 0
    /// A write failed part-way: the segment's tail is unknown, so the next commit rewrites.
    private var needsRewrite = false

    /// Reads the log in `directory` (created if missing) and keeps what it found
    /// live in `replayed`; call `begin()` to start writing.
    public init(directory: String, segmentBytes: Int) throws {
        self.directory = directory
        self.segmentBytes = segmentBytes
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try replay()
    }

    deinit { if fd >= 0 { Foundation.close(fd) } }

    /// True when records wait for `commit()`.
    public var hasPending: Bool { !pending.isEmpty }
    /// Messages in the log that have not left yet.
    public var liveCount: Int { live.count }
    /// Size of the current segment file.
    public var currentSegmentBytes: Int { fileBytes }

    // MARK: replay

    static func segmentNumber(_ name: String) -> UInt64? {
        guard name.hasPrefix("q-"), name.hasSuffix(".log") else { return nil }
        return UInt64(name.dropFirst(2).dropLast(4))
    }

    private func path(_ seg: UInt64) -> String { "\(directory)/q-\(String(format: "%016llu", seg)).log" }

    private func replay() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        for name in names where name.hasSuffix(".tmp") {
            try? FileManager.default.removeItem(atPath: "\(directory)/\(name)")
            replayNotes.append("removed \(directory)/\(name), a segment rewrite that did not finish")
        }
        let segs = names.compactMap { n in Self.segmentNumber(n).map { ($0, "\(directory)/\(n)") } }.sorted { $0.0 < $1.0 }
        var decoded: [(UInt64, String, QueueLogDecoded)] = []
        var supersedes: UInt64 = 0
        for (seg, file) in segs {
            let bytes = try readAll(file)
            let d = QueueLogDecoder.decode(bytes)
            if case .header(_, let s)? = d.records.first { supersedes = max(supersedes, s) }
            decoded.append((seg, file, d))
            segment = max(segment, seg)
        }
        var queued: [UInt64: Dagent_Envelope] = [:]
        for (i, (seg, file, d)) in decoded.enumerated() {
            oldSegments.append(file)
            guard seg >= supersedes else { continue }   // its live records were rewritten into a later segment
            for record in d.records {
                switch record {
                case .header: break
                case let .queued(seq, envelope): queued[seq] = envelope
                case let .left(seqs): for s in seqs { queued[s] = nil }
                }
            }
            if let damage = d.damage {
                let dropped = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int).map { $0 - d.validBytes } ?? 0
                let last = i == decoded.count - 1
                replayNotes.append("\(last ? "truncated a torn or corrupt tail of" : "ignored the damaged rest of") \(file) \(damage) (\(dropped) byte(s) dropped, \(d.records.count) intact record(s) kept)")
                if last { _ = truncate(file, off_t(d.validBytes)) }
            }
        }
        replayed = queued.keys.sorted().map { queued[$0]! }
    }

    private func readAll(_ file: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigError("durable queue: cannot read \(file): \(String(cString: strerror(errno)))")
        }
        return [UInt8](data)
    }

    // MARK: writing

    /// Starts writing: the live messages (`entries`, those re-queued from
    /// `replayed`) go into a new segment that supersedes every older one, which
    /// are then deleted.
    public func begin(_ entries: [(seq: UInt64, envelope: Dagent_Envelope)]) throws {
        for e in entries { try queued(seq: e.seq, envelope: e.envelope) }
        pending.removeAll()
        try rewrite()
    }

    /// Appends a `queued` record (pending until `commit`).
    public func queued(seq: UInt64, envelope: Dagent_Envelope) throws {
        var rec: [UInt8] = []
        try QueueLogEncoder.append(.queued(seq: seq, envelope: envelope), to: &rec)
        pending += rec
        if let old = live.updateValue(rec, forKey: seq) { liveBytes -= old.count }
        liveBytes += rec.count
    }

    /// Appends a `left` record for those of `seqs` that are live (pending until `commit`).
    public func left(_ seqs: [UInt64]) {
        var gone: [UInt64] = []
        for s in seqs {
            if let rec = live.removeValue(forKey: s) {
                liveBytes -= rec.count
                gone.append(s)
            }
        }
        guard !gone.isEmpty else { return }
        try? QueueLogEncoder.append(.left(seqs: gone), to: &pending)   // encoding seqs cannot fail
    }

    /// Writes everything pending with one `write` and makes it durable with one
    /// `fdatasync`; then rewrites the segment if it is mostly dead records.
    /// On an I/O error the records stay pending (retried by the next commit).
    public func commit() throws {
        if needsRewrite {
            try rewrite()
            needsRewrite = false
            return
        }
        if !pending.isEmpty {
            do {
                try writeAll(fd, pending, path(segment))
                guard fdatasync(fd) == 0 else { throw ioError("fdatasync", path(segment)) }
            } catch {
                needsRewrite = true
                throw error
            }
            fileBytes += pending.count
            pending.removeAll(keepingCapacity: true)
            syncs += 1
        }
        let mostlyDead = fileBytes > segmentBytes && fileBytes > 2 * (headerBytes + liveBytes)
        if mostlyDead || (live.isEmpty && fileBytes > headerBytes) { try rewrite() }
    }

    /// Closes the file (everything committed stays).
    public func close() {
        if fd >= 0 { Foundation.close(fd) }
        fd = -1
    }

    /// A new segment holding only the live records, superseding all older ones.
    private func rewrite() throws {
        let seg = segment + 1
        var bytes: [UInt8] = []
        try QueueLogEncoder.append(.header(segment: seg, supersedes: seg), to: &bytes)
        let header = bytes.count
        for s in live.keys.sorted() { bytes += live[s]! }
        let final = path(seg), tmp = final + ".tmp"
        let tfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard tfd >= 0 else { throw ioError("open", tmp) }
        do {
            try writeAll(tfd, bytes, tmp)
            guard fsync(tfd) == 0 else { throw ioError("fsync", tmp) }
        } catch {
            Foundation.close(tfd)
            unlink(tmp)
            throw error
        }
        Foundation.close(tfd)
        guard rename(tmp, final) == 0 else { throw ioError("rename", tmp) }
        syncDirectory()
        let nfd = open(final, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard nfd >= 0 else { throw ioError("open", final) }
        if fd >= 0 { Foundation.close(fd) }
        fd = nfd
        if segment > 0 { oldSegments.append(path(segment)) }
        for old in Set(oldSegments) where old != final { unlink(old) }
        oldSegments = []
        syncDirectory()
        segment = seg
        fileBytes = bytes.count
        headerBytes = header
        pending.removeAll(keepingCapacity: true)
        rewrites += 1
        syncs += 1
    }

    private func syncDirectory() {
        let dfd = open(directory, O_RDONLY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); Foundation.close(dfd) }
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8], _ path: String) throws {
        guard fd >= 0 else { throw ConfigError("durable queue: \(path) is not open") }
        try bytes.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw ioError("write", path) }
                off += n
            }
        }
    }

    private func ioError(_ call: String, _ path: String) -> ConfigError {
        ConfigError("durable queue: \(call) \(path) failed: \(String(cString: strerror(errno)))")
    }
}
