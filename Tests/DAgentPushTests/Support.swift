import DAgentPush
import NIOCore

/// A sink that records what the hub asked for; `writableAfter` sets how many
/// writes a client's socket takes before it reports itself not writable.
final class RecordingSink: PushSink {
    var written: [PushClientID: [String]] = [:]
    var closed: [PushClientID: (UInt16, String)] = [:]
    var changes: [PushInterestChange] = []
    var capacity: [PushClientID: Int] = [:]

    func write(_ id: PushClientID, _ frame: ByteBuffer) -> Bool {
        written[id, default: []].append(String(buffer: frame))
        guard let left = capacity[id] else { return true }
        capacity[id] = left - 1
        return left - 1 > 0
    }

    func close(_ id: PushClientID, code: UInt16, reason: String) { closed[id] = (code, reason) }
    func interest(_ change: PushInterestChange) { changes.append(change) }
}

func json(_ s: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(s.utf8))) as? [String: Any] ?? [:]
}

import Foundation
