import DAgentRaft
import Foundation
import XCTest
@testable import DAgentRaftStorage
import DAgentTestSupport


/// An injected crash, thrown from a `crashHook`.
struct InjectedCrash: Error, Equatable {
    let step: PersistStep
}

/// Entries `range` with the given term and a small payload derived from index and term.
func makeEntries(_ range: ClosedRange<UInt64>, term: UInt64, size: Int = 8) -> [Entry] {
    range.map { i in Entry(term: term, index: i, data: (0..<size).map { UInt8(truncatingIfNeeded: Int(i) &* 31 &+ Int(term) &+ $0) }) }
}

/// The observable state of a `RaftStorage`, for comparisons.
struct StorageState: Equatable, CustomStringConvertible {
    var hardState: HardState
    var snapshot: Snapshot
    var firstIndex: UInt64
    var lastIndex: UInt64
    var entries: [Entry]

    init(_ s: any RaftStorage) throws {
        hardState = try s.hardState()
        snapshot = try s.snapshot()
        firstIndex = try s.firstIndex()
        lastIndex = try s.lastIndex()
        entries = lastIndex >= firstIndex ? try s.entries(from: firstIndex, to: lastIndex + 1, maxBytes: .max) : []
    }

    var description: String {
        "hs=\(hardState.term)/\(hardState.vote)/\(hardState.commit) snap=\(snapshot.metadata.index)/\(snapshot.metadata.term) " +
            "log=\(firstIndex)...\(lastIndex) terms=\(entries.map(\.term))"
    }
}

/// WAL records without the per-segment header (metadata, base marker, hard state).
func walPayload(_ records: [WALRecord]) -> [WALRecord] {
    var out: [WALRecord] = []
    var skip = 0
    for r in records {
        if case .metadata = r { skip = 2; continue }
        if skip > 0 { skip -= 1; continue }
        out.append(r)
    }
    return out
}
