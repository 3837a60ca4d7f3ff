import CDAgentIPC
import Foundation
import DAgentRouting
import DAgentLink
import Logging

/// The agent's name table in shared memory: name → channel (the message type
/// of the leaf that holds the name, or of the leaf it sits behind). Leaves
/// read it to send to a brother directly; the agent is its only writer.
///
/// Readers in other processes run while the agent writes, so the table is
/// guarded by a seqlock: the writer makes the sequence odd, writes, and makes
/// it even again (release); a reader reads the sequence (acquire), reads what
/// it needs, and retries if the sequence was odd or has moved. The sequence
/// is also the table's generation: a reader caches routes and drops its cache
/// when the generation changes.
///
/// Layout (little-endian, native alignment):
/// ```
/// header, 128 bytes:
///   0 u32 magic 'DQNT'   4 u32 version   8 u64 sequence   16 u64 incarnation (random per agent start)
///   24 u64 agent pid     32 u64 heartbeat (CLOCK_MONOTONIC ns)   40 u32 slots   44 u32 live   48 u32 tombstones
///   52 u32 send timeout (ms)   56 u64 heartbeat interval (ns)
/// slots × 272 bytes, open addressing with linear probing on FNV-1a(name):
///   0 u64 channel (0 empty, UInt64.max tombstone)   8 u32 hash   12 u16 name length   14 name bytes (≤ 255)
/// ```
/// The table is a cache: a name missing from it (or a full table) only means
/// "send it via the agent", which is always correct.
public struct NameTableLayout {
    public static let magic: UInt32 = 0x544E_5144   // "DQNT"
    public static let version: UInt32 = 1
    public static let headerBytes = 128
    public static let slotBytes = 272
    public static let maxName = 255
    package static let tombstone = UInt64.max

    /// Bytes needed for `slots` slots.
    public static func size(slots: Int) -> Int { headerBytes + slots * slotBytes }

    /// Slots for a node that allows `maxChildren` children: twice that, a power of two, 64...65536.
    public static func slots(forChildren maxChildren: Int) -> Int {
        var n = 64
        while n < min(65536, maxChildren * 2) { n <<= 1 }
        return n
    }

    package static func hash(_ name: UnsafeRawBufferPointer) -> UInt32 {
        var h: UInt32 = 2_166_136_261
        for b in name {
            h ^= UInt32(b)
            h = h &* 16_777_619
        }
        return h
    }
}

/// What the header says about the agent that owns the table.
public struct NameTableOwner: Equatable, Sendable {
    public var pid: Int32
    public var incarnation: UInt64
    public var heartbeatNs: UInt64
    public var heartbeatIntervalNs: UInt64
    public var sendTimeoutMs: UInt32

    /// True if the owner process exists and its heartbeat is recent.
    public func isAlive(nowNs: UInt64) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        return !isStale(nowNs: nowNs)
    }

    /// True if the heartbeat is older than three intervals plus a second.
    public func isStale(nowNs: UInt64) -> Bool {
        let limit = 3 * max(heartbeatIntervalNs, 100_000_000) + 1_000_000_000
        return nowNs > heartbeatNs && nowNs - heartbeatNs > limit
    }
}

/// The agent's side: initialises the table and writes it. Single writer.
public final class NameTableWriter {
    package let base: UnsafeMutableRawPointer
    public let slots: Int
    /// name → slot index, the writer's own index of what is in the table.
    private var index: [String: Int] = [:]
    private var tombstones = 0
    private var writing = false

    /// Formats `memory` (at least `NameTableLayout.size(slots:)` bytes) as an empty table.
    public init(memory: UnsafeMutableRawPointer, slots: Int, pid: Int32, incarnation: UInt64,
                heartbeatIntervalNs: UInt64, sendTimeoutMs: UInt32) {
        precondition(slots > 0 && slots & (slots - 1) == 0, "slots must be a power of two")
        base = memory
        self.slots = slots
        memset(memory, 0, NameTableLayout.size(slots: slots))
        memory.storeBytes(of: NameTableLayout.version, toByteOffset: 4, as: UInt32.self)
        memory.storeBytes(of: incarnation, toByteOffset: 16, as: UInt64.self)
        memory.storeBytes(of: UInt64(pid), toByteOffset: 24, as: UInt64.self)
        memory.storeBytes(of: UInt32(slots), toByteOffset: 40, as: UInt32.self)
        memory.storeBytes(of: sendTimeoutMs, toByteOffset: 52, as: UInt32.self)
        memory.storeBytes(of: heartbeatIntervalNs, toByteOffset: 56, as: UInt64.self)
        dagent_store_release_u64(memory + 8, 0)
        // The magic last: a reader that sees it sees a formatted table.
        dagent_fence_release()
        memory.storeBytes(of: NameTableLayout.magic, toByteOffset: 0, as: UInt32.self)
    }

    /// Names in the table.
    public var count: Int { index.count }
    /// The current generation (even).
    public var generation: UInt64 { dagent_load_relaxed_u64(base + 8) }
    public func contains(_ name: String) -> Bool { index[name] != nil }
    /// Every name in the table.
    public var names: [String] { Array(index.keys) }
    public func channel(of name: String) -> UInt64? {
        index[name].map { base.load(fromByteOffset: slotOffset($0), as: UInt64.self) }
    }

    /// Records the agent's liveness (outside the seqlock: one atomic store).
    public func heartbeat(nowNs: UInt64) {
        dagent_store_release_u64(base + 32, nowNs)
    }

    /// Applies changes as one write: readers see all of them or none.
    /// Returns the names that did not fit (the table is full).
    @discardableResult
    public func update(set: [(name: String, channel: UInt64)], remove: [String]) -> [String] {
        guard !set.isEmpty || !remove.isEmpty else { return [] }
        beginWrite()
        defer { endWrite() }
        for name in remove { removeLocked(name) }
        var refused: [String] = []
        for (name, channel) in set where !setLocked(name, channel) { refused.append(name) }
        return refused
    }

    private func beginWrite() {
        precondition(!writing)
        writing = true
        let s = dagent_load_relaxed_u64(base + 8)
        dagent_store_relaxed_u64(base + 8, s &+ 1)   // odd: readers retry
        dagent_fence_release()
    }

    private func endWrite() {
        let s = dagent_load_relaxed_u64(base + 8)
        dagent_store_release_u64(base + 8, s &+ 1)   // even again, everything above visible
        writing = false
        base.storeBytes(of: UInt32(index.count), toByteOffset: 44, as: UInt32.self)
        base.storeBytes(of: UInt32(tombstones), toByteOffset: 48, as: UInt32.self)
    }

    @inline(__always) package func slotOffset(_ i: Int) -> Int { NameTableLayout.headerBytes + i * NameTableLayout.slotBytes }

    private func setLocked(_ name: String, _ channel: UInt64) -> Bool {
        if let i = index[name] {
            base.storeBytes(of: channel, toByteOffset: slotOffset(i), as: UInt64.self)
            return true
        }
        if (index.count + 1) * 4 > slots * 3 { return false }
        if tombstones > 0 && (index.count + tombstones + 1) * 4 > slots * 3 { rebuildLocked() }
        return insertLocked(name, channel)
    }

    /// Inserts a name known not to be in the table (there is room).
    private func insertLocked(_ name: String, _ channel: UInt64) -> Bool {
        var bytes = name
        guard let i = bytes.withUTF8({ u -> Int? in
            guard u.count > 0 && u.count <= NameTableLayout.maxName else { return nil }
            let h = NameTableLayout.hash(UnsafeRawBufferPointer(u))
            var i = Int(h) & (slots - 1)
            while true {
                let c = base.load(fromByteOffset: slotOffset(i), as: UInt64.self)
                if c == 0 || c == NameTableLayout.tombstone {
                    if c == NameTableLayout.tombstone { tombstones -= 1 }
                    let o = slotOffset(i)
                    base.storeBytes(of: h, toByteOffset: o + 8, as: UInt32.self)
                    base.storeBytes(of: UInt16(u.count), toByteOffset: o + 12, as: UInt16.self)
                    (base + o + 14).copyMemory(from: u.baseAddress!, byteCount: u.count)
                    base.storeBytes(of: channel, toByteOffset: o, as: UInt64.self)
                    return i
                }
                i = (i + 1) & (slots - 1)
            }
        }) else { return false }
        index[name] = i
        return true
    }

    private func removeLocked(_ name: String) {
        guard let i = index.removeValue(forKey: name) else { return }
        base.storeBytes(of: NameTableLayout.tombstone, toByteOffset: slotOffset(i), as: UInt64.self)
        tombstones += 1
    }

    /// Rewrites every live entry into a clean table (drops tombstones).
    private func rebuildLocked() {
        let live = index.map { ($0.key, base.load(fromByteOffset: slotOffset($0.value), as: UInt64.self)) }
        memset(base + NameTableLayout.headerBytes, 0, slots * NameTableLayout.slotBytes)
        index = [:]
        tombstones = 0
        for (name, channel) in live { _ = insertLocked(name, channel) }
    }
}

/// A leaf's side: reads the table another process writes.
public struct NameTableReader {
    package let base: UnsafeRawPointer
    public let slots: Int

    /// Checks the header of `memory` (`size` bytes). Nil if it is not a formatted table.
    public init?(memory: UnsafeRawPointer, size: Int) {
        guard size >= NameTableLayout.headerBytes,
              memory.load(fromByteOffset: 0, as: UInt32.self) == NameTableLayout.magic,
              memory.load(fromByteOffset: 4, as: UInt32.self) == NameTableLayout.version else { return nil }
        dagent_fence_acquire()
        let slots = Int(memory.load(fromByteOffset: 40, as: UInt32.self))
        guard slots > 0, slots & (slots - 1) == 0, NameTableLayout.size(slots: slots) <= size else { return nil }
        base = memory
        self.slots = slots
    }

    /// The generation: changes whenever the agent changes the table (odd while it writes).
    @inline(__always)
    public var generation: UInt64 { dagent_load_acquire_u64(base + 8) }

    public var owner: NameTableOwner {
        NameTableOwner(pid: Int32(truncatingIfNeeded: base.load(fromByteOffset: 24, as: UInt64.self)),
                       incarnation: base.load(fromByteOffset: 16, as: UInt64.self),
                       heartbeatNs: dagent_load_acquire_u64(base + 32),
                       heartbeatIntervalNs: base.load(fromByteOffset: 56, as: UInt64.self),
                       sendTimeoutMs: base.load(fromByteOffset: 52, as: UInt32.self))
    }

    /// How often a reader retries while the agent writes before it gives up.
    /// An agent killed in the middle of a write leaves the sequence odd for
    /// good; a reader then answers "not in the table" (send via the agent),
    /// which is always safe, instead of spinning forever.
    package static let maxRetries = 2000

    /// Live entries (a consistent snapshot; 0 if the table stays busy).
    public var count: Int {
        for attempt in 0..<Self.maxRetries {
            let s = generation
            if s & 1 == 1 {
                if attempt > 64 { sched_yield() }
                continue
            }
            let n = Int(base.load(fromByteOffset: 44, as: UInt32.self))
            dagent_fence_acquire()
            if dagent_load_relaxed_u64(base + 8) == s { return n }
        }
        return 0
    }

    /// The channel holding `name`, and the generation it was read at.
    /// Nil channel: not in the table (send via the agent).
    public func lookup(_ name: String) -> (channel: UInt64?, generation: UInt64) {
        var name = name
        return name.withUTF8 { u in lookup(UnsafeRawBufferPointer(u)) }
    }

    public func lookup(_ name: UnsafeRawBufferPointer) -> (channel: UInt64?, generation: UInt64) {
        guard name.count > 0 && name.count <= NameTableLayout.maxName else { return (nil, generation) }
        let h = NameTableLayout.hash(name)
        var last: UInt64 = 1
        for attempt in 0..<Self.maxRetries {
            let s = dagent_load_acquire_u64(base + 8)
            last = s
            if s & 1 == 1 {
                if attempt > 64 { sched_yield() }
                continue
            }
            let found = probe(name, hash: h)
            dagent_fence_acquire()
            if dagent_load_relaxed_u64(base + 8) == s { return (found, s) }
        }
        return (nil, last)
    }

    /// One probe sequence; may see torn data while the agent writes (the
    /// caller's sequence check rejects the result then), so it is bounded.
    private func probe(_ name: UnsafeRawBufferPointer, hash h: UInt32) -> UInt64? {
        var i = Int(h) & (slots - 1)
        for _ in 0..<slots {
            let o = NameTableLayout.headerBytes + i * NameTableLayout.slotBytes
            let c = base.load(fromByteOffset: o, as: UInt64.self)
            if c == 0 { return nil }
            if c != NameTableLayout.tombstone && base.load(fromByteOffset: o + 8, as: UInt32.self) == h {
                let len = Int(base.load(fromByteOffset: o + 12, as: UInt16.self))
                if len == name.count && memcmp(base + o + 14, name.baseAddress!, len) == 0 { return c }
            }
            i = (i + 1) & (slots - 1)
        }
        return nil
    }
}
