// Snapshot and restore of the whole replicated state.
//
// Layout (primitives from StateBytes.swift): magic "DKVS", format version byte, then
//   revision, clockMs, nextLeaseID, compactRevision, directory epoch,
//   records (key order), leases (id order), directory entries (name byte order),
//   retained history events (revision order).
// Everything is written in a canonical order, so identical state gives identical bytes.
// Lease → key attachments are not written; they are rebuilt from the records' leases.

extension KVStateMachine {
    /// The snapshot format version written after the magic bytes.
    public static let snapshotVersion: UInt8 = 1
    private static let snapshotMagic: [UInt8] = Array("DKVS".utf8)
    /// Largest revision, version or epoch a snapshot may carry (2^62).
    private static let counterCeiling: Int64 = 1 << 62

    /// Serializes keys, leases, the directory, the revision, the replicated clock and the
    /// retained history — its newest whole revisions within `config.snapshotHistoryBytes` —
    /// with the compaction point below them, so a watch resumed after a restore from before
    /// that point gets `.compacted`. Deterministic: equal state gives equal bytes.
    public func snapshot() -> [UInt8] {
        var w = StateByteWriter(capacity: 1024)
        for b in Self.snapshotMagic { w.u8(b) }
        w.u8(Self.snapshotVersion)
        w.varint(store.revision)
        w.uvarint(clockMs)
        w.uvarint(leases.nextID)
        // The watch history carried is bounded by `snapshotHistoryBytes` (whole revisions).
        let window = history.snapshotWindow(maxBytes: config.snapshotHistoryBytes)
        w.varint(window.compactRevision)
        w.uvarint(directory.epoch)

        let records = store.allRecords
        w.uvarint(UInt64(records.count))
        for r in records {
            w.blob(r.key); w.blob(r.value)
            w.varint(r.createRevision); w.varint(r.modRevision); w.varint(r.version)
            w.optionalUVarint(r.lease)
        }

        let allLeases = leases.all
        w.uvarint(UInt64(allLeases.count))
        for l in allLeases { w.uvarint(l.id); w.uvarint(l.ttlMs); w.uvarint(l.expiresAtMs) }

        let entries = directory.all
        w.uvarint(UInt64(entries.count))
        for e in entries {
            w.string(e.name); w.uvarint(e.session); w.uvarint(e.replica); w.string(e.agent); w.uvarint(e.epoch)
        }

        w.uvarint(UInt64(window.events.count))
        for e in window.events {
            w.u8(e.kind.rawValue); w.blob(e.key); w.blob(e.value)
            w.varint(e.revision); w.varint(e.createRevision); w.varint(e.version)
            w.optionalUVarint(e.lease); w.optionalBlob(e.prevValue)
        }
        return w.bytes
    }

    /// Replaces the whole state with a snapshot, keeping this machine's `config`.
    ///
    /// Atomic: on error nothing changes. Throws `StateCodecError` for malformed bytes or an
    /// impossible state (unsorted keys, a key on an unknown lease, revisions out of range).
    /// If this replica retains less history than the snapshot carries, the oldest revisions
    /// are compacted away.
    public mutating func restore(_ bytes: [UInt8]) throws {
        self = try KVStateMachine(snapshot: bytes, config: config)
    }

    /// A state machine rebuilt from `snapshot()` bytes (see `restore(_:)`).
    public init(snapshot bytes: [UInt8], config: KVStateConfig = KVStateConfig()) throws {
        var r = StateByteReader(bytes)
        for b in Self.snapshotMagic {
            guard !r.isAtEnd, try r.u8("magic") == b else { throw StateCodecError.badMagic }
        }
        let version = try r.u8("snapshot version")
        guard version == Self.snapshotVersion else {
            throw StateCodecError.unsupportedVersion(found: version, supported: Self.snapshotVersion)
        }
        var m = KVStateMachine(config: config)
        let revision = try r.varint("revision")
        m.clockMs = try r.uvarint("clockMs")
        let nextLeaseID = try r.uvarint("nextLeaseID")
        let compactRevision = try r.varint("compactRevision")
        m.directory.epoch = try r.uvarint("directory epoch")
        // Counters stay far from overflow so later increments can never trap.
        guard revision >= 0, revision <= Self.counterCeiling, compactRevision >= 0, compactRevision <= revision,
              m.directory.epoch <= UInt64(Self.counterCeiling) else {
            throw StateCodecError.inconsistent("revision \(revision), compact revision \(compactRevision), directory epoch \(m.directory.epoch)")
        }
        m.store.revision = revision

        // Records. Each needs at least 7 bytes.
        let nRecords = try r.count("record count", minBytesEach: 7)
        var records: [KVRecord] = []
        records.reserveCapacity(nRecords)
        for _ in 0 ..< nRecords {
            let record = KVRecord(key: try r.blob("record.key"), value: try r.blob("record.value"),
                                  createRevision: try r.varint("record.createRevision"),
                                  modRevision: try r.varint("record.modRevision"),
                                  version: try r.varint("record.version"),
                                  lease: try r.optionalUVarint("record.lease"))
            if let last = records.last, !last.key.lexicographicallyPrecedes(record.key) {
                throw StateCodecError.inconsistent("record keys out of order at \(describeStateBytes(record.key))")
            }
            guard !record.key.isEmpty, record.version >= 1, record.version <= Self.counterCeiling,
                  record.createRevision >= 1,
                  record.createRevision <= record.modRevision, record.modRevision <= revision else {
                throw StateCodecError.inconsistent("record \(describeStateBytes(record.key)) has impossible revisions")
            }
            records.append(record)
        }

        // Leases.
        let nLeases = try r.count("lease count", minBytesEach: 3)
        var lastLeaseID: UInt64 = 0
        for _ in 0 ..< nLeases {
            let lease = KVLease(id: try r.uvarint("lease.id"), ttlMs: try r.uvarint("lease.ttlMs"),
                                expiresAtMs: try r.uvarint("lease.expiresAtMs"))
            guard lease.id > lastLeaseID else {
                throw StateCodecError.inconsistent("lease id \(lease.id) is 0 or out of order")
            }
            lastLeaseID = lease.id
            m.leases.insert(lease)
        }
        m.leases.nextID = max(nextLeaseID, m.leases.nextID)

        for record in records {
            if let lease = record.lease {
                guard m.leases.lease(lease) != nil else {
                    throw StateCodecError.inconsistent("key \(describeStateBytes(record.key)) is on unknown lease \(lease)")
                }
                m.leases.attach(record.key, to: lease)
            }
            m.store.load(record)
        }

        // Directory.
        let nEntries = try r.count("directory count", minBytesEach: 5)
        var lastName: [UInt8]?
        for _ in 0 ..< nEntries {
            let entry = DirectoryEntry(name: try r.string("entry.name"), session: try r.uvarint("entry.session"),
                                       replica: try r.uvarint("entry.replica"), agent: try r.string("entry.agent"),
                                       epoch: try r.uvarint("entry.epoch"))
            let nameBytes = Array(entry.name.utf8)
            if let lastName, !lastName.lexicographicallyPrecedes(nameBytes) {
                throw StateCodecError.inconsistent("directory names out of order at \"\(entry.name)\"")
            }
            lastName = nameBytes
            m.directory.set(entry)
        }

        // History.
        let nEvents = try r.count("event count", minBytesEach: 8)
        var events: [KVEvent] = []
        events.reserveCapacity(nEvents)
        for _ in 0 ..< nEvents {
            let at = r.offset
            let rawKind = try r.u8("event.kind")
            guard let kind = KVEventKind(rawValue: rawKind) else {
                throw StateCodecError.unknownTag(field: "event.kind", tag: rawKind, offset: at)
            }
            let event = KVEvent(kind: kind, key: try r.blob("event.key"), value: try r.blob("event.value"),
                                revision: try r.varint("event.revision"),
                                createRevision: try r.varint("event.createRevision"),
                                version: try r.varint("event.version"),
                                lease: try r.optionalUVarint("event.lease"),
                                prevValue: try r.optionalBlob("event.prevValue"))
            guard event.revision > compactRevision, event.revision <= revision,
                  event.revision >= (events.last?.revision ?? 0) else {
                throw StateCodecError.inconsistent("history event at revision \(event.revision) out of order or range")
            }
            events.append(event)
        }
        try r.finish()
        m.history.load(events: events, compactRevision: compactRevision)
        self = m
    }
}
