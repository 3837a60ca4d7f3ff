/// The names a leaf reaches directly (brother p2p): for a leaf on a message
/// queue, the agent's shared-memory name table as that leaf sees it (names →
/// the channel of the brother holding them). An input of the routing core:
/// `nextHop` consults it on a cache miss and drops its cache whenever
/// `generation` moves. It never includes this leaf's own channel.
///
/// A lookup must be cheap and must not block (it is a read of memory); a name
/// it does not know simply goes via the parent, which is always correct.
public protocol BrotherDirectory: AnyObject {
    /// Changes whenever the table changes.
    var generation: UInt64 { get }
    /// The channel of the brother holding `name`, or nil (send via the parent).
    func channel(of name: String) -> UInt64?
}
