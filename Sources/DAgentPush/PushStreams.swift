import NIOCore

/// History kept for the topics that match `pattern`: the last `size`
/// messages, and only those younger than `ttl` seconds (0: no age limit).
public struct PushHistoryPolicy: Equatable, Sendable {
    public var pattern: String
    public var size: Int
    public var ttl: Double

    public init(pattern: String, size: Int, ttl: Double) {
        self.pattern = pattern
        self.size = size
        self.ttl = ttl
    }
}

/// The numbering of each topic's messages in one gateway: an epoch (new at
/// every start, and when `max_topics` is reached), then a sequence number per
/// topic. Topics with a history policy keep their recent frames for recovery.
public struct PushStreams {
    struct Kept {
        var seq: UInt64
        var timeNs: UInt64
        var frame: ByteBuffer
    }

    struct Stream {
        var seq: UInt64 = 0
        var size = 0
        var ttlNs: UInt64 = 0
        var conflate = false
        var kept = CircularBuffer<Kept>()
    }

    /// The current epoch; clients compare it with the one they saw.
    public private(set) var epoch: String
    let bootID: String
    var generation = 1
    var streams: [String: Stream] = [:]
    /// Most specific first.
    var history: [PushHistoryPolicy] = []
    var conflate: [String] = []
    public var maxTopics: Int
    /// Epochs started because `max_topics` was reached.
    public private(set) var epochResets = 0

    /// `bootID` is a random string the driver picks at start; epochs are `bootID-N`.
    public init(bootID: String, maxTopics: Int) {
        self.bootID = bootID
        self.maxTopics = maxTopics
        self.epoch = "\(bootID)-1"
    }

    /// Topics tracked in this epoch.
    public var topicCount: Int { streams.count }

    /// Frames held in history, all topics.
    public var historyFrames: Int { streams.values.reduce(0) { $0 + $1.kept.count } }

    /// Sets the history and conflation policies (also for topics already tracked).
    public mutating func configure(history: [PushHistoryPolicy], conflate: [String]) {
        self.history = history.sorted { a, b in
            let wa = PushTopic.isWildcard(a.pattern), wb = PushTopic.isWildcard(b.pattern)
            if wa != wb { return !wa }
            if a.pattern.utf8.count != b.pattern.utf8.count { return a.pattern.utf8.count > b.pattern.utf8.count }
            return a.pattern < b.pattern
        }
        self.conflate = conflate
        for topic in Array(streams.keys) {
            var s = streams[topic]!
            apply(policyFor(topic), to: &s)
            streams[topic] = s
        }
    }

    /// The history policy of `topic`, if any (the most specific pattern wins).
    public func policyFor(_ topic: String) -> PushHistoryPolicy? {
        history.first { PushTopic.matches(pattern: $0.pattern, topic: topic) }
    }

    /// True if `topic` is conflated for slow clients.
    public func isConflated(_ topic: String) -> Bool {
        if let s = streams[topic] { return s.conflate }
        return conflate.contains { PushTopic.matches(pattern: $0, topic: topic) }
    }

    /// Patterns the gateway must hear even without clients (to fill history).
    public var historyPatterns: [String] { history.map(\.pattern) }

    func apply(_ p: PushHistoryPolicy?, to s: inout Stream) {
        s.size = max(0, p?.size ?? 0)
        s.ttlNs = UInt64(max(0, p?.ttl ?? 0) * 1e9)
        while s.kept.count > s.size { s.kept.removeFirst() }
    }

    func makeStream(_ topic: String) -> Stream {
        var s = Stream()
        apply(policyFor(topic), to: &s)
        s.conflate = conflate.contains { PushTopic.matches(pattern: $0, topic: topic) }
        return s
    }

    /// Numbers a message of `topic`, encodes its `msg` frame and keeps it in
    /// history if the topic has a policy. Returns the frame and whether the
    /// topic is conflated. `newEpoch` is true if this started a new epoch.
    public mutating func record(topic: String, payload: some Collection<UInt8>, nowNs: UInt64) -> (frame: ByteBuffer, seq: UInt64, conflate: Bool, newEpoch: Bool) {
        var newEpoch = false
        if streams[topic] == nil && streams.count >= maxTopics {
            streams.removeAll(keepingCapacity: true)
            generation += 1
            epoch = "\(bootID)-\(generation)"
            epochResets += 1
            newEpoch = true
        }
        var s = streams.removeValue(forKey: topic) ?? makeStream(topic)
        s.seq += 1
        let frame = PushFrames.msg(topic: topic, seq: s.seq, payload: payload)
        if s.size > 0 {
            if s.kept.count >= s.size { s.kept.removeFirst() }
            s.kept.append(Kept(seq: s.seq, timeNs: nowNs, frame: frame))
            prune(&s, nowNs: nowNs)
        }
        let result = (frame, s.seq, s.conflate, newEpoch)
        streams[topic] = s
        return result
    }

    func prune(_ s: inout Stream, nowNs: UInt64) {
        guard s.ttlNs > 0 else { return }
        while let first = s.kept.first, nowNs >= first.timeNs && nowNs - first.timeNs > s.ttlNs { s.kept.removeFirst() }
    }

    /// The last sequence number given in `topic` (0 if none in this epoch).
    public func currentSeq(_ topic: String) -> UInt64 { streams[topic]?.seq ?? 0 }

    /// What a client that saw `topic` up to `seq` in `epoch` missed: the frames,
    /// and whether they cover the whole gap (`recovered`).
    public mutating func recover(topic: String, epoch: String, after seq: UInt64, nowNs: UInt64) -> (frames: [ByteBuffer], recovered: Bool) {
        guard epoch == self.epoch else { return ([], false) }
        guard var s = streams[topic] else { return ([], seq == 0) }
        prune(&s, nowNs: nowNs)
        streams[topic] = s
        if seq == s.seq { return ([], true) }
        if seq > s.seq { return ([], false) }
        guard let first = s.kept.first, first.seq <= seq + 1 else { return ([], false) }
        return (s.kept.filter { $0.seq > seq }.map(\.frame), true)
    }

    /// Recovery of a subscription: an exact topic uses `since.seq`; a pattern
    /// uses `since.seqs` (the topics the client saw under it), each of which
    /// must match the pattern.
    public mutating func recover(pattern: String, since: PushSince, nowNs: UInt64) -> (frames: [ByteBuffer], recovered: Bool) {
        if !PushTopic.isWildcard(pattern) {
            let seq = since.seq ?? since.seqs[pattern] ?? 0
            return recover(topic: pattern, epoch: since.epoch, after: seq, nowNs: nowNs)
        }
        guard since.epoch == epoch else { return ([], false) }
        var frames: [ByteBuffer] = []
        var all = true
        for topic in since.seqs.keys.sorted() where PushTopic.matches(pattern: pattern, topic: topic) {
            let r = recover(topic: topic, epoch: since.epoch, after: since.seqs[topic]!, nowNs: nowNs)
            frames += r.frames
            all = all && r.recovered
        }
        return (frames, all)
    }
}
