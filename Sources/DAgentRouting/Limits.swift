import DAgentWire

/// What a hostile or broken peer may consume at one node. Every field is a
/// named config option (see docs/security.md); exceeding one is refused with
/// an error that names the option and its value.
public struct CoreLimits: Sendable, Equatable {
    /// `max_names_per_child`: names one child link may hold (its own name and
    /// everything registered below it).
    public var maxNamesPerChild: Int = 100_000
    /// `max_unregistered_links`: connections accepted but not registered yet
    /// (nor authenticated); more are closed at once.
    public var maxUnregisteredLinks: Int = 256
    /// `registration_rate`: registrations (Register frames) accepted per second,
    /// over all child links; bursts of `registration_burst` are allowed.
    public var registrationRate: Double = 200
    /// `registration_burst`: registrations accepted at once before the rate applies.
    public var registrationBurst: Int = 400
    /// Subscriptions per child are `max_link_interest` (`PubSubLimits`).
    public init() {}
}

/// A token bucket on the core's clock (pure: the caller passes the time).
package struct TokenBucket: Sendable {
    package let ratePerSecond: Double
    package let burst: Double
    private var tokens: Double
    private var lastNs: UInt64?

    package init(ratePerSecond: Double, burst: Int) {
        self.ratePerSecond = ratePerSecond
        self.burst = Double(max(1, burst))
        tokens = self.burst
    }

    /// Takes one token if there is one.
    package mutating func take(nowNs: UInt64) -> Bool {
        if let last = lastNs, nowNs > last {
            tokens = min(burst, tokens + Double(nowNs - last) / 1e9 * ratePerSecond)
        }
        lastNs = max(lastNs ?? nowNs, nowNs)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
