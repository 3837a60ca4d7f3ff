import Foundation
import XCTest
@testable import DAgentMsgq
@testable import DAgentRouting

/// The shared-memory name table, on ordinary memory: writer and readers,
/// the seqlock generation, tombstones and rebuilds, and torn reads.
final class NameTableTests: XCTestCase {
    final class Memory {
        let slots: Int
        let pointer: UnsafeMutableRawPointer
        init(slots: Int) {
            self.slots = slots
            pointer = UnsafeMutableRawPointer.allocate(byteCount: NameTableLayout.size(slots: slots), alignment: 64)
        }
        deinit { pointer.deallocate() }
        var size: Int { NameTableLayout.size(slots: slots) }
    }

    /// Tables made by a test stay allocated until it ends.
    var memories: [Memory] = []

    func make(slots: Int = 64) -> (Memory, NameTableWriter, NameTableReader) {
        let m = Memory(slots: slots)
        memories.append(m)
        let w = NameTableWriter(memory: m.pointer, slots: slots, pid: getpid(), incarnation: 99,
                                heartbeatIntervalNs: 1_000_000_000, sendTimeoutMs: 1500)
        let r = NameTableReader(memory: UnsafeRawPointer(m.pointer), size: m.size)!
        return (m, w, r)
    }

    func testSetLookupRemove() {
        let (_, w, r) = make()
        XCTAssertNil(r.lookup("a").channel)
        let g0 = r.generation
        w.update(set: [("a", 10), ("b", 11)], remove: [])
        XCTAssertEqual(r.lookup("a").channel, 10)
        XCTAssertEqual(r.lookup("b").channel, 11)
        XCTAssertNil(r.lookup("c").channel)
        XCTAssertGreaterThan(r.generation, g0)
        XCTAssertEqual(r.generation % 2, 0, "even when no write is in progress")
        XCTAssertEqual(r.count, 2)
        w.update(set: [("a", 12)], remove: ["b"])
        XCTAssertEqual(r.lookup("a").channel, 12, "a name that moved to another channel")
        XCTAssertNil(r.lookup("b").channel)
        XCTAssertEqual(r.count, 1)
        XCTAssertEqual(w.names, ["a"])
    }

    func testHeaderDescribesTheOwner() {
        let (_, w, r) = make()
        w.heartbeat(nowNs: 5_000_000_000)
        let owner = r.owner
        XCTAssertEqual(owner.pid, getpid())
        XCTAssertEqual(owner.incarnation, 99)
        XCTAssertEqual(owner.sendTimeoutMs, 1500)
        XCTAssertEqual(owner.heartbeatNs, 5_000_000_000)
        XCTAssertFalse(owner.isStale(nowNs: 6_000_000_000))
        XCTAssertTrue(owner.isStale(nowNs: 10_000_000_000), "3 intervals + 1 s without a heartbeat")
        XCTAssertTrue(owner.isAlive(nowNs: 6_000_000_000), "this process, recent heartbeat")
        var dead = owner
        dead.pid = 0x3FFF_FFF0
        XCTAssertFalse(dead.isAlive(nowNs: 6_000_000_000), "no such process")
    }

    func testUnformattedMemoryIsRefused() {
        let m = Memory(slots: 64)
        memset(m.pointer, 0, m.size)
        XCTAssertNil(NameTableReader(memory: UnsafeRawPointer(m.pointer), size: m.size))
        XCTAssertNil(NameTableReader(memory: UnsafeRawPointer(m.pointer), size: 16))
    }

    func testTombstonesAreReusedAndRebuilt() {
        let (_, w, r) = make(slots: 64)
        // 48 live entries is the 3/4 load limit; churn far more than that through the table.
        for round in 0..<20 {
            let names = (0..<40).map { "n\(round)-\($0)" }
            w.update(set: names.enumerated().map { ($1, UInt64(100 + $0)) }, remove: [])
            for (i, n) in names.enumerated() { XCTAssertEqual(r.lookup(n).channel, UInt64(100 + i), n) }
            w.update(set: [], remove: names)
            for n in names { XCTAssertNil(r.lookup(n).channel, n) }
        }
        XCTAssertEqual(w.count, 0)
    }

    func testAFullTableRefusesAndSaysWhich() {
        let (_, w, r) = make(slots: 64)
        let names = (0..<60).map { "x\($0)" }
        let refused = w.update(set: names.map { ($0, 7) }, remove: [])
        XCTAssertEqual(refused.count, 60 - 48, "a table keeps at most 3/4 of its slots")
        XCTAssertEqual(r.count, 48)
        for n in refused { XCTAssertNil(r.lookup(n).channel) }
    }

    func testLongAndUnicodeNames() {
        let (_, w, r) = make()
        let long = String(repeating: "z", count: 255)
        w.update(set: [(long, 5), ("día", 6)], remove: [])
        XCTAssertEqual(r.lookup(long).channel, 5)
        XCTAssertEqual(r.lookup("día").channel, 6)
        XCTAssertNil(r.lookup(long + "z").channel)
    }

    /// A reader that runs while the writer is half way through a change never
    /// returns the half-written value: it waits for the write to end, or (if
    /// it takes too long) answers "not in the table", which means "via the agent".
    func testReaderNeverSeesAWriteInProgress() {
        let (m, w, r) = make()
        w.update(set: [("a", 10)], remove: [])
        let seq = m.pointer.load(fromByteOffset: 8, as: UInt64.self)
        // A writer mid-update: sequence odd, the slot of "a" already overwritten.
        m.pointer.storeBytes(of: seq + 1, toByteOffset: 8, as: UInt64.self)
        let slot = NameTableLayout.headerBytes + (0..<64).first { i in
            let o = NameTableLayout.headerBytes + i * NameTableLayout.slotBytes
            return m.pointer.load(fromByteOffset: o, as: UInt64.self) == 10
        }! * NameTableLayout.slotBytes
        m.pointer.storeBytes(of: UInt64(0xDEAD), toByteOffset: slot, as: UInt64.self)
        for _ in 0..<100 { XCTAssertNotEqual(r.lookup("a").channel, 0xDEAD) }
        // The write ends: readers see the new value.
        m.pointer.storeBytes(of: UInt64(11), toByteOffset: slot, as: UInt64.self)
        m.pointer.storeBytes(of: seq + 2, toByteOffset: 8, as: UInt64.self)
        XCTAssertEqual(r.lookup("a").channel, 11)
        XCTAssertEqual(r.lookup("a").generation, seq + 2)
    }

    /// An agent killed half way through a write leaves the sequence odd for
    /// good: readers give up and answer "not in the table" (via the agent).
    func testAWriteThatNeverEndsDoesNotHangReaders() {
        let (m, w, r) = make()
        w.update(set: [("a", 10)], remove: [])
        let seq = m.pointer.load(fromByteOffset: 8, as: UInt64.self)
        m.pointer.storeBytes(of: seq + 1, toByteOffset: 8, as: UInt64.self)
        XCTAssertNil(r.lookup("a").channel)
        XCTAssertEqual(r.count, 0)
    }

    /// One writer churning, readers checking every answer: a name maps to its
    /// own channel or to nothing, never to a torn or foreign value.
    func testConcurrentReadersSeeConsistentEntries() {
        let (_, w, r) = make(slots: 1024)
        let stop = LockedBox(false)
        let errors = LockedBox(0)
        let lookups = LockedBox(0)
        @Sendable func channel(_ i: Int) -> UInt64 { UInt64(1000 + i) }
        let group = DispatchGroup()
        for t in 0..<2 {
            group.enter()
            DispatchQueue.global().async {
                var n = 0, bad = 0, i = t
                while !stop.value {
                    i = (i &* 1103515245 &+ 12345) & 0x7FFF_FFFF
                    let k = i % 600
                    if let c = r.lookup("name-\(k)").channel, c != channel(k) { bad += 1 }
                    n += 1
                }
                errors.value += bad
                lookups.value += n
                group.leave()
            }
        }
        var live = Set<Int>()
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            var set: [(name: String, channel: UInt64)] = []
            var remove: [String] = []
            var touched = Set<Int>()
            for _ in 0..<8 {
                let k = Int.random(in: 0..<600, using: &rng)
                guard touched.insert(k).inserted else { continue }
                if live.contains(k) { remove.append("name-\(k)"); live.remove(k) } else if live.count < 700 {
                    set.append(("name-\(k)", channel(k)))
                    live.insert(k)
                }
            }
            let refused = w.update(set: set, remove: remove)
            for n in refused { live.remove(Int(n.dropFirst(5))!) }
        }
        stop.value = true
        group.wait()
        XCTAssertEqual(errors.value, 0, "torn or foreign reads in \(lookups.value) lookups")
        XCTAssertGreaterThan(lookups.value, 1000)
        for k in 0..<600 { XCTAssertEqual(r.lookup("name-\(k)").channel, live.contains(k) ? channel(k) : nil) }
    }
}

/// A value shared between test threads.
final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var _value: T
    init(_ value: T) { _value = value }
    var value: T {
        get { lock.lock(); defer { lock.unlock() }; return _value }
        set { lock.lock(); defer { lock.unlock() }; _value = newValue }
    }
}
