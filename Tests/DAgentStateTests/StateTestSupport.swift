import XCTest
import DAgentState

/// UTF-8 bytes of a string (keys and values in tests).
func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Seeded generator for reproducible random tests (splitmix64 step).
struct StateTestRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension KVStateMachine {
    /// Applies a put of string key/value.
    @discardableResult
    mutating func put(_ key: String, _ value: String, lease: UInt64? = nil) -> StateResult {
        apply(.put(key: bytes(key), value: bytes(value), lease: lease))
    }

    /// The string value at a key, if any.
    func value(_ key: String) -> String? {
        get(bytes(key)).map { String(decoding: $0.value, as: UTF8.self) }
    }

    /// All events in history from `revision` (fails the test on `.compacted`).
    func allEvents(prefix: String = "", from revision: Int64 = 1,
                   file: StaticString = #filePath, line: UInt = #line) -> [KVEvent] {
        switch events(prefix: bytes(prefix), fromRevision: revision) {
        case let .events(events, _): return events
        case let .compacted(rev):
            XCTFail("unexpectedly compacted at \(rev)", file: file, line: line)
            return []
        }
    }
}

extension StateResult {
    /// The revision carried by an `.ok` reply, or nil.
    var replyRevision: Int64? {
        guard case let .ok(reply) = self else { return nil }
        switch reply {
        case let .put(revision, _), let .deleted(revision, _), let .record(_, revision),
             let .records(_, _, revision), let .txn(_, revision, _), let .lease(_, revision),
             let .leaseRevoked(_, _, revision), let .ticked(_, _, revision), let .locked(_, revision),
             let .unlocked(_, revision):
            return revision
        case .registered, .released:
            return nil
        }
    }
}
