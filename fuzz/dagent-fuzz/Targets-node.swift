import DAgentNode
import DAgentRouting
import DAgentWire
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// DAgentNode: the YAML config through the option registry.
enum NodeTargets {
    static let sampleConfigs: [String] = [
        """
        name: agent1
        listen: tcp://127.0.0.1:7001
        parents: [tcp://127.0.0.1:7000, tcp://127.0.0.1:7100]
        heartbeat_interval: 1.0
        heartbeat_misses: 3
        durable: true
        data: /tmp/dagent-fuzz-data
        """,
        "addr: proxy:tcp://0.0.0.0:7001->tcp://10.0.0.1:7000\nname: p1\nmsgq: /tmp/dagent-fuzz-msgq\n",
        "name: r\nrole: root\nlisten: [tcp://127.0.0.1:7000]\nregister_timeout: -1\n",
        "name: l\nparent: tcp://h:1\nheartbeat_interval: .nan\nmax_frame_bytes: 2048\nmax_message_bytes: 1024\n",
        "name: x\nlisten: tcp://127.0.0.1:1\nhttp: tcp://127.0.0.1:8080\nplugins: {dir: p}\nraft: {node_id: 1}\n",
    ]

    static let config = FuzzTarget(
        name: "config",
        summary: "YAML node config (ConfigFile + NodeOptions): ConfigError or a config; a valid one converts without trapping",
        seeds: { sampleConfigs.enumerated().map { ("config-\($0.offset)", Array($0.element.utf8)) } },
        run: { input in
            let text = String(decoding: input.bytes, as: UTF8.self)
            let config: NodeConfig
            do { config = try ConfigFile.parse(yaml: text) } catch is ConfigError { return } catch {
                FuzzCheck.fail("parse threw \(type(of: error)), not ConfigError: \(error)")
            }
            do { try config.validate() } catch { return }
            // What a node derives from a valid config at start (the conversions that trapped on NaN).
            _ = config.coreConfig
            _ = config.effectiveRole
            _ = config.runsOnMessageQueueLoop
            _ = Int64(config.connectTimeout * 1e9)
            _ = Int64(config.heartbeatInterval * 1e9) / 4
            _ = UInt64(config.reconnectInitialBackoff * 1e9)
            _ = UInt64(config.reconnectMaxBackoff * 1e9)
            _ = UInt64(config.msgqSendTimeout * 1e9)
            _ = UInt32(clamping: Int(config.msgqSendTimeout * 1000))
            // The registry renders every option of a valid config.
            for o in NodeOptions.table.options { _ = o.defaultText(config) }
        })
}

/// Durable send queues (`durable: true`): the write-ahead log `DATA/queue/q-*.log`
/// (DAgentWire.QueueLogDecoder, replayed by DAgentNode.DurableQueueLog) and the legacy
/// `DATA/queue.dump` a node of an older version left (still read once at start).
/// To repoint at a new format, change `decode`/`encode` and the file names in `replay`.
enum DurableTargets {
    static func sampleRecords() -> [QueueLogRecord] {
        let e = WireTargets.sampleEnvelopes()
        return [.header(segment: 1, supersedes: 1), .queued(seq: 1, envelope: e[0]), .queued(seq: 2, envelope: e[1]),
                .left(seqs: [1]), .queued(seq: 5, envelope: e[3]), .left(seqs: [9, 2])]
    }

    static func encode(_ records: [QueueLogRecord]) -> [UInt8] {
        var out: [UInt8] = []
        for r in records {
            do { try QueueLogEncoder.append(r, to: &out) } catch { FuzzCheck.fail("a decoded record does not re-encode: \(error)") }
        }
        return out
    }

    static let queueLog = FuzzTarget(
        name: "durable-queue",
        summary: "durable queue log segment (QueueLogDecoder + DurableQueueLog replay on real files): records re-encode; a restart keeps exactly the live messages",
        seeds: {
            let records = sampleRecords()
            let whole = encode(records)
            return [("segment", whole), ("torn-tail", Array(whole.dropLast(5))),
                    ("header-only", encode([.header(segment: 1, supersedes: 0)]))]
        },
        run: { input in
            let decoded = QueueLogDecoder.decode(input.bytes)
            FuzzCheck.require(decoded.validBytes <= input.bytes.count, "validBytes \(decoded.validBytes) of \(input.bytes.count)")
            FuzzCheck.equal(decoded.damage == nil, decoded.validBytes == input.bytes.count, "damage iff bytes are left over")
            if let first = decoded.records.first, case .header = first {} else if !decoded.records.isEmpty {
                FuzzCheck.fail("records without a header first")
            }
            let again = QueueLogDecoder.decode(encode(decoded.records))
            FuzzCheck.equal(again.records, decoded.records, "records round trip")
            FuzzCheck.equal(again.damage, nil, "re-encoded records are intact")
            replay(input.bytes, decoded)
        })

    static let scratch: String = {
        let dir = "/dev/shm/dagent-fuzz-queue-\(getpid())"
        atexit { try? FileManager.default.removeItem(atPath: "/dev/shm/dagent-fuzz-queue-\(getpid())") }
        return dir
    }()

    /// The segment as the only file of a node's queue directory: open (the restart), compare with
    /// what the records say is live, write it back as a node does, and restart once more.
    static func replay(_ bytes: [UInt8], _ decoded: QueueLogDecoded) {
        let fm = FileManager.default
        try? fm.removeItem(atPath: scratch)
        do {
            try fm.createDirectory(atPath: scratch, withIntermediateDirectories: true)
            try Data(bytes).write(to: URL(fileURLWithPath: scratch + "/q-0000000000000001.log"))
        } catch { FuzzCheck.fail("cannot write the segment to \(scratch): \(error)") }
        let log: DurableQueueLog
        do { log = try DurableQueueLog(directory: scratch, segmentBytes: 1 << 16) } catch {
            FuzzCheck.fail("replaying a damaged segment threw instead of truncating: \(error)")
        }
        var live: [UInt64: Dagent_Envelope] = [:]
        var superseded = false
        for r in decoded.records {
            switch r {
            case let .header(_, supersedes): superseded = 1 < supersedes
            case let .queued(seq, e): live[seq] = e
            case let .left(seqs): for s in seqs { live[s] = nil }
            }
        }
        let expected = superseded ? [] : live.keys.sorted().map { live[$0]! }
        FuzzCheck.equal(log.replayed, expected, "replayed messages")
        let entries = log.replayed.enumerated().map { (seq: UInt64($0.offset + 1), envelope: $0.element) }
        do { try log.begin(entries); try log.commit() } catch { FuzzCheck.fail("writing the replayed queue back: \(error)") }
        log.close()
        guard let restarted = try? DurableQueueLog(directory: scratch, segmentBytes: 1 << 16) else {
            FuzzCheck.fail("the rewritten log does not reopen")
        }
        FuzzCheck.equal(restarted.replayed, expected, "messages after a second restart")
        FuzzCheck.equal(restarted.replayNotes, [], "notes on a clean log")
        restarted.close()
        restore(expected)
    }

    /// Reload into a node that has no parent yet (everything queues) and into one whose route
    /// is ready (everything is routed); both account for every envelope without trapping.
    static func restore(_ envelopes: [Dagent_Envelope]) {
        for hasParent in [true, false] {
            var c = NodeCoreConfig(name: "fuzz", role: hasParent ? .leaf : .root, hasParent: hasParent)
            c.sendQueueLength = 8
            c.maxQueuedDestinations = 4
            // Fixed sessions (128-bit secrets): the run stays deterministic.
            let core = NodeCore(config: c, session: SessionSecret(bytes: [UInt8](repeating: 1, count: 16)),
                                sessionGenerator: { SessionSecret(bytes: [UInt8](repeating: 2, count: 16))! })
            let restored = core.restoreQueued(envelopes, nowNs: 1_000_000_000)
            FuzzCheck.require(restored >= 0 && restored <= envelopes.count, "restored \(restored) of \(envelopes.count)")
        }
    }

    static let legacyDump = FuzzTarget(
        name: "durable-dump",
        summary: "legacy DATA/queue.dump (Dagent_QueueDump, read once after an upgrade): an error or envelopes that re-encode and restore",
        seeds: {
            var dump = Dagent_QueueDump()
            dump.envelopes = WireTargets.sampleEnvelopes()
            return [("dump-all", (try? dump.serializedBytes()) ?? [])]
        },
        run: { input in
            guard let dump = try? Dagent_QueueDump(serializedBytes: input.bytes) else { return }
            guard let again: [UInt8] = try? dump.serializedBytes(), let back = try? Dagent_QueueDump(serializedBytes: again) else {
                FuzzCheck.fail("a decoded dump does not re-encode")
            }
            FuzzCheck.equal(back, dump, "dump round trip")
            restore(dump.envelopes)
        })
}
