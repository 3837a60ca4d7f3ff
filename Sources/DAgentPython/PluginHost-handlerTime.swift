import CPyHost

/// The time a plugin's message handlers took in one batch, as histogram
/// counts: `counts[i]` handlers took at most `bounds[i]` seconds (and more
/// than `bounds[i-1]`); the last count is over the last bound (+Inf).
/// The time of a handler runs from the end of the previous message to the end
/// of its own, so it includes the dispatch and the reply of its result.
public struct PluginHandlerTimes: Sendable {
    /// The plugin's name ("" for the host's own handlers).
    public var plugin: String
    public var counts: [UInt64]
    public var sum: Double
    public var count: UInt64 { counts.reduce(0, &+) }

    /// The upper bounds (seconds) of the buckets, as `cpyhost.c` counts them.
    public static let bounds: [Double] = withUnsafeBytes(of: cpy_handler_bounds) { Array($0.bindMemory(to: Double.self)) }
}

extension Bridge {
    static let handlerTimes: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<Int32>?, UnsafePointer<UInt64>?,
                                            UnsafePointer<Double>?, Int32) -> Void = { ctx, slots, buckets, sums, n in
        guard let slots, let buckets, let sums, n > 0 else { return }
        let h = host(ctx)
        guard let sink = h.onHandlerTimes else { return }
        let width = Int(CPY_HANDLER_BUCKETS) + 1
        for j in 0..<Int(n) {
            let counts = Array(UnsafeBufferPointer(start: buckets + j * width, count: width))
            sink(PluginHandlerTimes(plugin: h.stats.pluginName(slot: Int(slots[j])), counts: counts, sum: sums[j]))
        }
    }
}
