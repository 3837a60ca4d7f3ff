import DAgentWire
import Foundation
import Logging
import DAgentRouting
import DAgentLink
import DAgentMsgq

/// `durable: true`: queued messages survive a restart.
extension Node {
    var dumpPath: String? { config.dataDir.map { "\($0)/queue.dump" } }

    func saveDurableQueue() {
        guard config.durable, let path = dumpPath else { return }
        let queued = core.queues.snapshot()
        guard !queued.isEmpty else {
            try? FileManager.default.removeItem(atPath: path)
            return
        }
        var dump = Dagent_QueueDump()
        dump.envelopes = queued
        do {
            let bytes: [UInt8] = try dump.serializedBytes()
            try AtomicFile.write(Data(bytes), to: path)
            logger.notice("durable: dumped \(queued.count) queued message(s) to \(path)")
        } catch {
            logger.error("durable: could not dump \(queued.count) queued message(s) to \(path): \(error)")
        }
    }

    func loadDurableQueue() {
        guard config.durable, let path = dumpPath, FileManager.default.fileExists(atPath: path) else { return }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let dump = try Dagent_QueueDump(serializedBytes: data)
            let restored = core.restoreQueued(dump.envelopes, nowNs: nowNs)
            try FileManager.default.removeItem(atPath: path)
            logger.notice("durable: reloaded \(restored) of \(dump.envelopes.count) queued message(s) from \(path)")
        } catch {
            let bad = path + ".corrupt"
            try? FileManager.default.moveItem(atPath: path, toPath: bad)
            logger.error("durable: \(path) is unreadable (\(error)); moved it to \(bad) and started with empty queues")
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
