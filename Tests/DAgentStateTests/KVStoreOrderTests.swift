import XCTest
@testable import DAgentState

/// The key index keeps byte order with its own comparison.
final class KVStoreOrderTests: XCTestCase {
    /// `KVStore.precedes` is `lexicographicallyPrecedes` on every pair of a set of keys with
    /// shared prefixes, empty keys, high bytes and equal keys.
    func testPrecedesIsByteOrder() {
        var keys: [[UInt8]] = [[], [0], [0, 0], [0xFF], [0xFF, 0], [1, 2, 3], [1, 2], [1, 2, 4], [0x7F], [0x80]]
        var rng = SplitMix(seed: 7)
        for _ in 0..<200 {
            let n = Int(rng.next() % 12)
            keys.append((0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next() % 4 == 0 ? rng.next() : rng.next() % 3) })
        }
        for a in keys {
            for b in keys {
                XCTAssertEqual(KVStore.precedes(a, b), a.lexicographicallyPrecedes(b), "\(a) \(b)")
            }
        }
    }

    /// Random puts and deletes leave ranges in byte order, as a sorted reference says.
    func testRangesStaySortedUnderRandomWrites() {
        var m = KVStateMachine()
        var reference = Set<[UInt8]>()
        var rng = SplitMix(seed: 11)
        for _ in 0..<3000 {
            let key = Array("k/\(rng.next() % 500)/\(rng.next() % 7)".utf8)
            if rng.next() % 4 == 0 {
                _ = m.apply(.delete(key: key))
                reference.remove(key)
            } else {
                _ = m.apply(.put(key: key, value: [1], lease: nil))
                reference.insert(key)
            }
        }
        XCTAssertEqual(m.range(prefix: []).records.map(\.key), reference.sorted { $0.lexicographicallyPrecedes($1) })
        let prefix = Array("k/1".utf8)
        XCTAssertEqual(m.range(prefix: prefix).records.map(\.key),
                       reference.filter { $0.starts(with: prefix) }.sorted { $0.lexicographicallyPrecedes($1) })
    }
}

/// A small seeded generator (SplitMix64), so the cases are the same on every run.
struct SplitMix {
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
