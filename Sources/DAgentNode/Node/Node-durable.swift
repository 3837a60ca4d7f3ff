import DAgentWire
import Foundation
import Logging
import DAgentRouting
import DAgentLink
import DAgentMsgq

/// The node's side of the durable queue log (`durable: true`): what the core's
/// send queues journal goes to `DATA/queue/` (see `DurableQueueLog`).
final class DurableQueueState {
    let log: DurableQueueLog
    /// Messages that left their queue in this loop turn; logged once their bytes were flushed.
    var deferredLeft: [UInt64] = []
    var commitScheduled = false
    var failing = false

    init(log: DurableQueueLog) { self.log = log }
}

/// `durable: true`: queued messages are written ahead, so they survive a crash.
///
/// Ordering: a message that enters a queue is made durable (group commit: one
/// `fdatasync` per loop turn) before the node writes anything to a link — so no
/// receipt, reply or `dagent tree` answer leaves the node before the messages
/// queued ahead of it are on disk. A message that leaves its queue is logged as
/// gone only after its bytes were flushed to the link, so a crash in between
/// sends it again after the restart (at-least-once).
extension Node {
    var queueLogDir: String? { config.dataDir.map { "\($0)/queue" } }
    var legacyDumpPath: String? { config.dataDir.map { "\($0)/queue.dump" } }

    /// At start: replays the log (and a `queue.dump` of an older version), re-queues
    /// what it held, and starts a fresh segment. Throws if the log cannot be written,
    /// so a durable node never runs without its log.
    func openDurableQueue() throws {
        guard config.durable, let dir = queueLogDir else { return }
        let log = try DurableQueueLog(directory: dir, segmentBytes: config.durableSegmentBytes)
        for note in log.replayNotes { logger.warning("durable: \(note)") }
        let legacy = loadLegacyDump()
        let envelopes = log.replayed + legacy
        core.queues.journaling = true
        let restored = core.restoreQueued(envelopes, nowNs: nowNs)
        var entries: [(seq: UInt64, envelope: Dagent_Envelope)] = []
        let state = DurableQueueState(log: log)
        for change in core.queues.takeJournal() {
            switch change {
            case let .queued(seq, envelope): entries.append((seq, envelope))
            case let .left(seq): state.deferredLeft.append(seq)
            }
        }
        try log.begin(entries)
        if !legacy.isEmpty, let path = legacyDumpPath { try? FileManager.default.removeItem(atPath: path) }
        durableQueue = state
        if !envelopes.isEmpty {
            logger.notice("durable: replayed \(envelopes.count) queued message(s) from \(dir) (\(restored) re-queued or delivered)")
        }
    }

    /// Before links are flushed: the messages queued since the last commit go to disk.
    @inline(__always)
    func durableBeforeFlush() {
        guard let d = durableQueue, !core.queues.journal.isEmpty else { return }
        var queued = false
        for change in core.queues.takeJournal() {
            switch change {
            case let .queued(seq, envelope):
                do { try d.log.queued(seq: seq, envelope: envelope) } catch { logger.error("durable: cannot encode a queued message to '\(envelope.dst)': \(error)") }
                queued = true
            case let .left(seq):
                d.deferredLeft.append(seq)
            }
        }
        if queued { durableCommit(d) }
    }

    /// After links were flushed: what left its queue is logged as gone (committed lazily).
    @inline(__always)
    func durableAfterFlush() {
        guard let d = durableQueue, !d.deferredLeft.isEmpty else { return }
        d.log.left(d.deferredLeft)
        d.deferredLeft.removeAll(keepingCapacity: true)
        scheduleDurableCommit()
    }

    /// A commit at the end of this loop turn (after the core's queues changed).
    func scheduleDurableCommit() {
        guard let d = durableQueue, !d.commitScheduled else { return }
        d.commitScheduled = true
        eventLoop.execute {
            d.commitScheduled = false
            self.durableCommitNow()
        }
    }

    /// Commits everything the queues journaled, flushing links first if the
    /// journal holds messages that left for them.
    func durableCommitNow() {
        guard let d = durableQueue else { return }
        if !dirty.isEmpty {
            flushDirty()
        } else {
            durableBeforeFlush()
            durableAfterFlush()
        }
        if d.log.hasPending { durableCommit(d) }
    }

    func durableCommit(_ d: DurableQueueState) {
        do {
            try d.log.commit()
            if d.failing {
                d.failing = false
                logger.notice("durable: the queue log in \(d.log.directory) is written again")
            }
        } catch {
            if !d.failing { logger.error("durable: \(error); queued messages are not on disk until a commit succeeds (retried)") }
            d.failing = true
            scheduleDurableRetry()
        }
    }

    func scheduleDurableRetry() {
        eventLoop.scheduleTask(in: .milliseconds(200)) { self.durableCommitNow() }
    }

    /// At stop: commits what is pending and closes the log (queued messages stay in it).
    func closeDurableQueue() {
        guard let d = durableQueue else { return }
        durableCommitNow()
        let live = d.log.liveCount
        d.log.close()
        durableQueue = nil
        core.queues.journaling = false
        if live > 0 { logger.notice("durable: \(live) queued message(s) kept in \(d.log.directory) for the next start") }
    }

    /// A `queue.dump` written by an older version on a clean stop.
    func loadLegacyDump() -> [Dagent_Envelope] {
        guard let path = legacyDumpPath, FileManager.default.fileExists(atPath: path) else { return [] }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            return try Dagent_QueueDump(serializedBytes: data).envelopes
        } catch {
            let bad = path + ".corrupt"
            try? FileManager.default.moveItem(atPath: path, toPath: bad)
            logger.error("durable: \(path) is unreadable (\(error)); moved it to \(bad)")
            return []
        }
    }
}

/// The session of this node's name (128 bits, hex), kept in `DATA/session`
/// (mode 0600) so that a restarted node reclaims its name. A file in another
/// form (an older 64-bit session) is ignored: the node gets a new session.
enum SessionFile {
    static func load(dir: String) -> SessionSecret? {
        guard let text = try? String(contentsOfFile: "\(dir)/session", encoding: .utf8) else { return nil }
        return SessionSecret(hex: text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static func save(dir: String, session: SessionSecret, logger: Logger) {
        do {
            try AtomicFile.write(Data((session.hex + "\n").utf8), to: "\(dir)/session")
        } catch {
            logger.warning("could not save session to \(dir)/session: \(error)")
        }
    }
}

/// Write to a temporary file, fsync, rename over the target, fsync the directory.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir.isEmpty ? "." : dir, withIntermediateDirectories: true)
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw ConfigError("cannot create \(tmp): \(String(cString: strerror(errno)))") }
        var ok = true
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { ok = false; break }
                offset += n
            }
        }
        if fsync(fd) != 0 { ok = false }
        close(fd)
        guard ok else { throw ConfigError("cannot write \(tmp): \(String(cString: strerror(errno)))") }
        guard rename(tmp, path) == 0 else { throw ConfigError("cannot rename \(tmp) to \(path): \(String(cString: strerror(errno)))") }
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}
