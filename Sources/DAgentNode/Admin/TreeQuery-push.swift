import DAgentWire
import Foundation

/// The push gateway's part of `dagent tree` (text and JSON).
extension TreeRender {
    static func pushText(_ g: Dagent_PushGatewayInfo) -> [String] {
        let closes = g.closes.keys.sorted().map { "\($0)=\(g.closes[$0]!)" }.joined(separator: " ")
        let errors = g.errors.keys.sorted().map { "\($0)=\(g.errors[$0]!)" }.joined(separator: " ")
        return [
            "push gateway\(g.service ? "" : " (NO PUSH SERVICE: the push plugin is not loaded)"): clients=\(g.clients) queue=\(g.queueBytes)B "
                + "messages=\(g.messages) deliveries=\(g.deliveries) drops(conflated)=\(g.conflated) epoch=\(g.epoch) topics=\(g.topics) history=\(g.historyFrames)",
            "    closes: \(closes.isEmpty ? "none" : closes)   errors: \(errors.isEmpty ? "none" : errors)",
        ]
    }

    static func pushJSON(_ g: Dagent_PushGatewayInfo) -> String {
        func map(_ m: [String: UInt64]) -> String {
            "{" + m.keys.sorted().map { "\"\($0)\":\(m[$0]!)" }.joined(separator: ",") + "}"
        }
        let patterns = (try? JSONSerialization.data(withJSONObject: g.patterns)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
        let epoch = (try? JSONSerialization.data(withJSONObject: [g.epoch])).map { String(decoding: $0.dropFirst().dropLast(), as: UTF8.self) } ?? "\"\""
        return "{\"service\":\(g.service),\"clients\":\(g.clients),\"queue_bytes\":\(g.queueBytes),\"messages\":\(g.messages),"
            + "\"deliveries\":\(g.deliveries),\"conflated\":\(g.conflated),\"closes\":\(map(g.closes)),\"errors\":\(map(g.errors)),"
            + "\"epoch\":\(epoch),\"topics\":\(g.topics),\"accepted\":\(g.accepted),\"history_frames\":\(g.historyFrames),\"patterns\":\(patterns)}"
    }
}
