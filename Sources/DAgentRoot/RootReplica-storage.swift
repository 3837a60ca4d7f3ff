import DAgentRaft
import DAgentRaftStorage
import Dispatch
import Foundation
import NIOCore

/// What one storage write cost, measured on the storage thread.
struct PersistCost: Sendable {
    /// Wall time of the write (and its fsync, when it synced).
    var nanoseconds: UInt64
    /// Whether the write ended with an fsync.
    var synced: Bool
    /// WAL bytes appended by this write (framing included).
    var walBytes: Int
}

/// The thread that writes and fsyncs one replica's Raft log, so that the node's event
/// loop (which also routes the tree) never waits behind an fsync.
///
/// Jobs run one at a time, in submission order; each job's completion is handed back
/// to the event loop. The replica submits at most one save at a time (`storageBusy`), so
/// the WAL is never written from two places at once.
///
/// Snapshot files of compactions are written on a second thread (`runBeside`, one at a
/// time: `compacting`), which `DiskStorage.stageSnapshotFile` allows beside a save, so that
/// the seconds it takes to encode and write a large state never hold up the group commits.
final class RaftStorageThread: @unchecked Sendable {
    let storage: DiskStorage
    private let queue: DispatchQueue
    private let snapshotQueue: DispatchQueue

    init(storage: DiskStorage, label: String) {
        self.storage = storage
        self.queue = DispatchQueue(label: label, qos: .userInitiated)
        self.snapshotQueue = DispatchQueue(label: label + ".snapshot", qos: .utility)
    }

    /// Runs `job` on the storage thread, then `done` with its result and cost on `loop`.
    func run<T: Sendable>(on loop: any EventLoop, synced: Bool, _ job: @escaping @Sendable (DiskStorage) throws -> T,
                          done: @escaping @Sendable (Result<T, Error>, PersistCost) -> Void) {
        run(on: queue, loop: loop, synced: synced, countsWAL: true, job, done: done)
    }

    /// Runs `job` on the snapshot thread, beside the storage thread's writes (only for work
    /// that `DiskStorage` allows concurrently: `stageSnapshotFile`).
    func runBeside<T: Sendable>(on loop: any EventLoop, _ job: @escaping @Sendable (DiskStorage) throws -> T,
                                done: @escaping @Sendable (Result<T, Error>, PersistCost) -> Void) {
        // WAL bytes written meanwhile belong to the storage thread's saves, not to this job.
        run(on: snapshotQueue, loop: loop, synced: true, countsWAL: false, job, done: done)
    }

    private func run<T: Sendable>(on queue: DispatchQueue, loop: any EventLoop, synced: Bool, countsWAL: Bool,
                                  _ job: @escaping @Sendable (DiskStorage) throws -> T,
                                  done: @escaping @Sendable (Result<T, Error>, PersistCost) -> Void) {
        queue.async {
            let bytesBefore = countsWAL ? self.storage.walStats.bytes : 0
            let start = DispatchTime.now().uptimeNanoseconds
            let result = Result { try job(self.storage) }
            let cost = PersistCost(nanoseconds: DispatchTime.now().uptimeNanoseconds &- start, synced: synced,
                                   walBytes: countsWAL ? self.storage.walStats.bytes - bytesBefore : 0)
            loop.execute { done(result, cost) }
        }
    }

    /// Waits until every submitted job has run (its completion may still be queued on the loop).
    func drain() {
        snapshotQueue.sync {}
        queue.sync {}
    }
}

/// The Ready loop. A `Ready` whose writes need an fsync is saved on the storage thread;
/// the event loop goes on routing, stepping Raft messages, taking proposals and ticking
/// meanwhile (all of which land in the next `Ready`, the group commit), and finishes the
/// `Ready` when the save is durable: a follower's acknowledgements and every vote are sent
/// only then, and entries committed in this `Ready` are applied only then.
///
/// The leader's writes are pipelined (Raft thesis §10.2.1, `RaftNode-pipeline.swift`): it
/// sends its appends before its own fsync, and while the fsync runs it sends the appends of
/// the proposals that arrive meanwhile at the end of each loop turn, so that the followers'
/// fsyncs of the next batch overlap its own (their commit index capped at what its disk
/// backs). Committed entries that are durable here already are applied, and their clients
/// answered, as soon as they are known: those of a new `Ready` when it is taken, those the
/// followers acknowledge during the fsync at the end of that loop turn, not after the next
/// fsync.
extension RootReplica {
    func processReady() {
        defer { tellDeferredCommit() }
        if stoppedReason == nil { proposeQueuedWrites() }
        if storageBusy {
            guard stoppedReason == nil else { return }
            if savingSentFirst {
                for message in raft.takeMessagesBeforePersist() { send(message) }
            }
            let committed = raft.takeCommittedBeforePersist()
            if !committed.isEmpty {
                applyCommitted(committed[...])
                serveReadyReads()
            }
            return
        }
        while stoppedReason == nil, !storageBusy, raft.hasReady() {
            let rd = raft.ready()
            let leaderSendsFirst = raft.role == .leader && rd.hardState.map({ $0.vote == selfID || $0.vote == 0 }) ?? true
            if leaderSendsFirst {
                for message in raft.messagesBeforePersist(of: rd) { send(message) }
            }
            if rd.mustSync {
                // Only entries, snapshots and term/vote changes need an fsync; a Ready that
                // merely advances the commit index is buffered (etcd's MustSync).
                let termVote = rd.hardState.map { ($0.term, $0.vote) }
                let needSync = !rd.entries.isEmpty || rd.snapshot != nil || (termVote != nil && termVote! != syncedTermVote)
                if needSync, let thread = storageThread {
                    storageBusy = true
                    savingSentFirst = leaderSendsFirst
                    let early = rd.committedBeforePersist
                    thread.run(on: node.eventLoop, synced: true, { disk in try disk.save(rd, sync: true) }) { result, cost in
                        self.storageBusy = false
                        self.savingSentFirst = false
                        if case .failure(let error) = result { self.storageFailed(error) }
                        if let termVote { self.syncedTermVote = termVote }
                        self.persisted(cost)
                        self.finishReady(rd, sentFirst: leaderSendsFirst, appliedBefore: early)
                        self.finishCompaction()
                        self.processReady()
                    }
                    // Durable here and committed: applied (clients answered) during the fsync.
                    applyCommitted(rd.committedEntries.prefix(early))
                    return
                }
                do {
                    if let disk = storage as? DiskStorage {
                        try disk.save(rd, sync: needSync)   // a buffered write: no fsync here
                    } else {
                        try storage.save(rd)
                    }
                    if needSync, let termVote { syncedTermVote = termVote }
                } catch {
                    storageFailed(error)
                }
            }
            if !finishReady(rd, sentFirst: leaderSendsFirst) { return }
        }
    }

    /// A replica that cannot persist must not acknowledge anything.
    func storageFailed(_ error: Error) -> Never {
        logger.critical("raft storage failed: \(error); stopping this replica")
        fatalError("raft storage failed: \(error)")
    }

    /// Sends (unless sent before the save), applies (but the first `appliedBefore` committed
    /// entries, applied during the save) and advances a `Ready` that is durable.
    /// False if the replica stopped.
    @discardableResult
    func finishReady(_ rd: Ready, sentFirst: Bool, appliedBefore: Int = 0) -> Bool {
        if !sentFirst {
            for message in rd.messages { send(message) }
        }
        if let snapshot = rd.snapshot, !snapshot.data.isEmpty {
            do { try restoreSnapshot(snapshot.data) } catch {
                // Applying entries on top of the stale state would diverge from the group.
                stopFatally("cannot restore the snapshot at index \(snapshot.metadata.index) received from the leader: \(error)")
                return false
            }
        }
        applyCommitted(rd.committedEntries.dropFirst(appliedBefore))
        for rs in rd.readStates where rs.context.count == 8 {
            readyReads.append((rs.index, rs.context.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }))
        }
        raft.advance(rd)
        serveReadyReads()
        maybeCompact()
        return true
    }

    /// Applies committed entries in log order (membership changes and commands).
    func applyCommitted(_ entries: ArraySlice<Entry>) {
        for entry in entries {
            if entry.type == .confChange { membershipApplied(entry) } else { apply(entry) }
        }
    }

    /// Compacts the log once `snapshotEvery` entries were applied. With disk storage the
    /// snapshot is encoded (from value copies of the state) and its file written and fsync'd
    /// on the snapshot thread, beside the WAL writes: the Ready loop, and with it every
    /// write and read, goes on meanwhile. The compaction itself (memory, and a WAL marker that
    /// rides with the next fsync) runs on the loop once the file is staged and no storage
    /// write is under way (`finishCompaction`).
    func maybeCompact() {
        guard appliedSinceSnapshot >= snapshotEvery, !compacting else { return }
        appliedSinceSnapshot = 0
        let index = raft.appliedIndex
        guard let thread = storageThread else {
            do {
                let snap = try raft.compact(upTo: index, snapshotData: snapshotData())
                logger.info("compacted the raft log up to index \(snap.metadata.index)")
            } catch {
                logger.warning("log compaction failed: \(error)")
            }
            return
        }
        guard index >= raft.firstIndex, let term = try? storage.term(at: index) else { return }
        let metadata = SnapshotMetadata(index: index, term: term, membership: raft.membership(at: index))
        // Serialized from copies (the state of 200 MiB takes seconds to encode on a loaded
        // machine; the loop keeps routing and committing meanwhile).
        let book = addresses, state = machine
        compacting = true
        thread.runBeside(on: node.eventLoop, { disk -> Snapshot in
            let snap = Snapshot(metadata: metadata, data: Self.snapshotData(addresses: book, machine: state))
            try disk.stageSnapshotFile(snap)
            return snap
        }) { result, cost in
            switch result {
            case .success(let snap): self.stagedCompaction = (index, snap)
            case .failure(let error): self.storageFailed(error)
            }
            self.persisted(cost)
            self.finishCompaction()
        }
    }

    /// Makes a staged snapshot the log's compaction point, once no `Ready` is being saved
    /// (the storage's in-memory log is not changed under a save in flight).
    func finishCompaction() {
        guard !storageBusy, let (index, snap) = stagedCompaction else { return }
        stagedCompaction = nil
        compacting = false
        do {
            _ = try raft.compact(upTo: index, snapshotData: snap.data)
            logger.info("compacted the raft log up to index \(index)")
        } catch {
            logger.warning("log compaction failed: \(error)")
            do { try storageThread?.storage.discardStagedSnapshot() } catch { storageFailed(error) }
        }
        processReady()
    }
}
