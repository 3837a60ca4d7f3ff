import DAgentRaft
import DAgentWire
import Foundation
import DAgentNode
import DAgentRouting
import DAgentState

/// Limits and knobs of one replica's snapshots and backups (each a named option of
/// `dagent run --raft`, documented in docs/state.md).
public struct ReplicaOptions: Sendable {
    /// `snapshot_chunk_bytes`: an InstallSnapshot larger than this travels in chunks of this size.
    public var snapshotChunkBytes = 1 << 20
    /// `snapshot_window_chunks`: chunks in flight (sent, not yet acknowledged) per transfer.
    public var snapshotWindowChunks = 4
    /// `snapshot_stall_seconds`: a transfer without an acknowledgement for this long is abandoned
    /// (Raft retries it).
    public var snapshotStallSeconds: Double = 30
    /// `max_snapshot_bytes`: the largest snapshot a follower accepts from a leader.
    public var maxSnapshotBytes: UInt64 = 8 << 30
    /// `backup_chunk_bytes`: bytes per backup chunk (capped below the node's `max_message_bytes`).
    public var backupChunkBytes = 512 * 1024
    /// `max_backups`: backups held open for clients at once on one replica.
    public var maxBackups = 2
    /// `backup_idle_seconds`: a backup no client fetched from for this long is dropped.
    public var backupIdleSeconds: Double = 60
    public init() {}
}

/// One snapshot message on its way to a follower, in chunks, with a window of unacknowledged ones.
struct OutgoingSnapshot {
    var id: UInt64
    var link: LinkID
    var bytes: [UInt8]
    /// Bytes sent so far and bytes the follower has acknowledged.
    var sent = 0
    var acked = 0
    var lastProgressNs: UInt64
}

/// A snapshot message arriving in chunks from the leader.
struct IncomingSnapshot {
    var id: UInt64
    var total: Int
    var bytes: [UInt8]
}

/// A replica error that stops it (the reason names what and why).
public struct ReplicaError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Chunked InstallSnapshot with flow control, and the snapshot data format.
///
/// A snapshot message larger than `snapshot_chunk_bytes` is cut into chunks; at most
/// `snapshot_window_chunks` are unacknowledged at any time, so a slow follower holds back
/// the sender instead of its socket buffer growing without bound. The follower acknowledges
/// each chunk with the bytes received; when all arrived it steps the whole message into Raft.
/// Raft learns the outcome (`reportSnapshot`) when the last chunk is acknowledged, the link
/// drops, or the transfer stalls.
extension RootReplica {
    func startSnapshotTransfer(_ bytes: [UInt8], to peer: UInt64, on link: LinkID) {
        if outgoingSnapshots[peer] != nil { return }   // one at a time; Raft resends later
        let id = nextTransferID
        nextTransferID &+= 1
        outgoingSnapshots[peer] = OutgoingSnapshot(id: id, link: link, bytes: bytes, lastProgressNs: wallClockNs())
        logger.notice("sending a snapshot of \(bytes.count) bytes to replica \(peer) in chunks of \(options.snapshotChunkBytes)")
        pumpSnapshot(to: peer)
    }

    /// Sends chunks while the window has room.
    func pumpSnapshot(to peer: UInt64) {
        guard var t = outgoingSnapshots[peer] else { return }
        let chunk = options.snapshotChunkBytes
        while t.sent < t.bytes.count && t.sent - t.acked < chunk * max(1, options.snapshotWindowChunks) {
            let end = min(t.bytes.count, t.sent + chunk)
            var frame = Dagent_ServiceFrame()
            frame.streamID = streamID
            frame.chunkID = t.id
            frame.chunkOffset = UInt64(t.sent)
            frame.chunkTotal = UInt64(t.bytes.count)
            frame.body = Data(t.bytes[t.sent..<end])
            node.sendService(frame, on: t.link)
            t.sent = end
        }
        outgoingSnapshots[peer] = t
    }

    /// A chunk (on a follower) or an acknowledgement (on the leader).
    func snapshotChunk(_ frame: Dagent_ServiceFrame, from peer: UInt64) {
        if frame.chunkAck > 0 {
            guard var t = outgoingSnapshots[peer], t.id == frame.chunkID else { return }
            t.acked = max(t.acked, Int(min(frame.chunkAck, UInt64(t.bytes.count))))
            t.lastProgressNs = wallClockNs()
            outgoingSnapshots[peer] = t
            if t.acked >= t.bytes.count {
                outgoingSnapshots[peer] = nil
                logger.notice("snapshot of \(t.bytes.count) bytes delivered to replica \(peer)")
                raft.reportSnapshot(peer, success: true)
                scheduleReady()
            } else {
                pumpSnapshot(to: peer)
            }
            return
        }
        guard frame.chunkTotal <= options.maxSnapshotBytes else {
            logger.error("refusing a snapshot of \(frame.chunkTotal) bytes from replica \(peer): it exceeds max_snapshot_bytes=\(options.maxSnapshotBytes)")
            return
        }
        var t: IncomingSnapshot
        if frame.chunkOffset == 0 {
            t = IncomingSnapshot(id: frame.chunkID, total: Int(frame.chunkTotal), bytes: [])
            t.bytes.reserveCapacity(t.total)
        } else if let existing = incomingSnapshots[peer], existing.id == frame.chunkID, existing.bytes.count == Int(frame.chunkOffset) {
            t = existing
        } else {
            // A gap or a chunk of an abandoned transfer: drop it; the leader retries from zero.
            incomingSnapshots[peer] = nil
            return
        }
        guard t.bytes.count + frame.body.count <= t.total else {
            logger.warning("dropping snapshot transfer \(t.id) from replica \(peer): chunks exceed the announced \(t.total) bytes")
            incomingSnapshots[peer] = nil
            return
        }
        t.bytes.append(contentsOf: frame.body)
        var ack = Dagent_ServiceFrame()
        ack.streamID = streamID
        ack.chunkID = t.id
        ack.chunkAck = UInt64(t.bytes.count)
        if let link = peers[peer] { node.sendService(ack, on: link) }
        if t.bytes.count == t.total {
            incomingSnapshots[peer] = nil
            logger.notice("received a snapshot of \(t.total) bytes from replica \(peer)")
            stepPeerMessage(t.bytes, from: peer)
        } else {
            incomingSnapshots[peer] = t
        }
    }

    /// Steps one Raft message from `peer`; a message claiming another sender is dropped.
    func stepPeerMessage(_ bytes: [UInt8], from peer: UInt64) {
        do {
            let message = try Message(bytes: bytes)
            guard message.from == peer else {
                logger.warning("dropping a raft message from replica \(peer) that claims to come from \(message.from)")
                return
            }
            raft.step(message)
            scheduleReady()
        } catch {
            logger.warning("dropping malformed raft message from replica \(peer): \(error)")
        }
    }

    /// A peer link dropped: its transfers end (Raft retries a snapshot later).
    func peerLinkLost(_ peer: UInt64) {
        incomingSnapshots[peer] = nil
        if outgoingSnapshots.removeValue(forKey: peer) != nil {
            raft.reportSnapshot(peer, success: false)
        }
    }

    /// Abandons transfers that made no progress for `snapshot_stall_seconds` (from the tick).
    func expireStalledTransfers() {
        let now = wallClockNs()
        for (peer, t) in outgoingSnapshots where Double(now - t.lastProgressNs) / 1e9 > options.snapshotStallSeconds {
            logger.warning("snapshot transfer to replica \(peer) stalled at \(t.acked) of \(t.bytes.count) bytes; Raft will retry")
            outgoingSnapshots[peer] = nil
            raft.reportSnapshot(peer, success: false)
        }
    }

    // MARK: the snapshot data: address book + state machine

    static let snapshotMagic: [UInt8] = Array("DAGSNAP1".utf8)

    /// The data of a Raft snapshot: the members' addresses, then the state machine.
    func snapshotData() -> [UInt8] { Self.snapshotData(addresses: addresses, machine: machine) }

    /// The same from copies of the address book and the state machine (value types: a copy
    /// costs nothing until the loop changes the original), so it can run on the storage thread.
    static func snapshotData(addresses: [UInt64: Endpoint], machine: KVStateMachine) -> [UInt8] {
        let book = addresses.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\n")
        let bookBytes = Array(book.utf8)
        var out = Self.snapshotMagic
        out += Self.le(UInt64(bookBytes.count))
        out += bookBytes
        out += machine.snapshot()
        return out
    }

    /// Restores a snapshot's data (the wrapped format above, or a bare state-machine image
    /// as `dagent state backup` writes it).
    func restoreSnapshot(_ data: [UInt8]) throws {
        guard data.count >= 16, Array(data[0..<8]) == Self.snapshotMagic else {
            try machine.restore(data)
            return
        }
        let n = Int(Self.readLE(data[8..<16]))
        guard n <= data.count - 16 else { throw ReplicaError("snapshot address book of \(n) bytes overruns the snapshot (\(data.count) bytes)") }
        let book = String(decoding: data[16..<(16 + n)], as: UTF8.self)
        try machine.restore(Array(data[(16 + n)...]))
        for line in book.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let id = UInt64(parts[0]), let endpoint = try? Endpoint.parse(String(parts[1])) else { continue }
            addresses[id] = endpoint
        }
    }
}
