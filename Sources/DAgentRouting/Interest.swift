import DAgentWire

/// One interest entry: a pattern and its queue group ("" for none).
public struct InterestKey: Hashable, Comparable, Sendable {
    public var pattern: String
    public var queue: String
    public init(_ pattern: String, queue: String = "") {
        self.pattern = pattern
        self.queue = queue
    }
    public static func < (a: Self, b: Self) -> Bool { (a.pattern, a.queue) < (b.pattern, b.queue) }
}

/// Where a matched publish goes: a subscription of this node, or a link.
public enum SubTarget: Hashable, Comparable, Sendable {
    case local(UInt64)
    case link(LinkID)
}

/// The interest a node holds and what it tells each neighbour.
///
/// Sources are this node's own subscriptions (`local`) and what each link's
/// peer told us (`received`: the interest on that side of the link). A
/// neighbour N is told, per entry, the count of every source except N itself
/// (split horizon); a root replica tells its peer replicas only its own and
/// its subtree's (the peers form a full mesh, so nothing is relayed between
/// them). Only changed counts go out, one entry per distinct (pattern,
/// queue), a count of 0 withdrawing it. Pure: the core turns `flush()` into
/// `InterestUpdate` frames.
package struct InterestState {
    package var local: [InterestKey: UInt32] = [:]
    package var received: [LinkID: [InterestKey: UInt32]] = [:]
    /// local + every link's received.
    package var total: [InterestKey: UInt32] = [:]
    /// Sum over peer links of received.
    package var fromPeers: [InterestKey: UInt32] = [:]
    /// Links we advertise to (registered tree links, peer links): isPeer.
    package var ready: [LinkID: Bool] = [:]
    /// What each ready link was last told.
    package var sent: [LinkID: [InterestKey: UInt32]] = [:]
    /// Entries to re-check per ready link at the next flush.
    package var dirty: [LinkID: Set<InterestKey>] = [:]
    /// Links whose peer has sent its initial snapshot.
    package var known: Set<LinkID> = []
    package var sublist: Sublist<SubTarget>

    package init(maxCachedTopics: Int) {
        sublist = Sublist(maxCachedTopics: maxCachedTopics)
    }

    /// The count a ready link should be told for `key`.
    package func advertised(_ key: InterestKey, to link: LinkID) -> UInt32 {
        let t = total[key] ?? 0
        guard t > 0, let isPeer = ready[link] else { return 0 }
        if isPeer { return t - (fromPeers[key] ?? 0) }
        return t - (received[link]?[key] ?? 0)
    }

    private mutating func markDirty(_ key: InterestKey, changedBy source: LinkID?) {
        let sourceIsPeer = source.flatMap { ready[$0] } ?? false
        for (link, isPeer) in ready where link != source {
            if isPeer && sourceIsPeer { continue }   // peers do not relay for each other
            dirty[link, default: []].insert(key)
        }
    }

    private mutating func adjustTotal(_ key: InterestKey, by delta: Int64) {
        let n = Int64(total[key] ?? 0) + delta
        total[key] = n > 0 ? UInt32(clamping: n) : nil
    }

    /// A subscription of this node (with id `id`) was added.
    package mutating func addLocal(_ key: InterestKey, id: UInt64) {
        local[key, default: 0] += 1
        adjustTotal(key, by: 1)
        sublist.set(key.pattern, queue: key.queue, target: .local(id), weight: 1)
        markDirty(key, changedBy: nil)
    }

    /// A subscription of this node was cancelled.
    package mutating func removeLocal(_ key: InterestKey, id: UInt64) {
        guard let n = local[key] else { return }
        local[key] = n > 1 ? n - 1 : nil
        adjustTotal(key, by: -1)
        sublist.set(key.pattern, queue: key.queue, target: .local(id), weight: 0)
        markDirty(key, changedBy: nil)
    }

    /// The peer of `link` says `count` subscriptions on its side want `key`.
    package mutating func setReceived(_ key: InterestKey, count: UInt32, from link: LinkID) {
        let old = received[link]?[key] ?? 0
        guard old != count else { return }
        if count == 0 { received[link]?[key] = nil } else { received[link, default: [:]][key] = count }
        let delta = Int64(count) - Int64(old)
        adjustTotal(key, by: delta)
        if ready[link] == true {
            let n = Int64(fromPeers[key] ?? 0) + delta
            fromPeers[key] = n > 0 ? UInt32(clamping: n) : nil
        }
        sublist.set(key.pattern, queue: key.queue, target: .link(link), weight: count)
        markDirty(key, changedBy: link)
    }

    /// Replaces everything `link` told us (an initial snapshot).
    package mutating func replaceReceived(_ entries: [InterestKey: UInt32], from link: LinkID) {
        for (key, _) in received[link] ?? [:] where entries[key] == nil {
            setReceived(key, count: 0, from: link)
        }
        for (key, count) in entries.sorted(by: { $0.key < $1.key }) {
            setReceived(key, count: count, from: link)
        }
    }

    /// A link may now be told our interest; returns the full snapshot for it.
    package mutating func linkReady(_ link: LinkID, isPeer: Bool) -> [InterestKey: UInt32] {
        ready[link] = isPeer
        var snapshot: [InterestKey: UInt32] = [:]
        for key in total.keys {
            let c = advertised(key, to: link)
            if c > 0 { snapshot[key] = c }
        }
        sent[link] = snapshot
        dirty[link] = nil
        return snapshot
    }

    /// A link is gone: its interest is withdrawn everywhere.
    package mutating func linkDown(_ link: LinkID) {
        for key in (received[link] ?? [:]).keys.sorted() {
            setReceived(key, count: 0, from: link)
        }
        received[link] = nil
        ready[link] = nil
        sent[link] = nil
        dirty[link] = nil
        known.remove(link)
    }

    /// The changes each ready link must be told, and records them as sent.
    package mutating func flush() -> [(LinkID, [InterestKey: UInt32])] {
        guard !dirty.isEmpty else { return [] }
        var out: [(LinkID, [InterestKey: UInt32])] = []
        for link in dirty.keys.sorted() {
            var changes: [InterestKey: UInt32] = [:]
            for key in dirty[link]! {
                let c = advertised(key, to: link)
                if (sent[link]?[key] ?? 0) != c {
                    changes[key] = c
                    if c == 0 { sent[link]?[key] = nil } else { sent[link, default: [:]][key] = c }
                }
            }
            if !changes.isEmpty { out.append((link, changes)) }
        }
        dirty.removeAll(keepingCapacity: true)
        return out
    }

    /// Entries reachable through `link` (what its peer told us), sorted.
    package func entries(from link: LinkID) -> [(InterestKey, UInt32)] {
        (received[link] ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}
