import DAgentRouting

/// The name of a brother's channel as the routing core logs a direct sender
/// (`hex(channel)`), formatted once per sender rather than per queue message:
/// the formatting was about 3% of a brother round trip's CPU, and a leaf
/// mostly hears from one brother at a time.
package struct SenderName {
    private var last: (channel: UInt64, name: String)?

    package init() {}

    /// `hex(channel)`; the last one is kept.
    package mutating func name(_ channel: UInt64) -> String {
        if let last, last.channel == channel { return last.name }
        let name = hex(channel)
        last = (channel, name)
        return name
    }
}
