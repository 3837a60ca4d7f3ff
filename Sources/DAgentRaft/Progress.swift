/// How the leader currently replicates to a follower.
public enum ProgressState: String, Sendable, Equatable, Codable {
    /// Unknown match: send one append at a time and wait for the answer.
    case probe
    /// Known match: stream appends optimistically (pipelining), bounded by inflights.
    case replicate
    /// Follower needs a snapshot; appends are paused until it is installed or fails.
    case snapshot
}

/// The leader's view of one follower's log.
package struct Progress: Equatable {
    /// Highest index known to be replicated on the follower.
    package var match: UInt64 = 0
    /// Next index to send.
    package var next: UInt64
    package var state: ProgressState = .probe
    /// Index of the snapshot being sent (snapshot state).
    package var pendingSnapshot: UInt64 = 0
    /// Heard from the follower since the last check-quorum round.
    package var recentActive = false
    /// In probe state: an append was sent and not yet answered.
    package var probeSent = false
    package var inflights: Inflights

    package init(next: UInt64, match: UInt64 = 0, maxInflight: Int) {
        self.next = next
        self.match = match
        self.inflights = Inflights(capacity: maxInflight)
    }

    private mutating func resetState(_ s: ProgressState) {
        probeSent = false
        pendingSnapshot = 0
        state = s
        inflights.reset()
    }

    package mutating func becomeProbe() {
        if state == .snapshot {
            let ps = pendingSnapshot
            resetState(.probe)
            next = max(match + 1, ps + 1)
        } else {
            resetState(.probe)
            next = match + 1
        }
    }

    package mutating func becomeReplicate() {
        resetState(.replicate)
        next = match + 1
    }

    package mutating func becomeSnapshot(_ index: UInt64) {
        resetState(.snapshot)
        pendingSnapshot = index
        next = index + 1
    }

    /// Records an ack for `n`. Returns true if `match` advanced.
    package mutating func maybeUpdate(_ n: UInt64) -> Bool {
        var updated = false
        if match < n {
            match = n
            updated = true
            probeSent = false
        }
        next = max(next, n + 1)
        return updated
    }

    /// Handles a rejection of the append sent after `rejected`; `matchHint` is the
    /// highest index that may match. Returns false if the rejection is stale.
    package mutating func maybeDecrTo(rejected: UInt64, matchHint: UInt64) -> Bool {
        if state == .replicate {
            if rejected <= match { return false }
            next = match + 1
            return true
        }
        if next == 0 || next - 1 != rejected { return false }
        next = max(min(rejected, matchHint + 1), match + 1)
        probeSent = false
        return true
    }

    /// Whether sending appends to this follower is currently throttled.
    package var isPaused: Bool {
        switch state {
        case .probe: return probeSent
        case .replicate: return inflights.isFull
        case .snapshot: return true
        }
    }

    /// Bookkeeping after sending an append with `count` entries ending at `lastIndex`.
    package mutating func sentEntries(count: Int, lastIndex: UInt64) {
        switch state {
        case .replicate:
            if count > 0 {
                next = lastIndex + 1
                inflights.add(lastIndex)
            }
        case .probe:
            probeSent = true
        case .snapshot:
            break
        }
    }
}
