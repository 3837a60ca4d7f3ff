import DAgentRaftStorage
import DAgentWire
import Dispatch
import Foundation
import DAgentNode
import DAgentRouting
import DAgentState

/// A backup a client is fetching: one consistent state-machine image (taken after a
/// ReadIndex), served in chunks so that no reply exceeds `max_message_bytes`.
struct BackupImage {
    var bytes: [UInt8]
    var lastUseNs: UInt64
    /// Still being encoded off the loop (never expired; no chunk can be asked for yet).
    var preparing = false
}

/// Backups in chunks: `{"op":"backup"}` takes the image and answers its id, size, chunk
/// size and CRC-32C; the client then asks for each chunk (`StateTypes.backupChunk`,
/// `{"backup":ID,"offset":N}`), one at a time or a few ahead (its own flow control), from
/// the same replica. The image is dropped after `backup_idle_seconds` without a fetch.
extension RootReplica {
    /// How many bytes one chunk reply carries: the option, kept below `max_message_bytes`.
    var backupChunkBytes: Int {
        max(1024, min(options.backupChunkBytes, node.config.maxMessageBytes - 1024))
    }

    func beginBackup(_ request: Dagent_Envelope) {
        expireBackups()
        guard backups.count < options.maxBackups else {
            reply(request, .failure("too many backups in progress on replica \(selfID) (max_backups=\(options.maxBackups)); retry later", code: "busy", retry: false))
            return
        }
        // The image is encoded and checksummed off the event loop, from a value copy of the
        // state at this (ReadIndex) point: for a state of 200 MiB that takes seconds, during
        // which the loop would hear no heartbeats and expire its links (the client's too).
        let state = machine, index = raft.appliedIndex, id = nextRequestID()
        backups[id] = BackupImage(bytes: [], lastUseNs: wallClockNs(), preparing: true)   // counts towards max_backups
        let loop = node.eventLoop
        DispatchQueue.global(qos: .utility).async {
            let bytes = state.snapshot()
            let checksum = Self.checksum(bytes)
            loop.execute {
                guard self.backups[id] != nil else { return }   // the replica stopped meanwhile
                self.backups[id] = BackupImage(bytes: bytes, lastUseNs: wallClockNs())
                var a = StateAnswer(ok: true)
                a.backup = StateBackupJSON(id: id, size: UInt64(bytes.count), chunkBytes: UInt64(self.backupChunkBytes),
                                           checksum: checksum, revision: state.revision, index: index)
                a.revision = state.revision
                self.reply(request, a)
            }
        }
    }

    func serveBackupChunk(_ request: Dagent_Envelope) {
        guard let body = try? StateCoding.decoder().decode(StateRequestBody.self, from: request.payload),
              let id = body.backup, let offset = body.offset else {
            reply(request, .failure("bad request: a backup chunk request needs \"backup\" (id) and \"offset\"", code: "bad_request"))
            return
        }
        guard var image = backups[id] else {
            reply(request, .failure("backup \(id) is not open on replica \(selfID) (expired after backup_idle_seconds=\(Int(options.backupIdleSeconds)), or another replica took it); start the backup again", code: "backup_not_found"))
            return
        }
        guard offset <= UInt64(image.bytes.count) else {
            reply(request, .failure("offset \(offset) is past the end of backup \(id) (\(image.bytes.count) bytes)", code: "bad_request"))
            return
        }
        let start = Int(offset)
        let end = min(image.bytes.count, start + backupChunkBytes)
        image.lastUseNs = wallClockNs()
        if start == image.bytes.count {
            backups[id] = nil   // the client asks past the end once it has everything: done
        } else {
            backups[id] = image
        }
        node.reply(to: request, payload: Data(image.bytes[start..<end]))
    }

    /// The checksum a backup is verified with: `crc32c:` and 8 hex digits.
    public static func checksum(_ bytes: [UInt8]) -> String {
        "crc32c:" + String(CRC32C.checksum(bytes), radix: 16).leftPad(8)
    }

    func expireBackups() {
        let now = wallClockNs()
        backups = backups.filter { $0.value.preparing || Double(now - $0.value.lastUseNs) / 1e9 <= options.backupIdleSeconds }
    }
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
