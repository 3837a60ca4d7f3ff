import DAgentRaft
import DAgentWire
import Foundation
import Logging
import NIOCore
import DAgentNode
import DAgentRouting
import DAgentRaftStorage
import DAgentState

/// One member of a root group: its Raft node id and the address its tree
/// and Raft traffic share.
public struct GroupMember: Equatable, Sendable {
    public var nodeID: UInt64
    public var endpoint: Endpoint
    public var preferredLeader: Bool
    public init(nodeID: UInt64, endpoint: Endpoint, preferredLeader: Bool = false) {
        self.nodeID = nodeID
        self.endpoint = endpoint
        self.preferredLeader = preferredLeader
    }
}

/// A root-group replica: a top-of-tree `Node` that also runs one Raft
/// stream and serves the replicated KV store as the service `@state`.
///
/// Everything but the storage writes runs on the node's event loop. Each `Ready` is
/// persisted on a storage thread (`storage.save`, fsync'd by disk storage) before its
/// messages are sent (a leader's appends go first) and its committed entries applied,
/// while the event loop keeps routing; proposals and Raft messages that arrive while a
/// save is running ride in the next `Ready`, so one fsync covers many writes.
public final class RootReplica: @unchecked Sendable {
    public let node: Node
    public let selfID: UInt64
    public let streamID: UInt64
    /// The founding members (from the cluster JSON); `addresses` is the live address book.
    public let members: [GroupMember]
    /// Where each member listens: the JSON's members, the addresses carried by snapshots,
    /// and every applied `member_add`.
    var addresses: [UInt64: Endpoint] = [:]
    let storage: any RaftStorage
    var raft: RaftNode!
    var machine = KVStateMachine()
    var hub = WatchHub(maxEventsPerDelivery: 1000)
    let logger: Logger

    /// Peer links by replica id.
    var peers: [UInt64: LinkID] = [:]
    var peerOf: [LinkID: UInt64] = [:]
    var dialing: Set<UInt64> = []
    var tickTask: RepeatedTask?
    var leaseTickTask: RepeatedTask?
    /// The deferred commit notices' timer, while one is armed (`RootReplica-commitNotices.swift`).
    var commitNoticeTask: Scheduled<Void>?
    /// An entry another replica proposed was applied here since the followers were last told
    /// the commit index: that replica answers its client only once it knows.
    var appliedForeignEntry = false
    /// Next proposal/read id: random start per process (see `nextRequestID`).
    var nextProposal = UInt64.random(in: 1..<(1 << 61))
    /// Marks the entries this process proposes: the node id's low 16 bits and a random
    /// 48-bit incarnation. An entry proposed before a restart never matches it.
    let proposerTag: UInt64
    /// Set when the replica stopped itself (a snapshot it cannot restore): every request
    /// is refused with this reason and `onFatal` has been called.
    var stoppedReason: String?
    /// Called (on the event loop) once, when the replica stops itself; `dagent run` exits.
    public var onFatal: ((String) -> Void)?
    /// Chunked InstallSnapshot transfers, by peer (see `RootReplica-snapshots.swift`).
    var outgoingSnapshots: [UInt64: OutgoingSnapshot] = [:]
    var incomingSnapshots: [UInt64: IncomingSnapshot] = [:]
    var nextTransferID = UInt64.random(in: 1..<(1 << 62))
    /// Backups being fetched by clients (see `RootReplica-backup.swift`).
    var backups: [UInt64: BackupImage] = [:]
    /// Membership changes and leadership transfers waiting for their outcome.
    var pendingMemberChanges: [(node: UInt64, add: Bool, request: Dagent_Envelope)] = []
    var pendingTransfers: [(target: UInt64, startedNs: UInt64, request: Dagent_Envelope)] = []
    /// A new member started with `--join`: it waits to be added instead of bootstrapping.
    public var joining = false
    /// Limits and knobs of snapshots and backups.
    public var options = ReplicaOptions()
    /// Writes proposed here, waiting for their entry to apply.
    var pendingWrites: [UInt64: Dagent_Envelope] = [:]
    /// Writes of this loop turn, proposed together at its end (`proposeQueuedWrites`).
    var queuedWrites: [(id: UInt64, data: [UInt8])] = []
    /// Reads waiting for their ReadIndex, then for apply to reach it.
    var pendingReads: [UInt64: (request: Dagent_Envelope, command: StateCommand?)] = [:]
    var readyReads: [(index: UInt64, id: UInt64)] = []
    /// Watches: hub id → (client name, client's watch id).
    var watchClients: [UInt64: (client: String, clientID: UInt64)] = [:]
    var appliedSinceSnapshot = 0
    var readyScheduled = false
    /// The thread that writes and fsyncs the Raft log (`RootReplica-storage.swift`);
    /// nil for storage that does not sync (`MemoryStorage` in tests), which is saved inline.
    let storageThread: RaftStorageThread?
    /// A storage write is under way on `storageThread`: no new `Ready` until it is done.
    var storageBusy = false
    /// The `Ready` being saved was a leader's that sent first: messages queued meanwhile
    /// go out before the save ends (`takeMessagesBeforePersist`).
    var savingSentFirst = false
    /// A compaction's snapshot file is being staged beside the WAL writes, or waits (in
    /// `stagedCompaction`) for the storage thread to be idle (`RootReplica-storage.swift`).
    var compacting = false
    var stagedCompaction: (index: UInt64, snapshot: Snapshot)?
    /// Storage totals (`RootReplica-figures.swift`), and a hook that sees every write's cost.
    var figures = RaftStorageFigures()
    var onPersisted: ((PersistCost) -> Void)?
    /// The Raft figures in the node's metrics registry (`installMetrics`), if installed.
    var metrics: RaftMetrics?
    /// Registrations waiting for their names to commit in the directory.
    var waitingConfirmations: [NameConfirmation] = []
    var directoryCleaned = false
    var cleanupProposed = false
    /// Term and vote as last made durable (a change of either must be synced).
    var syncedTermVote: (UInt64, UInt64) = (UInt64.max, UInt64.max)
    /// `snapshot_entries`: compact the log after this many applied entries.
    public var snapshotEvery = 10_000
    /// Milliseconds per Raft tick (election timeout = 10 ticks).
    public var tickMs: Int64 = 100
    /// How long the log must stay still before a leader tells the followers a commit index
    /// that no append carried (`RootReplica-commitNotices.swift`).
    public var commitNoticeDelayUs: Int64 = 2_000

    public init(node: Node, selfID: UInt64, streamID: UInt64, members: [GroupMember], storage: any RaftStorage) {
        self.node = node
        self.selfID = selfID
        self.streamID = streamID
        self.members = members
        self.storage = storage
        self.storageThread = (storage as? DiskStorage).map { RaftStorageThread(storage: $0, label: "dagent.raft.storage.\(streamID).\(selfID)") }
        self.proposerTag = (selfID & 0xFFFF) | (UInt64.random(in: 1..<(1 << 48)) << 16)
        for m in members { addresses[m.nodeID] = m.endpoint }
        var log = node.logger
        log[metadataKey: "raft"] = "\(streamID)/\(selfID)"
        self.logger = log
    }

    /// Installs the `@state` service and plugs this replica in as the node's
    /// `TopOfTreeAuthority` (directory, peer links). Call before
    /// `node.start()`, so that no peer hello can arrive before anyone listens.
    public func attach() {
        node.addService(StateTypes.serviceName) { [unowned self] envelope in self.handleRequest(envelope) }
        node.plugIn(authority: self)
    }

    /// Starts Raft on the node's event loop. Call after `attach()` and `node.start()`.
    public func start() -> EventLoopFuture<Void> {
        node.eventLoop.submit {
            var config = RaftConfig(id: self.selfID, electionTick: 10, heartbeatTick: 1)
            config.preVote = true
            config.checkQuorum = true
            config.deferCommitNotices = true   // RootReplica-commitNotices.swift
            config.randomSeed = UInt64.random(in: 1...UInt64.max)
            config.applied = 0
            self.raft = try RaftNode(config: config, storage: self.storage)
            let snapshot = try self.storage.snapshot()
            if !snapshot.data.isEmpty {
                do {
                    try self.restoreSnapshot(snapshot.data)
                } catch {
                    throw ReplicaError("cannot restore the snapshot at index \(snapshot.metadata.index) from the data directory: \(error); the replica does not start (restore the data directory from a backup, or remove it and re-add this member)")
                }
            }
            self.tickTask = self.node.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(self.tickMs), delay: .milliseconds(self.tickMs)) { _ in
                guard self.stoppedReason == nil else { return }
                self.raft.tick()
                self.updateRaftGauges()
                self.dialMissingPeers()
                self.expireStalledTransfers()
                self.checkTransfers()
                self.processReady()
            }
            self.leaseTickTask = self.node.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(250)) { _ in
                guard self.stoppedReason == nil else { return }
                self.expireBackups()
                self.proposeLeaseTick()
                self.proposeConfirmations()   // retries while there is no leader, or after a lost proposal
            }
            // A preferred leader campaigns at once so that the first election is quick.
            if self.members.first(where: { $0.nodeID == self.selfID })?.preferredLeader == true, self.raft.term == 0 {
                self.raft.campaign()
            }
            self.dialMissingPeers()
            self.processReady()
            self.logger.notice("raft stream \(self.streamID) started as node \(self.selfID) of \(self.members.map(\.nodeID))")
        }
    }

    public func stop() {
        tickTask?.cancel()
        leaseTickTask?.cancel()
        commitNoticeTask?.cancel()
        storageThread?.drain()
    }

    /// Stops this replica for good: it refuses every request, stops ticking and stepping
    /// Raft, and calls `onFatal` (so `dagent run` exits with the reason).
    func stopFatally(_ reason: String) {
        guard stoppedReason == nil else { return }
        stoppedReason = reason
        logger.critical("stopping this replica: \(reason)")
        stop()
        for link in peers.values { node.closeLink(link) }
        peers = [:]
        onFatal?(reason)
    }

    // MARK: peers

    /// Lower ids dial higher ones; a dropped link is re-dialed on the next tick.
    func dialMissingPeers() {
        guard stoppedReason == nil else { return }
        for (id, endpoint) in addresses.sorted(by: { $0.key < $1.key })
        where id > selfID && peers[id] == nil && !dialing.contains(id)
            && (raft == nil || raft.membership.voters.isEmpty || raft.membership.contains(id)) {
            dialing.insert(id)
            var hello = Dagent_PeerHello()
            hello.service = "raft"
            hello.streamID = streamID
            hello.nodeID = selfID
            hello.name = node.config.name
            node.dialPeer(endpoint, hello: hello, replica: id).whenComplete { result in
                self.dialing.remove(id)
                if case .success(let link) = result {
                    self.peers[id] = link
                    self.peerOf[link] = id
                    self.logger.info("peer link to replica \(id) up")
                }
            }
        }
    }

    // MARK: the Ready loop

    /// Runs `processReady` once at the end of this event-loop turn: every
    /// request and Raft message of a read burst (and whatever queued up
    /// during the previous fsync) lands in one Ready, so one fsync covers all.
    func scheduleReady() {
        guard !readyScheduled else { return }
        readyScheduled = true
        node.eventLoop.execute {
            self.readyScheduled = false
            self.processReady()
        }
    }

    func send(_ message: Message) {
        guard let link = peers[message.to] else {
            raft.reportUnreachable(message.to)
            if message.type == .snapshot { raft.reportSnapshot(message.to, success: false) }
            return
        }
        let bytes = message.serialize()
        if message.type == .snapshot && bytes.count > options.snapshotChunkBytes {
            startSnapshotTransfer(bytes, to: message.to, on: link)
            return
        }
        var frame = Dagent_ServiceFrame()
        frame.streamID = streamID
        frame.body = Data(bytes)
        node.sendService(frame, on: link)
        if message.type == .snapshot { raft.reportSnapshot(message.to, success: true) }
    }
}
