import DAgentTLS
import DAgentWire
import Foundation
import Yams
import DAgentRouting
import DAgentLink
import DAgentMsgq
import DAgentHTTP

/// Everything needed to run one node. Built from YAML (`--config FILE`),
/// from the address shorthand, or from command-line flags (flags win).
public struct NodeConfig: Sendable {
    public var name: String
    /// Shown by `dagent tree`; derived from the addresses unless set.
    public var role: Dagent_NodeRole?
    public var listen: [Endpoint] = []
    public var parents: [Endpoint] = []
    public var heartbeatInterval: Double = 1.0
    public var heartbeatMisses: Int = 3
    public var registerTimeout: Double = 5.0
    public var maxMessageBytes: Int = WireConstants.defaultMaxMessageBytes
    public var maxFrameBytes: Int = WireConstants.defaultMaxFrameBytes
    public var sendQueueLength: Int = 1024
    public var maxQueuedDestinations: Int = 10_000
    public var queueTimeout: Double = 60.0
    public var hopLimit: Int = Int(WireConstants.defaultHopLimit)
    /// Lets threads other than the loop write requests and replies straight to a
    /// plaintext TCP link's socket (`Node-direct.swift`). Set by the C API; not a file option.
    public var directWrites = false
    public var maxChildren: Int = 4096
    /// `slow_consumer_bytes`: a link whose unsent bytes exceed this is cut off.
    public var slowConsumerBytes: Int = 64 * 1024 * 1024
    /// `slow_subscriber_bytes`: publishes for a link whose unsent bytes exceed
    /// this are dropped (and counted); the link stays until `slow_consumer_bytes`.
    public var slowSubscriberBytes: Int = 8 * 1024 * 1024
    /// `send_window_bytes`: bytes the C API (standalone Python) may have handed
    /// over and not yet written out; a send past it waits for room. 0: no bound.
    public var sendWindowBytes: Int = 8 * 1024 * 1024
    /// `send_window_timeout`: how long such a send waits before it fails with `queue full`.
    public var sendWindowTimeout: Double = 30.0
    /// The window in effect: `send_window_bytes`, at most half of `slow_consumer_bytes`
    /// (a sender must wait well before its link would be cut).
    public var effectiveSendWindowBytes: Int {
        sendWindowBytes == 0 ? 0 : min(sendWindowBytes, slowConsumerBytes / 2)
    }
    /// Pub/sub limits (`max_topic_bytes`, `max_topic_tokens`, `max_subscriptions`,
    /// `max_link_interest`, `interest_cache_topics`).
    public var pubsub = PubSubLimits()
    public var reconnectInitialBackoff: Double = 0.1
    public var reconnectMaxBackoff: Double = 5.0
    public var connectTimeout: Double = 2.0
    /// Dump send queues on shutdown and reload them on start (needs `data`).
    public var durable: Bool = false
    /// `durable_segment_bytes`: the durable queue log rewrites its live records into a
    /// new segment once the current one is larger than this and mostly delivered.
    public var durableSegmentBytes: Int = 16 << 20
    /// `streams`: key prefixes of the root group's streams (a replica of several streams
    /// routes `@state` requests without an explicit stream by them; see docs/state.md).
    public var streams: [StreamPrefix] = []
    /// Directory for the session file and the durable queue log (`DATA/queue/`).
    public var dataDir: String?
    /// `secret` / `secret_file`: the cluster secret (secret mode); "" for none.
    public var secret: String = ""
    /// `secret_file`: where `secret` was read from.
    public var secretFile: String?
    /// Answer every request with its own payload.
    public var echo: Bool = false
    /// `log_level`: trace, debug, info, notice, warning, error.
    public var logLevel: String = "info"
    /// `msgq_queue_bytes`: the byte limit an agent sets on its message queues
    /// (msgctl IPC_SET; above kernel.msgmnb only with CAP_SYS_RESOURCE, else
    /// the kernel's limit stays).
    public var msgqQueueBytes: Int = 4 * 1024 * 1024
    /// `msgq_send_timeout` when set: how long a message waits for room in a full
    /// queue before it fails with `queue full`. Unset on a leaf: the agent's.
    public var msgqSendTimeoutOverride: Double?
    /// The send timeout an agent uses and publishes to its leaves.
    public var msgqSendTimeout: Double { msgqSendTimeoutOverride ?? 2.0 }
    /// Limits on what one peer may consume (see docs/security.md).
    public var limits = CoreLimits()
    /// `max_pending_requests`: requests this node may have waiting for an answer.
    public var maxPendingRequests: Int = 100_000
    /// `max_watches_per_client`: `@state` watches one client name may hold (root replicas).
    public var maxWatchesPerClient: Int = 1024

    /// `http: tcp://HOST:PORT`: the node's HTTP listener (`/healthz`, `/metrics`, plugin routes).
    public var http: Endpoint?
    /// `http_max_header_bytes`, `http_max_body_bytes`, `http_max_connections`,
    /// `http_idle_timeout`, `http_handler_timeout`.
    public var httpLimits = HTTPLimits()
    /// `tls: {cert, key, ca}`: mutual TLS on every TCP link (ConfigFile-tls.swift).
    public var tls: TLSFiles?

    public init(name: String) { self.name = name }

    /// True for a leaf whose parents are all `msgq://` and that listens on
    /// nothing: it can run on a `MsgqEventLoop`, whose thread waits on its
    /// channel and runs the node without a hand-off between threads.
    /// `DAGENT_MSGQ_LOOP=0` in the environment turns this off.
    public var runsOnMessageQueueLoop: Bool {
        guard listen.isEmpty, !parents.isEmpty else { return false }
        if ProcessInfo.processInfo.environment["DAGENT_MSGQ_LOOP"] == "0" { return false }
        return parents.allSatisfy { if case .msgq = $0 { return true } else { return false } }
    }

    /// The role implied by the addresses when none is configured.
    public var effectiveRole: Dagent_NodeRole {
        if let role { return role }
        if listen.contains(where: { if case .msgq = $0 { return true } else { return false } }) { return .agent }
        switch (listen.isEmpty, parents.isEmpty) {
        case (false, true): return .root
        case (false, false): return .proxy
        default: return .leaf
        }
    }

    /// Checks the combination of options; the message names the option.
    public func validate() throws(ConfigError) {
        if let problem = NameRules.registrationProblem(name) { throw ConfigError("name: \(problem)") }
        if listen.isEmpty && parents.isEmpty {
            throw ConfigError("node '\(name)' has neither listen nor parent addresses; give --listen, --parent or --addr")
        }
        do { try NodeOptions.table.validate(self) } catch let e as ConfigError { throw e } catch { throw ConfigError("\(error)") }
        if maxFrameBytes < maxMessageBytes + 1024 {
            throw ConfigError("max_frame_bytes=\(maxFrameBytes) must exceed max_message_bytes=\(maxMessageBytes) by at least 1024 bytes of header room")
        }
        if durable && dataDir == nil { throw ConfigError("durable: true needs a data directory (data: DIR or --data DIR)") }
        let msgqListen = listen.filter { if case .msgq = $0 { return true } else { return false } }
        if msgqListen.count > 1 {
            throw ConfigError("a node serves at most one msgq:// path (got \(msgqListen.map(\.description).joined(separator: ", ")))")
        }
        if reconnectMaxBackoff < reconnectInitialBackoff {
            throw ConfigError("reconnect_max_backoff=\(reconnectMaxBackoff) must be >= reconnect_initial_backoff=\(reconnectInitialBackoff)")
        }
        try validateHTTP()
        try validateTLS()
    }

    /// The routing core's view of this config.
    public var coreConfig: NodeCoreConfig {
        var c = NodeCoreConfig(name: name, role: effectiveRole, hasParent: !parents.isEmpty)
        c.heartbeatIntervalNs = UInt64(heartbeatInterval * 1e9)
        c.heartbeatMisses = heartbeatMisses
        c.registerTimeoutNs = UInt64(registerTimeout * 1e9)
        c.maxMessageBytes = maxMessageBytes
        c.sendQueueLength = sendQueueLength
        c.maxQueuedDestinations = maxQueuedDestinations
        c.queueTimeoutNs = UInt64(queueTimeout * 1e9)
        c.hopLimit = UInt32(hopLimit)
        c.secret = secret
        c.maxChildren = maxChildren
        c.limits = limits
        c.pubsub = pubsub
        return c
    }
}
