/// Chooses which parent address to try next, with per-address backoff.
///
/// A parent that fails is marked down until `now + backoff`, where the
/// backoff doubles from `initialBackoffNs` up to `maxBackoffNs` with each
/// consecutive failure of that address. The selector prefers the next address
/// in the list after the one that failed, so a node fails over instead of
/// hammering a dead parent. Pure: time comes in as an argument.
public struct ParentSelector: Sendable {
    public struct Candidate: Sendable, Equatable {
        public var address: String
        public var failures: Int = 0
        public var downUntilNs: UInt64 = 0
    }

    public private(set) var candidates: [Candidate]
    public let initialBackoffNs: UInt64
    public let maxBackoffNs: UInt64
    private var cursor = 0

    public init(addresses: [String], initialBackoffNs: UInt64 = 100_000_000, maxBackoffNs: UInt64 = 5_000_000_000) {
        precondition(!addresses.isEmpty, "a parent selector needs at least one address")
        candidates = addresses.map { Candidate(address: $0) }
        self.initialBackoffNs = initialBackoffNs
        self.maxBackoffNs = maxBackoffNs
    }

    /// The next address to dial and how long to wait before dialing it.
    public func next(nowNs: UInt64) -> (index: Int, delayNs: UInt64) {
        let n = candidates.count
        for step in 0..<n {
            let i = (cursor + step) % n
            if candidates[i].downUntilNs <= nowNs { return (i, 0) }
        }
        let soonest = candidates.indices.min { candidates[$0].downUntilNs < candidates[$1].downUntilNs }!
        return (soonest, candidates[soonest].downUntilNs - nowNs)
    }

    /// Records a failed dial or a lost link on `index`; moves on to the next address.
    public mutating func markDown(_ index: Int, nowNs: UInt64) {
        candidates[index].failures += 1
        let shift = min(candidates[index].failures - 1, 30)
        let backoff = min(initialBackoffNs << UInt64(shift), maxBackoffNs)
        candidates[index].downUntilNs = nowNs + backoff
        cursor = (index + 1) % candidates.count
    }

    /// Records a successful registration through `index`.
    public mutating func markUp(_ index: Int) {
        candidates[index].failures = 0
        candidates[index].downUntilNs = 0
        cursor = index
    }
}
