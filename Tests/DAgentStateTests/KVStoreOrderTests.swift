import XCTest
@testable import DAgentState

/// The key index keeps byte order with its own comparison.
final class KVStoreOrderTests: XCTestCase {
    /// `KVStore.precedes` is `lexicographicallyPrecedes` on every pair of a set of keys with
    /// shared prefixes, empty keys, high bytes and equal keys.
    func testPrecedesIsByteOrder() {
        var keys: [[UInt8]] = [[], [0], [0, 0], [0xFF], [0xFF, 0], [1, 2, 3], [1, 2], [1, 2, 4], [0x7F], [0x80]]
        var rng = StateTestRNG(seed: 7)
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
        var rng = StateTestRNG(seed: 11)
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

extension KVStoreOrderTests {
    func all(_ index: SortedKeyIndex, from key: [UInt8] = [], max: Int = .max) -> [[UInt8]] {
        var out: [[UInt8]] = []
        index.forEach(from: key) { k in
            guard out.count < max else { return false }
            out.append(k)
            return true
        }
        return out
    }

    /// The chunked index against a sorted array under random inserts and removes (chunks of 2,
    /// 3, 4 and 512 keys, so that chunks split and empty often): the same keys in the same
    /// order, from any starting key, and a copy is not changed by later writes.
    func testSortedKeyIndexMatchesASortedArray() {
        let alphabet: [UInt8] = [0, 1, 2, 0xFF]
        for limit in [2, 3, 4, 512] {
            var index = SortedKeyIndex(chunkLimit: limit)
            var reference: [[UInt8]] = []
            var rng = StateTestRNG(seed: UInt64(limit))
            func randomKey() -> [UInt8] { (0..<Int(rng.next() % 5)).map { _ in alphabet[Int(rng.next() % 4)] } }
            func position(_ key: [UInt8]) -> Int { reference.firstIndex { !$0.lexicographicallyPrecedes(key) } ?? reference.count }
            var copy: (SortedKeyIndex, [[UInt8]])?
            for step in 0..<4000 {
                let key = randomKey()
                let at = position(key)
                let present = at < reference.count && reference[at] == key
                if rng.next() % 3 != 0 {
                    if !present {
                        index.insert(key)
                        reference.insert(key, at: at)
                    }
                } else {
                    XCTAssertEqual(index.remove(key), present, "limit \(limit) step \(step) remove \(key)")
                    if present { reference.remove(at: at) }
                }
                XCTAssertEqual(index.count, reference.count)
                if step % 97 == 0 {
                    XCTAssertEqual(all(index), reference, "limit \(limit) step \(step)")
                    let from = randomKey()
                    XCTAssertEqual(all(index, from: from), Array(reference[position(from)...]))
                    XCTAssertEqual(all(index, from: from, max: 3), Array(reference[position(from)...].prefix(3)))
                }
                if step == 2000 { copy = (index, reference) }
            }
            XCTAssertEqual(all(copy!.0), copy!.1, "a copy taken at step 2000 is not changed by later writes")
            // Loading keys in order (a snapshot restore) gives the same index as inserting them.
            var loaded = SortedKeyIndex(chunkLimit: limit)
            for k in reference { loaded.append(k) }
            XCTAssertEqual(all(loaded), reference)
            XCTAssertEqual(loaded.count, reference.count)
            for k in reference.shuffled() { XCTAssertTrue(loaded.remove(k)) }
            XCTAssertEqual(loaded.count, 0)
            XCTAssertEqual(all(loaded), [])
        }
    }
}
