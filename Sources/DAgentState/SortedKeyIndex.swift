/// The keys of a `KVStore` in byte order, kept as a list of sorted chunks of at most
/// `chunkLimit` keys each. A new or removed key moves the references of one chunk (and of the
/// chunk list when a chunk splits or empties), not of the whole index as one sorted array did:
/// with a million keys that was 4 MB of `memmove` per new key. A copy of the store (a snapshot
/// encoded in the background) also shares every chunk but the ones written after it.
///
/// Invariants: no chunk is empty; keys are strictly ascending within a chunk and from the
/// last key of one chunk to the first of the next.
struct SortedKeyIndex: Sendable {
    let chunkLimit: Int
    private(set) var count = 0
    private var chunks: [[[UInt8]]] = []

    init(chunkLimit: Int = 512) {
        precondition(chunkLimit >= 2, "a chunk must hold at least 2 keys")
        self.chunkLimit = chunkLimit
    }

    /// The first chunk whose last key is ≥ `key` (`chunks.count` if there is none).
    private func chunkIndex(_ key: [UInt8]) -> Int {
        var lo = 0, hi = chunks.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if KVStore.precedes(chunks[mid][chunks[mid].count - 1], key) { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// First position in `chunk` whose key is ≥ `key`.
    private static func lowerBound(_ chunk: [[UInt8]], _ key: [UInt8]) -> Int {
        var lo = 0, hi = chunk.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if KVStore.precedes(chunk[mid], key) { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Adds `key`, which must not be in the index.
    mutating func insert(_ key: [UInt8]) {
        count += 1
        guard !chunks.isEmpty else {
            chunks.append([key])
            return
        }
        let c = min(chunkIndex(key), chunks.count - 1)   // past every key: the last chunk
        chunks[c].insert(key, at: Self.lowerBound(chunks[c], key))
        if chunks[c].count > chunkLimit {
            let half = chunks[c].count / 2
            let upper = Array(chunks[c][half...])
            chunks[c].removeSubrange(half...)
            chunks.insert(upper, at: c + 1)
        }
    }

    /// Removes `key`; false if it was not in the index.
    @discardableResult
    mutating func remove(_ key: [UInt8]) -> Bool {
        let c = chunkIndex(key)
        guard c < chunks.count else { return false }
        let at = Self.lowerBound(chunks[c], key)
        guard at < chunks[c].count, chunks[c][at] == key else { return false }
        count -= 1
        chunks[c].remove(at: at)
        if chunks[c].isEmpty { chunks.remove(at: c) }
        return true
    }

    /// Adds `key`, which must sort after every key in the index (a snapshot's keys, in order).
    mutating func append(_ key: [UInt8]) {
        count += 1
        if let last = chunks.indices.last, chunks[last].count < chunkLimit {
            chunks[last].append(key)
        } else {
            chunks.append([key])
        }
    }

    /// Calls `body` with every key ≥ `key`, in order, until it returns false.
    func forEach(from key: [UInt8], _ body: ([UInt8]) -> Bool) {
        var c = chunkIndex(key)
        guard c < chunks.count else { return }
        var i = Self.lowerBound(chunks[c], key)
        while c < chunks.count {
            let chunk = chunks[c]
            while i < chunk.count {
                if !body(chunk[i]) { return }
                i += 1
            }
            c += 1
            i = 0
        }
    }
}
