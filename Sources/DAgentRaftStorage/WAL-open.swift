import DAgentRaft

/// Opening a WAL: listing segments, verifying every record, repairing a torn tail.
extension WAL {
    /// Opens the WAL in `directory` (created if missing), verifies it, repairs a torn tail
    /// and returns every record in log order, plus what recovery did.
    public static func open(directory: String, options: WALOptions = WALOptions()) throws
        -> (wal: WAL, records: [WALRecord], events: [RecoveryEvent]) {
        let wal = WAL(directory: directory, options: options)
        try FileIO.ensureDirectory(directory)
        var events: [RecoveryEvent] = []
        var found: [(seq: UInt64, path: String)] = []
        for name in try FileIO.list(directory) {
            let path = directory + "/" + name
            if name.hasSuffix(".tmp") {
                try FileIO.remove(path)
                events.append(.removedTempFile(path))
            } else if let seq = parseSegmentName(name) {
                found.append((seq, path))
            }
        }
        found.sort { $0.seq < $1.seq }
        // Only prefixes are ever removed, so segments before a gap in the numbering are
        // leftovers of an interrupted removal: they are ignored here and deleted by
        // `removeStaleSegments()` once the caller recovered without them.
        if let gap = found.indices.dropFirst().last(where: { found[$0].seq != found[$0 - 1].seq + 1 }) {
            wal.staleSegments = found[..<gap].map(\.path)
            found.removeFirst(gap)
        }
        if found.isEmpty {
            try wal.createSegment(seq: 1)
            return (wal, wal.headerRecords(seq: 1), events)
        }
        var records: [WALRecord] = []
        var lastEnd = 0
        for (i, seg) in found.enumerated() {
            let (recs, end) = try readSegment(seg.path, seq: seg.seq, isLast: i == found.count - 1,
                                              maxBody: options.maxRecordSize, zeroTailEnds: options.preallocateBytes > 0,
                                              events: &events)
            lastEnd = end
            var info = Segment(seq: seg.seq, path: seg.path, baseIndex: 0, maxIndex: 0)
            if recs.count > 1, case let .snapshot(.base, idx, _) = recs[1] { info.baseIndex = idx }
            wal.segments.append(info)
            for r in recs.prefix(3) { wal.trackState(r) }
            for r in recs.dropFirst(3) { wal.track(r) }
            wal.currentHasPayload = recs.count > 3
            records += recs
        }
        wal.file = try AppendFile(path: found.last!.path, logicalSize: lastEnd)
        return (wal, records, events)
    }

    /// Reads and verifies one segment; truncates a torn tail of the last one. With
    /// `zeroTailEnds` (preallocation on), zeros after the last record of the last segment
    /// are its preallocated tail: the log ends there and nothing is repaired. Returns the
    /// records and the offset where they end.
    private static func readSegment(_ path: String, seq: UInt64, isLast: Bool, maxBody: Int, zeroTailEnds: Bool,
                                    events: inout [RecoveryEvent]) throws -> ([WALRecord], Int) {
        let bytes = try FileIO.readAll(path)
        var recs: [WALRecord] = []
        var pos = 0
        scan: while pos < bytes.count {
            switch WALFrame.parse(bytes, at: pos, maxBody: maxBody) {
            case let .record(r, next):
                recs.append(r)
                pos = next
            case let .undecodable(reason):
                throw DurableStorageError.corruptRecord(file: path, offset: pos, reason: reason)
            case let .invalid(reason):
                if isLast && zeroTailEnds && bytes[pos...].allSatisfy({ $0 == 0 }) { break scan }
                guard isLast else {
                    throw DurableStorageError.corruptRecord(
                        file: path, offset: pos, reason: reason + " (not the last segment, so not a torn write)")
                }
                if let next = WALFrame.nextIntactFrame(bytes, after: pos, maxBody: maxBody) {
                    throw DurableStorageError.corruptRecord(
                        file: path, offset: pos,
                        reason: reason + "; an intact record follows at offset \(next), so this is not a torn tail")
                }
                try FileIO.truncate(path, to: pos)
                events.append(.truncatedTornTail(file: path, offset: pos, droppedBytes: bytes.count - pos, reason: reason))
                break scan
            }
        }
        guard recs.count >= 3, case let .metadata(version, s) = recs[0], case .snapshot(.base, _, _) = recs[1],
              case .hardState = recs[2] else {
            throw DurableStorageError.corruptRecord(file: path, offset: 0, reason: "segment does not start with an intact header")
        }
        guard version == WALRecord.formatVersion else {
            throw DurableStorageError.corruptRecord(file: path, offset: 0, reason: "unsupported WAL format version \(version)")
        }
        guard s == seq else {
            throw DurableStorageError.corruptRecord(file: path, offset: 0, reason: "header names segment \(s), file name says \(seq)")
        }
        return (recs, pos)
    }
}
