import DAgentRouting
import DAgentWire

/// Range checks on every number in a node's config. NaN, infinities,
/// negative and absurd values are refused with the option's name, before
/// anything converts them (a `UInt64(-1 * 1e9)` would trap).
extension NodeConfig {
    /// The checks, option by option: (name, value, lowest, highest).
    var numericRanges: [(String, Double, Double, Double)] {
        let day = 86_400.0
        var out: [(String, Double, Double, Double)] = [
            ("heartbeat_interval", heartbeatInterval, 0.001, 3600),
            ("heartbeat_misses", Double(heartbeatMisses), 1, 1000),
            ("register_timeout", registerTimeout, 0.001, 3600),
            ("max_message_bytes", Double(maxMessageBytes), 1, 1_073_741_824),
            ("max_frame_bytes", Double(maxFrameBytes), 1025, Double(UInt32.max)),
            ("send_queue_length", Double(sendQueueLength), 1, 10_000_000),
            ("max_queued_destinations", Double(maxQueuedDestinations), 1, 10_000_000),
            ("queue_timeout", queueTimeout, 0.001, 30 * day),
            ("hop_limit", Double(hopLimit), 1, 255),
            ("max_children", Double(maxChildren), 1, 1_000_000),
            ("slow_consumer_bytes", Double(slowConsumerBytes), 65536, 1_099_511_627_776),
            ("reconnect_initial_backoff", reconnectInitialBackoff, 0.001, 3600),
            ("reconnect_max_backoff", reconnectMaxBackoff, 0.001, 3600),
            ("connect_timeout", connectTimeout, 0.001, 3600),
            ("msgq_queue_bytes", Double(msgqQueueBytes), 1024, 1_099_511_627_776),
            ("max_names_per_child", Double(limits.maxNamesPerChild), 1, 100_000_000),
            ("max_unregistered_links", Double(limits.maxUnregisteredLinks), 1, 1_000_000),
            ("registration_rate", limits.registrationRate, 0.001, 1_000_000),
            ("registration_burst", Double(limits.registrationBurst), 1, 1_000_000),
            ("max_pending_requests", Double(maxPendingRequests), 1, 100_000_000),
            ("max_watches_per_client", Double(maxWatchesPerClient), 1, 1_000_000),
        ]
        if let t = msgqSendTimeoutOverride { out.append(("msgq_send_timeout", t, 0.001, 3600)) }
        return out
    }

    /// Throws for the first number out of its range, naming the option.
    public func validateNumbers() throws(ConfigError) {
        for (option, value, low, high) in numericRanges {
            if value.isNaN { throw ConfigError("\(option) must be a number, not NaN") }
            if !(value >= low && value <= high) {
                throw ConfigError("\(option)=\(Self.show(value)) is out of range: it must be between \(Self.show(low)) and \(Self.show(high))")
            }
        }
        if reconnectInitialBackoff > reconnectMaxBackoff {
            throw ConfigError("reconnect_initial_backoff=\(Self.show(reconnectInitialBackoff)) exceeds reconnect_max_backoff=\(Self.show(reconnectMaxBackoff))")
        }
    }

    static func show(_ v: Double) -> String {
        if v.isFinite && v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }
}

