import DAgentNode
import DAgentRouting
import DAgentWire
import Foundation

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

/// The durable queue dump (`durable: true`, `DATA/queue.dump`). This is the decoder on main
/// (Node-durable.swift: `Dagent_QueueDump` protobuf, then `NodeCore.restoreQueued`); when
/// the dump becomes a write-ahead log, point `decode` at its replay and keep the checks.
enum DurableTargets {
    /// What `Node.loadDurableQueue` does with the file's bytes, minus the file.
    static func decode(_ bytes: [UInt8]) throws -> [Dagent_Envelope] {
        try Dagent_QueueDump(serializedBytes: bytes).envelopes
    }

    static func encode(_ envelopes: [Dagent_Envelope]) throws -> [UInt8] {
        var dump = Dagent_QueueDump()
        dump.envelopes = envelopes
        return try dump.serializedBytes()
    }

    static let durable = FuzzTarget(
        name: "durable-queue",
        summary: "durable queue dump: an error or envelopes that re-encode, and that restoreQueued takes without trapping",
        seeds: {
            let envelopes = WireTargets.sampleEnvelopes()
            return [("dump-all", (try? encode(envelopes)) ?? []), ("dump-one", (try? encode([envelopes[0]])) ?? [])]
        },
        run: { input in
            guard let envelopes = try? decode(input.bytes) else { return }
            guard let again = try? encode(envelopes), let back = try? decode(again) else { FuzzCheck.fail("a decoded dump does not re-encode") }
            FuzzCheck.equal(back, envelopes, "dump round trip")
            // Reload into a node that has no parent yet (everything queues) and into one whose
            // route is ready (everything is routed); both must account for every envelope.
            for hasParent in [true, false] {
                var c = NodeCoreConfig(name: "fuzz", role: hasParent ? .leaf : .root, hasParent: hasParent)
                c.sendQueueLength = 8
                c.maxQueuedDestinations = 4
                let core = NodeCore(config: c, session: 1, sessionGenerator: { 2 })
                let restored = core.restoreQueued(envelopes, nowNs: 1_000_000_000)
                FuzzCheck.require(restored >= 0 && restored <= envelopes.count, "restored \(restored) of \(envelopes.count)")
            }
        })
}
