import DAgentRaft
import Foundation
import XCTest
@testable import DAgentRaftStorage
import DAgentTestSupport

/// Crash at every persistence step: a fixed workload (appends with conflicts, group
/// commits, local compactions, an installed snapshot, segment rollovers and removals) is
/// run once per (step, occurrence); the injected crash throws at exactly that point.
/// After reopening, the state must be exactly the state after the last acknowledged
/// operation, or after the interrupted one (if it got far enough) — both for a process
/// crash (written bytes survive) and a power loss (bytes not yet synced are lost).
final class CrashPointTests: TempDirTestCase {
    private enum Op {
        case save(Ready)
        case group([Ready])
        case compact(Snapshot)

        func apply(_ s: any RaftStorage) throws {
            switch self {
            case let .save(rd): try s.save(rd)
            case let .group(rds):
                if let d = s as? DiskStorage { try d.save(rds) } else { for rd in rds { try s.save(rd) } }
            case let .compact(snap): try s.compact(with: snap)
            }
        }
    }

    private func snap(_ index: UInt64, _ term: UInt64) -> Snapshot {
        Snapshot(metadata: SnapshotMetadata(index: index, term: term, membership: Membership(voters: [1, 2, 3])),
                 data: Array("sm@\(index)".utf8))
    }

    private func hs(_ term: UInt64, _ vote: NodeID, _ commit: UInt64) -> HardState {
        HardState(term: term, vote: vote, commit: commit)
    }

    private var workload: [Op] {
        [
            .save(Ready(hardState: hs(1, 1, 0), entries: makeEntries(1...3, term: 1, size: 30))),
            .save(Ready(hardState: hs(1, 1, 3), entries: makeEntries(4...8, term: 1, size: 30))),
            .save(Ready(hardState: hs(2, 2, 5), entries: makeEntries(6...7, term: 2, size: 30))), // conflict
            .compact(snap(5, 1)),
            .group([Ready(entries: makeEntries(8...10, term: 2, size: 30)), Ready(hardState: hs(2, 2, 8))]),
            .compact(snap(8, 2)),
            .save(Ready(hardState: hs(3, 0, 20), snapshot: snap(20, 3))), // from the leader
            .save(Ready(hardState: hs(3, 0, 22), entries: makeEntries(21...25, term: 3, size: 30))),
            .compact(snap(23, 3)), // removes every segment before the installed snapshot
            .save(Ready(hardState: hs(4, 3, 25), entries: makeEntries(26...27, term: 4, size: 30))),
        ]
    }

    private func options(hook: ((PersistStep) throws -> Void)?) -> DiskStorageOptions {
        var o = DiskStorageOptions(segmentSize: 300, keepSnapshots: 2)
        o.crashHook = hook
        return o
    }

    func testCrashAtEveryPersistenceStep() throws {
        // Expected states: model[k] = after the first k operations.
        let mem = MemoryStorage()
        var model = [try StorageState(mem)]
        for op in workload {
            try op.apply(mem)
            model.append(try StorageState(mem))
        }
        // Sanity: without crashes the disk ends where the model ends.
        let cleanDir = tmp + "/clean"
        let clean = try DiskStorage(directory: cleanDir, options: options(hook: nil))
        for op in workload { try op.apply(clean) }
        XCTAssertEqual(try StorageState(clean), model.last)
        XCTAssertGreaterThan(clean.walStats.segmentsCreated, 2, "the workload rolls over segments")
        clean.close()

        var runs = 0, powerLossRuns = 0
        var outcomes: [PersistStep: Set<String>] = [:]
        for step in PersistStep.allCases {
            var occurrence = 0
            while true {
                occurrence += 1
                let dir = tmp + "/\(step.rawValue)-\(occurrence)"
                var seen = 0
                var durable: [String: Int] = [:]
                func recordDurable() {
                    for name in Disk.list(dir + "/wal") where name.hasSuffix(".log") {
                        durable[dir + "/wal/" + name] = Disk.size(dir + "/wal/" + name)
                    }
                }
                let hook: (PersistStep) throws -> Void = { s in
                    if s == .afterWALSync || s == .afterSegmentCreate { recordDurable() }
                    if s == step {
                        seen += 1
                        if seen == occurrence { throw InjectedCrash(step: s) }
                    }
                }
                var crashedIn: Int?
                do {
                    let d = try DiskStorage(directory: dir, options: options(hook: hook))
                    for (i, op) in workload.enumerated() {
                        do { try op.apply(d) } catch is InjectedCrash { crashedIn = i; break }
                    }
                    d.close()
                } catch is InjectedCrash {
                    crashedIn = -1 // while creating the first segment
                }
                guard let k = crashedIn else { break } // no such occurrence: step done
                runs += 1
                let allowed = k < 0 ? [model[0]] : [model[k], model[k + 1]]
                // Process crash: everything written is still there.
                let crashCopy = dir + "-powerloss"
                try FileManager.default.copyItem(atPath: dir, toPath: crashCopy)
                defer { try? FileManager.default.removeItem(atPath: crashCopy) }
                let r1 = try DiskStorage(directory: dir, options: options(hook: nil))
                let got = try StorageState(r1)
                XCTAssertTrue(allowed.contains(got), "\(step) #\(occurrence) in op \(k): got \(got), allowed \(allowed)")
                outcomes[step, default: []].insert(got == allowed.first ? "before" : "after")
                try checkUsableAfterRecovery(r1, dir: dir)
                // Power loss: bytes written after the last sync are gone.
                var lost = false
                for (path, size) in durable {
                    let p = path.replacingOccurrences(of: dir + "/", with: crashCopy + "/")
                    if Disk.exists(p) && Disk.size(p) > size {
                        Disk.write(p, Array(Disk.read(p).prefix(size)))
                        lost = true
                    }
                }
                guard lost else { continue } // nothing unsynced: same as the process crash
                powerLossRuns += 1
                let r2 = try DiskStorage(directory: crashCopy, options: options(hook: nil))
                let got2 = try StorageState(r2)
                XCTAssertTrue(allowed.contains(got2), "power loss, \(step) #\(occurrence) in op \(k): got \(got2), allowed \(allowed)")
                r2.close()
            }
        }
        XCTAssertGreaterThan(runs, 50)
        XCTAssertGreaterThan(powerLossRuns, 10)
        // Both outcomes occur where expected: a crash before the write loses the operation,
        // a crash after the sync keeps it.
        XCTAssertEqual(outcomes[.beforeWALWrite], ["before"])
        XCTAssertEqual(outcomes[.afterWALSync], ["after"])
        XCTAssertEqual(outcomes[.beforeSnapshotRename], ["before"])
        XCTAssertEqual(outcomes[.afterCompactionCleanup], ["after"])
    }

    /// After recovery the storage accepts writes and reopens to the same state.
    private func checkUsableAfterRecovery(_ s: DiskStorage, dir: String) throws {
        let last = try s.lastIndex()
        let term = max(try s.hardState().term, try s.term(at: last))
        try s.save(Ready(hardState: HardState(term: term, vote: 0, commit: try s.hardState().commit),
                         entries: makeEntries((last + 1)...(last + 2), term: term)))
        let state = try StorageState(s)
        s.close()
        let again = try DiskStorage(directory: dir, options: options(hook: nil))
        XCTAssertEqual(try StorageState(again), state)
        XCTAssertTrue(again.recoveryReport.isClean, "\(again.recoveryReport)")
        again.close()
    }
}
