import DAgentRaft
@testable import DAgentRaftStorage
import DAgentTestSupport

/// The application state machine used by tests: an append-only list of string values.
/// Its snapshot is the full list, so snapshot transfer is checked end to end.
struct TestStateMachine: Equatable {
    private(set) var appliedIndex: UInt64 = 0
    private(set) var values: [String] = []
    private(set) var hash: UInt64 = 0xCBF2_9CE4_8422_2325

    init() {}

    init(snapshot: Snapshot) {
        guard !snapshot.isEmpty else { return }
        appliedIndex = snapshot.metadata.index
        let text = String(decoding: snapshot.data, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let count = Int(lines.removeFirst()) ?? -1
        precondition(count == lines.count, "corrupt test snapshot")
        for v in lines { add(v) }
    }

    private mutating func add(_ v: String) {
        values.append(v)
        for b in v.utf8 {
            hash = (hash ^ UInt64(b)) &* 0x0000_0100_0000_01B3
        }
        hash = (hash ^ 0xFF) &* 0x0000_0100_0000_01B3
    }

    mutating func apply(_ e: Entry) {
        appliedIndex = e.index
        if e.type == .normal { add(String(decoding: e.data, as: UTF8.self)) }
    }

    func snapshotData() -> [UInt8] {
        Array(([String(values.count)] + values).joined(separator: "\n").utf8)
    }
}
