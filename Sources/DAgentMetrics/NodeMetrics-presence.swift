import DAgentNode
import Foundation

/// The answer to a collector's presence probe. The collector sends one to
/// each reporting node every `tree_check` seconds: an answer means the name
/// is in the tree, a `no route` from the tree means the name was withdrawn or
/// expired (the node is gone), whatever its last report said.
extension NodeMetrics {
    /// Envelope type of a presence probe (a request; answered with JSON `{"node","reporting_to"}`).
    public static let probeType: UInt32 = 0xFFFE_0051

    func installPresence() {
        let name = node.config.name, to = settings.reportTo ?? ""
        let answer = (try? JSONSerialization.data(withJSONObject: ["node": name, "reporting_to": to])) ?? Data()
        node.handleRequests(ofType: Self.probeType) { [node] e in node.reply(to: e, payload: answer) }
    }
}
