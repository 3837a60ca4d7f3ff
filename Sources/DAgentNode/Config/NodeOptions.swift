import DAgentRouting
import DAgentWire

/// The options of a node: the one list that the YAML parser, `dagent run`'s flags,
/// `NodeConfig.validate()` and the table in `docs/config.md` are built from.
///
/// To add an option: add a stored property with its default to `NodeConfig` and
/// one entry here (`.int`, `.double`, `.bool`, `.string`, `.choice`, `.custom`).
/// The flag is the key with `-` for `_` unless `flag:` says otherwise (`flag: ""`:
/// YAML only). Then run `scripts/gen-docs` to regenerate the table in docs/config.md.
/// Entries apply in this order (`addr` before `listen`, which replaces its listen part).
public enum NodeOptions {
    public static let table = OptionTable<NodeConfig>(defaults: NodeConfig(name: ""), [
        .string("name", \.name, default: "— (required)",
                help: "unique name in the whole tree: 1–255 bytes of letters, digits, `. - _ : / @`"),
        .choice("role", ["leaf", "agent", "proxy", "root"], default: "from addresses", current: { c in c.role.map { "\($0)" } },
                help: "shown by `dagent tree` (display only); listen only gives root, parent only leaf, both proxy, serving msgq:// agent") { c, v in
            c.role = ["leaf": .leaf, "agent": .agent, "proxy": .proxy, "root": .root][v]
        },
        .custom("addr", type: .address, repeatable: true,
                help: "the original shorthand, instead of listen/parents: `pull:tcp://H:P`, `push:tcp://H:P[,...]`, `proxy:tcp://L->tcp://P`, `pull:msgq://PATH`, `push:msgq://PATH`") { c, v, _ in
            let sh = try Shorthand.parse(v)
            c.listen += sh.listen
            c.parents += sh.parents
        },
        .custom("listen", type: .addresses, acceptsList: true, help: "address(es) to accept children on (`tcp://HOST:PORT`)") { c, v, _ in
            c.listen = try Shorthand.parseList(v)
        },
        .custom("parents", type: .addresses, flag: "parent", aliases: ["parent"], acceptsList: true,
                help: "parent address(es); the first reachable one is used, the others are failover; `msgq://PATH` joins the local agent") { c, v, _ in
            c.parents = try Shorthand.parseList(v)
        },
        .custom("msgq", type: .path,
                help: "serve local leaves on System V message queues keyed from this path (created if missing); same as `pull:msgq://PATH`") { c, v, _ in
            c.listen.append(.msgq(path: v.hasPrefix("msgq://") ? String(v.dropFirst(7)) : v))
        },
        .double("heartbeat_interval", \.heartbeatInterval, min: 0.001, max: 3600, help: "heartbeats go out on every link this often"),
        .int("heartbeat_misses", \.heartbeatMisses, min: 1, max: 1000,
             help: "a peer silent for `misses × interval` is expired: link closed, names withdrawn"),
        .double("register_timeout", \.registerTimeout, min: 0.01, max: 3600, help: "a peer that connects must register within this, or is dropped"),
        .int("max_message_bytes", \.maxMessageBytes, min: 1, max: 1 << 30,
             help: "largest payload; larger ones get a `too large` error naming the limit"),
        .int("max_frame_bytes", \.maxFrameBytes, min: 1025, max: Int(Int32.max),
             help: "largest TCP frame (at least max_message_bytes + 1024); a bigger length prefix drops the link with `too large`"),
        .int("send_queue_length", \.sendQueueLength, min: 1, max: 10_000_000,
             help: "messages held per destination while the route is not ready; then `queue full`"),
        .int("max_queued_destinations", \.maxQueuedDestinations, min: 1, max: 10_000_000,
             help: "destinations that may have a send queue at once"),
        .double("queue_timeout", \.queueTimeout, min: 0.001, max: 86_400,
                help: "a queued message older than this fails back to its sender with `not ready`"),
        .int("hop_limit", \.hopLimit, min: 1, max: 255, help: "initial hop limit of messages sent from this node (stops routing loops)"),
        .int("max_children", \.maxChildren, min: 1, max: 1_000_000, help: "direct children allowed to register"),
        .int("slow_consumer_bytes", \.slowConsumerBytes, min: 65_536, max: 1 << 40,
             help: "a link with more unsent bytes than this is cut off, with a log line that names the limit"),
        .double("reconnect_initial_backoff", \.reconnectInitialBackoff, min: 0.001, max: 3600, help: "first retry delay to a parent (doubles per failure)"),
        .double("reconnect_max_backoff", \.reconnectMaxBackoff, min: 0.001, max: 3600, help: "longest retry delay to a parent"),
        .double("connect_timeout", \.connectTimeout, min: 0.01, max: 3600, help: "TCP connect timeout to a parent"),
        .bool("durable", \.durable, help: "write queued messages ahead to the fsync'd log `DATA/queue/` before anything else leaves the node, replay and deliver them after a restart or crash (needs `data`; see docs/state.md)"),
        .int("durable_segment_bytes", \.durableSegmentBytes, min: 4096, max: 1 << 40,
             help: "the durable queue log rewrites its live messages into a new segment once the current one is larger than this and mostly delivered"),
        .custom("streams", type: .string, current: { c in c.streams.isEmpty ? nil : c.streams.map { "\($0.prefix)=\($0.stream)" }.joined(separator: ",") },
                help: "root replicas of several streams: `PREFIX=STREAM,...` sends `@state` requests for keys under PREFIX (longest wins) to that stream; others go to stream 1, which holds the name directory; a request's own `stream` wins (docs/state.md)") { c, v, ctx in
            c.streams = try StreamPrefix.parseList(v, context: "\(ctx)")
        },
        .optionalString("data", \.dataDir, type: .path,
                        help: "data directory: the session file (name reclaim after restart) and the durable queue log"),
        .string("secret", \.secret,
                help: "cluster secret (secret mode): every TCP link proves it with an HMAC challenge-response both ways; prefer `secret_file`, which keeps it out of `ps` and config files"),
        .custom("secret_file", type: .path, current: { $0.secretFile },
                help: "file holding the cluster secret (mode 0600, at least 16 bytes; wins over `secret`); see docs/security.md") { c, v, ctx in
            let path = ctx.absolute(v)
            c.secret = try SecretFile.read(path, label: ctx.label)
            c.secretFile = path
        },
        .yamlOnly("tls", type: .mapping, default: "none",
                  help: "mutual TLS on every TCP link: `{cert: FILE, key: FILE, ca: FILE}` (PEM; the certificate's SANs are the names this node may hold; see docs/security.md)") { c, v, src in
            try NodeConfig.parseTLS(&c, v, src)
        },
        .custom("tls_cert", type: .path, current: { $0.tls?.cert },
                help: "this node's TLS certificate (PEM), as `tls.cert`") { c, v, src in NodeConfig.setTLSFile(&c, \.cert, v, src) },
        .custom("tls_key", type: .path, current: { $0.tls?.key },
                help: "this node's TLS private key (PEM), as `tls.key`") { c, v, src in NodeConfig.setTLSFile(&c, \.key, v, src) },
        .custom("tls_ca", type: .path, current: { $0.tls?.ca },
                help: "the cluster CA certificate (PEM) peers' certificates must chain to, as `tls.ca`") { c, v, src in NodeConfig.setTLSFile(&c, \.ca, v, src) },
        .bool("echo", \.echo, help: "answer every request with its own payload"),
        .choice("log_level", ["trace", "debug", "info", "notice", "warning", "error", "critical"], current: { $0.logLevel },
                help: "log level (logs go to stderr)") { c, v in c.logLevel = v },
        .int("msgq_queue_bytes", \.msgqQueueBytes, min: 1024, max: 1 << 30,
             help: "byte limit an agent sets on its queues with `msgctl(IPC_SET)`; above `kernel.msgmnb` that needs `CAP_SYS_RESOURCE`, else the kernel's limit stays (logged once)"),
        .optionalDouble("msgq_send_timeout", \.msgqSendTimeoutOverride, min: 0.001, max: 3600, default: "2 (a leaf: its agent's)",
                        help: "how long a message waits for room in a full queue before it fails with `queue full`; an agent publishes its value to its leaves, a leaf's own setting wins"),
        .custom("http", type: .address, current: { $0.http?.description },
                help: "serve HTTP (`/healthz`, `/metrics`, plugin routes and static directories) on `tcp://HOST:PORT`") { c, v, _ in
            c.http = try NodeConfig.parseHTTPAddress(v)
        },
        .int("http_max_header_bytes", \.httpLimits.maxHeaderBytes, min: 1024, max: 80 * 1024,
             help: "largest request head (request line and headers); larger ones get 431"),
        .int("http_max_body_bytes", \.httpLimits.maxBodyBytes, min: 0, max: 1 << 30, help: "largest request body; larger ones get 413"),
        .int("http_max_connections", \.httpLimits.maxConnections, min: 1, max: 1_000_000,
             help: "open HTTP connections at once; more get 503 and are closed"),
        .double("http_idle_timeout", \.httpLimits.idleTimeout, min: 0.001, max: 86_400, help: "an HTTP connection idle this long is closed"),
        .double("http_handler_timeout", \.httpLimits.handlerTimeout, min: 0.001, max: 3600,
                help: "a plugin route that has not answered within this gets 504"),
        .int("max_names_per_child", \.limits.maxNamesPerChild, min: 1, max: 100_000_000,
             help: "names one child link may hold (its own and its subtree's); more are refused naming this limit"),
        .int("max_unregistered_links", \.limits.maxUnregisteredLinks, min: 1, max: 1_000_000,
             help: "connections accepted but not registered yet; more are closed at once"),
        .double("registration_rate", \.limits.registrationRate, min: 0.001, max: 1_000_000, seconds: false,
                help: "registrations accepted per second over all child links (token bucket); beyond it `retry later`"),
        .int("registration_burst", \.limits.registrationBurst, min: 1, max: 1_000_000,
             help: "registrations accepted at once before registration_rate applies"),
        .int("max_pending_requests", \.maxPendingRequests, min: 1, max: 100_000_000,
             help: "requests of this node waiting for an answer; beyond it `queue full`"),
        .int("max_watches_per_client", \.maxWatchesPerClient, min: 1, max: 1_000_000,
             help: "`@state` watches one client name may hold on a root replica"),
        .int("max_topic_bytes", \.pubsub.topic.maxTopicBytes, min: 1, max: 65_536, help: "longest pub/sub topic or pattern, in bytes; longer ones get `bad topic`"),
        .int("max_topic_tokens", \.pubsub.topic.maxTopicTokens, min: 1, max: 1024, help: "most dot-separated tokens in a topic or pattern"),
        .int("max_subscriptions", \.pubsub.maxSubscriptions, min: 0, max: 100_000_000,
             help: "subscriptions this node itself may hold; past it `too many subscriptions`"),
        .int("max_link_interest", \.pubsub.maxLinkInterest, min: 0, max: 100_000_000,
             help: "distinct interest entries (pattern, queue group) accepted from one link; entries past it are refused and counted"),
        .int("interest_cache_topics", \.pubsub.interestCacheTopics, min: 1, max: 10_000_000, help: "topics whose match is cached"),
        .int("slow_subscriber_bytes", \.slowSubscriberBytes, min: 4096, max: 1 << 40,
             help: "publishes for a link with more unsent bytes than this are dropped (and counted); the link stays until `slow_consumer_bytes`"),
        .int("send_window_bytes", \.sendWindowBytes, min: 0, max: 1 << 40,
             help: "C API and standalone Python: bytes sent or published and not yet written out; a send past it waits for room (backpressure), 0 turns this off; at most half of `slow_consumer_bytes` applies"),
        .double("send_window_timeout", \.sendWindowTimeout, min: 0.001, max: 86_400,
                help: "a send or publish that waits longer than this for room in `send_window_bytes` fails with `queue full`"),
    ])
}
